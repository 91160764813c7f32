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

use super::{Check, Conn, State, Transition};
use crate::clock::Tick;
use crate::config::Config;
use crate::engine::{Checkup, ConnId, KeyId, Lent, Place, Round, Slot, WaiterId};
use crate::manager::{Lending, Manager};
use crate::reason::CloseReason;

impl<M: Manager> State<M> {
    /// Lends the held shared connection `cid`, whose place in the lent
    /// count is `lent`: it moves to the shared set, and its first handle is
    /// lent (it takes no other borrower while its `ping` is due).
    pub(crate) fn lend_shared(
        &mut self,
        cid: ConnId,
        lent: Slot,
        ping: Checkup,
    ) -> Lent<M::Connection> {
        let conn = self.remove_conn(cid);
        let slot = self.ext.borrowed.insert(lent, conn);
        let lent = self.ext.borrowed.lend(slot);
        self.ext.borrowed.set_checking(slot, ping == Checkup::Due);
        lent
    }

    /// Whether the connections of shared key `id` on their way (dialing, or
    /// taken from the idle set for a health check) will serve all of its
    /// waiters: `share_hint` each. Then a new waiter dials nothing: a check
    /// passes in a round trip, and a connection whose check fails closes
    /// and starts a dial for the waiters it leaves.
    pub(crate) fn shared_dials_cover(&self, id: KeyId) -> bool {
        let entry = self.keys.get(id);
        entry.ext.share_hint > 1 && {
            let coming = entry.counts().dialing + self.ext.borrowed.checking_of(id);
            coming * entry.ext.share_hint >= entry.counts().waiting
        }
    }

    /// Whether a getter of `id` may join a busy shared connection
    /// ([`Lending::busy_when`](crate::Lending::busy_when)): only when no
    /// other connection is coming (the key may not dial, none is on its
    /// way, nor may the pool make room by closing an idle one).
    pub(crate) fn busy_ok(&self, id: KeyId, now: Tick, config: &Config) -> bool {
        if !self.ext.borrowed.tracks_busy() {
            return true;
        }
        let pool_has_room = self.counts().open < self.limits.max_open || self.records.len() > 0;
        let may_dial = self.key_can_dial(id, now, config) && pool_has_room;
        !(may_dial || self.keys.get(id).counts().dialing > 0)
    }

    /// Takes the shared connection in `slot`, which has no borrower left,
    /// out of the shared set: it no longer counts as lent.
    pub(crate) fn unlend_shared(&mut self, slot: usize) -> Conn<M::Connection> {
        let (lent, conn) = self.ext.borrowed.remove(slot);
        self.keys.give_back(lent);
        conn
    }

    /// The shared connection in `slot` of `id` takes `max_borrowers` from
    /// now on: the limit its manager sees now (a peer's new `SETTINGS`). A
    /// connection whose limit fell to 1 is lent exclusively once its
    /// borrowers are gone. Called with the lock that returns a handle.
    pub(crate) fn relimit(&mut self, id: KeyId, slot: usize, max_borrowers: usize) {
        self.ext.borrowed.conn_mut(slot).1.ext.max_borrowers =
            u16::try_from(max_borrowers).unwrap_or(u16::MAX);
        self.keys.get_mut(id).ext.share_hint = max_borrowers;
    }

    /// A borrower gives back its handle to the shared connection in `slot`
    /// where nothing follows from it: the connection keeps other
    /// borrowers, nobody waits and the pool is open. Its lifetime and uses
    /// are judged by the next checkout that looks at it
    /// (`Borrowed::choose`), or by its last borrower's return, so this
    /// return reads no clock and decides no effect. Returns false, having
    /// done nothing, where the return is a [`Transition::give_back`].
    pub(crate) fn give_back_handle_quietly(&mut self, slot: usize) -> bool {
        !self.closed && self.counts().waiting == 0 && self.ext.borrowed.give_back_unless_last(slot)
    }
}

impl<M: Manager> Transition<'_, M> {
    /// A handle to a shared connection of `id` with room: the least
    /// loaded, or with `fill` the fullest.
    pub(crate) fn lend_handle(&mut self, id: KeyId, fill: bool) -> Option<Lent<M::Connection>> {
        let (now, config) = (self.now, self.config);
        let borrowed = &mut self.st.ext.borrowed;
        let (slot, busy) = borrowed.choose(id, fill, |conn| conn.retirement(now, config))?;
        if busy && !self.st.busy_ok(id, now, config) {
            return None;
        }
        Some(self.st.ext.borrowed.lend(slot))
    }

    /// A dial of `id` made `conn`, which its manager lends as `lending`:
    /// the key and the connection remember how widely. Returns whether it
    /// is shared (a shared key may have waiters its connections in flight
    /// cannot serve: every queued getter dials).
    pub(crate) fn lent_as(
        &mut self,
        id: KeyId,
        conn: &mut Conn<M::Connection>,
        lending: Lending<M::Connection>,
    ) -> bool {
        let (max_borrowers, share) = lending.clamped(self.config.set.max_borrowers);
        conn.ext.max_borrowers = u16::try_from(max_borrowers).unwrap_or(u16::MAX);
        let ext = &mut self.st.keys.get_mut(id).ext;
        ext.share_hint = max_borrowers;
        ext.fill_first = lending.fills_first();
        if let Some(share) = share {
            self.st.ext.borrowed.set_lending(share, lending.busy());
        }
        max_borrowers > 1
    }

    /// The held connection `cid` of `id` came free (dialed for `first`, if
    /// any): a shared one serves that waiter and the key's others, or is
    /// parked (true); an exclusive one is left to the hand-off (false).
    pub(crate) fn takes_shared(&mut self, id: KeyId, cid: ConnId, first: Option<WaiterId>) -> bool {
        if !self.st.records.value(cid).ext.is_shared() {
            return false;
        }
        let waiters = self.st.counts().waiting > 0 && self.st.keys.get(id).counts().waiting > 0;
        if first.is_some() || waiters {
            let conn = self.st.remove_conn(cid);
            self.place_shared(id, conn, first);
        } else {
            self.park(id, cid);
        }
        true
    }

    /// Of a key that fills its shared connections first: a handle to the
    /// fullest one that has borrowers and room, which takes the getter
    /// before an idle or emptier connection does (its get counted in the key
    /// on the getter's first `round`).
    #[inline(never)]
    pub(crate) fn lend_filling(&mut self, id: KeyId, round: Round) -> Option<Lent<M::Connection>> {
        if !self.st.keys.get(id).ext.fill_first {
            return None;
        }
        let lent = self.lend_handle(id, true)?;
        if round == Round::First {
            self.st.keys.get_mut(id).ext.counters.gets += 1;
        }
        Some(lent)
    }

    /// [`give_back`](crate::engine::Transition::give_back) of a handle to the shared
    /// connection in `slot` of `id` (see [`Transition::return_handle`]).
    #[inline(never)]
    pub(crate) fn give_back_handle(
        mut self,
        id: KeyId,
        slot: usize,
        close: Option<CloseReason>,
        server_changed: bool,
    ) -> bool {
        let clear = server_changed && self.st.ext.borrowed.draining(slot).is_none();
        self.return_handle(id, slot, close);
        if clear {
            self.clear_key(id);
        }
        if close.is_none() && !server_changed {
            self.served(id);
        }
        self.finish();
        clear
    }

    /// Serves waiters of `id` from the shared connection in `slot` while it
    /// has room: `first` (if live), then the key's queue in order.
    pub(crate) fn serve_shared(&mut self, id: KeyId, slot: usize, first: Option<WaiterId>) {
        let mut first = first.filter(|&w| self.st.waiters.is_live(w));
        while self.st.ext.borrowed.has_room(slot)
            && let Some(w) = first.take().or_else(|| self.st.first_waiter(id))
        {
            let lent = self.st.ext.borrowed.lend(slot);
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
        let (lent, _) = self.st.keys.take_slot(id, Place::Lent);
        let slot = self.st.ext.borrowed.insert(lent, conn);
        self.serve_shared(id, slot, first);
        if self.st.ext.borrowed.is_unborrowed(slot) {
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
        let (now, config) = (self.now, self.config);
        let borrowed = &mut self.st.ext.borrowed;
        let left = borrowed.give_back(slot);
        let retire = if self.st.closed {
            Some(CloseReason::PoolClosed)
        } else {
            close.or_else(|| borrowed.conn_mut(slot).1.retirement(now, config))
        };
        if let Some(reason) = retire {
            borrowed.drain(slot, reason);
        }
        if let Some(reason) = borrowed.draining(slot) {
            if left == 0 {
                let conn = self.st.unlend_shared(slot);
                self.close_conn(id, conn.conn, reason);
            }
        } else if self
            .st
            .ext
            .borrowed
            .takes_borrower(slot, self.st.busy_ok(id, now, config))
            && let Some(w) = self.st.first_waiter(id)
        {
            let lent = self.st.ext.borrowed.lend(slot);
            self.serve(w, Ok((id, lent)));
        } else if left == 0 {
            let mut conn = self.st.unlend_shared(slot);
            conn.since = now;
            conn.ext.rest(now);
            let cid = self.st.hold_new(id, conn);
            self.park(id, cid);
        }
    }

    /// A health-check ping of a connection of `id` lent to a getter ended.
    /// A shared connection (in `slot`) that passed takes
    /// borrowers again: the key's waiters first. One that failed is closed
    /// by its getter.
    pub(crate) fn health_checked(mut self, id: KeyId, slot: Option<usize>, check: Check) {
        self.st.count_call(id, check, |c| {
            (&mut c.health_checks, &mut c.health_check_failures)
        });
        if let Some(slot) = slot.filter(|_| check == Check::Passed) {
            self.st.ext.borrowed.set_checking(slot, false);
            self.serve_shared(id, slot, None);
        }
        self.finish();
    }
}
