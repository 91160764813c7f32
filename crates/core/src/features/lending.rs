//! **Shared lending** (the store's `Borrowed` set): a connection whose
//! manager lends it shared takes up to `max_borrowers` borrowers, each
//! holding a handle. What changes: checkout, after the idle list (an idle
//! connection is the least loaded of all), lends a handle to the
//! least-loaded connection of the key that has room (a key that fills
//! first: to its fullest one with room, before the idle list); a dial
//! serves as many waiters as its connection takes ([`Transition::place_shared`]); a
//! returned handle frees a place that goes to the first waiter of the key
//! ([`Transition::return_handle`]), and the connection goes through the
//! hand-off only once its last borrower is gone — so idle time, idle caps,
//! LRU eviction and keepalive see a shared connection only while nobody
//! borrows it. One taken from the idle set with a health check due takes no
//! other borrower until the check passes ([`Transition::health_checked`]
//! then serves the key's waiters from it). A connection marked broken, past
//! its lifetime or its uses drains: no new borrower, closed by its last one.
//! A key remembers how many borrowers its last connection took
//! (`share_hint`): a new waiter of a shared key dials only if the dials in
//! flight and the connections under a health check cannot serve every
//! waiter. Until its first connection is up, a key
//! dials like an exclusive one (at most `max_connecting` at once).
//! Exclusive connections take none of these paths.

use crate::engine::{Check, State, Transition};
use crate::engine::{Conn, KeyId, WaiterId};
use crate::manager::Manager;
use crate::stats::CloseReason;

impl<M: Manager> State<M> {
    /// Takes the shared connection in `slot`, which has no borrower left,
    /// out of the shared set: it no longer counts as lent.
    pub(crate) fn unlend_shared(&mut self, slot: usize) -> Conn<M::Connection> {
        let (lent, conn) = self.borrowed.remove(slot);
        self.keys.unlend(lent);
        conn
    }

    /// The shared connection in `slot` of `id` takes `max_borrowers` from
    /// now on: the limit its manager sees now (a peer's new `SETTINGS`). A
    /// connection whose limit fell to 1 is lent exclusively once its
    /// borrowers are gone. Called with the lock that returns a handle.
    pub(crate) fn relimit(&mut self, id: KeyId, slot: usize, max_borrowers: usize) {
        self.borrowed.conn_mut(slot).1.max_borrowers =
            u16::try_from(max_borrowers).unwrap_or(u16::MAX);
        self.keys.get_mut(id).share_hint = max_borrowers;
    }

    /// A borrower gives back its handle to the shared connection in `slot`
    /// where nothing follows from it: the connection keeps other
    /// borrowers, nobody waits and the pool is open. Its lifetime and uses
    /// are judged by the next checkout that looks at it
    /// (`Borrowed::choose`), or by its last borrower's return, so this
    /// return reads no clock and decides no effect. Returns false, having
    /// done nothing, where the return is a [`Transition::give_back`].
    pub(crate) fn give_back_handle_quietly(&mut self, slot: usize) -> bool {
        !self.closed && self.counts().waiting() == 0 && self.borrowed.give_back_unless_last(slot)
    }
}

impl<M: Manager> Transition<'_, M> {
    /// Serves waiters of `id` from the shared connection in `slot` while it
    /// has room: `first` (if live), then the key's queue in order.
    pub(crate) fn serve_shared(&mut self, id: KeyId, slot: usize, first: Option<WaiterId>) {
        if let Some(w) = first.filter(|&w| self.st.waiters.is_live(w)) {
            let lent = self.st.borrowed.lend(slot);
            self.serve(w, Ok((id, lent)));
        }
        while self.st.borrowed.has_room(slot)
            && let Some(w) = self.st.first_waiter(id)
        {
            let lent = self.st.borrowed.lend(slot);
            self.serve(w, Ok((id, lent)));
        }
    }

    /// A shared connection of `id` with no borrower came free (dialed for
    /// `first`, or with waiters on its key): it serves as many waiters as it
    /// has room for, and goes idle if none was left to serve.
    pub(crate) fn place_shared(
        &mut self,
        id: KeyId,
        conn: Conn<M::Connection>,
        first: Option<WaiterId>,
    ) {
        let (lent, _) = self.st.keys.lend_slot(id);
        let slot = self.st.borrowed.insert(lent, conn);
        self.serve_shared(id, slot, first);
        if self.st.borrowed.is_unborrowed(slot) {
            // Every waiter was gone: it was never lent.
            let conn = self.st.unlend_shared(slot);
            let cid = self.st.hold_new(id, conn);
            self.park(id, cid);
        }
    }

    /// A borrower of the shared connection in `slot` (of key `id`) is done
    /// with its handle; `close` marks the connection for closing. A
    /// connection that should not take new borrowers (marked, past its
    /// lifetime or uses, pool closed) drains: it closes when its last
    /// borrower returns. Otherwise the freed place goes to the first waiter
    /// of the key, and with no borrower left the connection rests in the
    /// idle list.
    pub(crate) fn return_handle(&mut self, id: KeyId, slot: usize, close: Option<CloseReason>) {
        let left = self.st.borrowed.give_back(slot);
        let retire = if self.st.closed {
            Some(CloseReason::PoolClosed)
        } else {
            close.or_else(|| {
                self.st
                    .borrowed
                    .conn_mut(slot)
                    .1
                    .retirement(self.now, self.config)
            })
        };
        if let Some(reason) = retire {
            self.st.borrowed.drain(slot, reason);
        }
        if let Some(reason) = self.st.borrowed.draining(slot) {
            if left == 0 {
                let conn = self.st.unlend_shared(slot);
                self.close_conn(id, conn.conn, reason);
            }
        } else if self
            .st
            .borrowed
            .takes_borrower(slot, self.st.busy_ok(id, self.now, self.config))
            && let Some(w) = self.st.first_waiter(id)
        {
            let lent = self.st.borrowed.lend(slot);
            self.serve(w, Ok((id, lent)));
        } else if left == 0 {
            let mut conn = self.st.unlend_shared(slot);
            conn.rest(self.now);
            let cid = self.st.hold_new(id, conn);
            self.park(id, cid);
        }
    }

    /// A health-check ping of a connection of `id` lent to a getter ended.
    /// A shared connection (in `slot`) that passed takes
    /// borrowers again: the key's waiters first. One that failed is closed
    /// by its getter.
    pub(crate) fn health_checked(mut self, id: KeyId, slot: Option<usize>, check: Check) {
        self.st.count_call(
            id,
            check,
            |c| &mut c.health_checks,
            |c| &mut c.health_check_failures,
        );
        if let Some(slot) = slot.filter(|_| check == Check::Passed) {
            self.st.borrowed.set_checking(slot, false);
            self.serve_shared(id, slot, None);
        }
        self.finish();
    }
}
