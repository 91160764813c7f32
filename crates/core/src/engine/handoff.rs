//! **The return** ([`Transition::give_back`]): everything a borrower gives
//! back comes through this one transition: a connection lent exclusively
//! (closed, or placed), or a handle to one a feature lends
//! ([`Points::give_back_handle`]).
//!
//! **Hand-off** ([`Transition::place`]): a connection coming free (returned
//! by a borrower, or freshly dialed) goes, in this order, to a feature that
//! takes it ([`Points::takes_free`]); to the first live waiter of its key;
//! else, if a getter of another key waits at the pool's cap, it is closed
//! so that getter can dial; else to the idle list, closing it when the
//! key's idle cap is full and evicting the pool's LRU idle connection when
//! the global idle cap is. Every connection that comes free passes through
//! this one function (one that was lent exclusively skips the features).
//!
//! **Slots** ([`Transition::release_slot`]): when a connection of a key
//! closes, its slot goes to the first live waiter of the key's dial queue,
//! else to the first live waiter of the global dial queue; a dial starts
//! for it.
//!
//! What a borrower is lent, and what it gives back: [`Lent`], [`Back`].

use super::effects::Action;
use super::points::{Checkup, Event, Points};
use super::{Outcome, State, Transition};
use crate::engine::{ConnId, KeyId, Slot, WaiterId};
use crate::manager::Manager;
use crate::reason::CloseReason;

impl<M: Manager, P: Points<M>> State<M, P> {
    /// The first live waiter of `id`'s queue, if any.
    #[inline]
    pub(crate) fn first_waiter(&mut self, id: KeyId) -> Option<WaiterId> {
        // Nobody waits at all (the common return): don't look up the key.
        if self.counts().waiting == 0 || self.keys.get(id).counts().waiting == 0 {
            return None;
        }
        let queue = &mut self.keys.get_mut(id).idle_waiters;
        queue.pop_live(|w| self.waiters.is_live(w))
    }
}

impl<M: Manager, P: Points<M>> Transition<'_, M, P> {
    /// The one return: a borrower gives back what it was lent; `close`
    /// closes it for that reason instead. Past its lifetime or its uses it
    /// is closed too. `note`: what the borrower tells the features (see
    /// [`Points::on_return`]). Returns what `on_return` answered.
    #[inline(always)]
    pub(crate) fn give_back(
        self,
        back: Back<M::Connection>,
        close: Option<CloseReason>,
        note: P::Note,
    ) -> bool {
        match back {
            Back::Own(lent, cid, conn) => self.give_back_own(lent, cid, conn, close, note),
            Back::Handle(id, slot) => P::give_back_handle(self, id, slot, close, note),
        }
    }

    /// [`give_back`](Transition::give_back) of a connection lent
    /// exclusively: at rest from now, or closed for `close` or if it is
    /// retiring.
    #[inline]
    fn give_back_own(
        mut self,
        lent: Slot,
        cid: ConnId,
        conn: M::Connection,
        close: Option<CloseReason>,
        note: P::Note,
    ) -> bool {
        let id = lent.key();
        let answer = P::on_return(&mut self, id, cid, note);
        self.st.keys.give_back(lent);
        let record = self.st.records.value_mut(cid);
        match close.or_else(|| record.retirement(self.now, self.config)) {
            Some(reason) => {
                self.st.records.remove(cid);
                self.close_conn(id, conn, reason);
            }
            None => {
                record.conn = Some(conn);
                record.since = self.now;
                P::rest(&mut record.ext, self.now);
                self.place(id, cid, true);
            }
        }
        P::on_returned(&mut self, id, note, answer);
        self.finish();
        answer
    }

    /// A borrower takes what it was lent out of the pool for good (`()`:
    /// the borrower keeps the connection). A handle is given back instead:
    /// the connection it shares stays.
    pub(crate) fn detach(mut self, lent: Back<()>) {
        let (slot, cid) = match lent {
            Back::Handle(id, slot) => {
                self.give_back(Back::Handle(id, slot), None, P::Note::default());
                return;
            }
            Back::Own(slot, cid, ()) => (slot, cid),
        };
        self.st.records.remove(cid);
        let id = self.st.keys.give_back(slot);
        self.release_slot(id);
        self.finish();
    }

    /// A connection of `id` that came free (returned, back from a task, or
    /// dialed for nobody in particular), held in the idle set as `cid`, and
    /// not counted as lent, dialing or out: the hand-off. `own`: it was
    /// lent exclusively, so no feature takes it.
    #[inline]
    pub(crate) fn place(&mut self, id: KeyId, cid: ConnId, own: bool) {
        // One test for both (adjacent bytes), not two: the common return
        // meets neither. A closed pool closes it: no feature takes it then.
        if (self.st.closed | self.st.retiring) && self.close_instead(id, cid)
            || !own && P::takes_free(self, id, cid, None)
        {
            return;
        }
        match self.st.first_waiter(id) {
            Some(w) => self.hand_to(w, id, cid),
            None => self.park(id, cid),
        }
    }

    /// Lends the held connection `cid` of `id` to the live waiter `w`.
    pub(crate) fn hand_to(&mut self, w: WaiterId, id: KeyId, cid: ConnId) {
        let site = self.st.waiters.live(w).expect("live").site;
        let lent = self.lend(id, cid, Checkup::NotDue, None, site);
        self.serve(w, Ok((id, lent)));
    }

    /// Closes `cid` of `id` instead of placing it if the pool is closed, or
    /// a feature says so ([`Points::closes_free`]); true if it did.
    #[cold]
    fn close_instead(&mut self, id: KeyId, cid: ConnId) -> bool {
        let closed = self.st.closed.then_some(CloseReason::PoolClosed);
        let Some(reason) = closed.or_else(|| P::closes_free(self, id)) else {
            return false;
        };
        let conn = self.st.remove_conn(cid);
        self.close_conn(id, conn.conn, reason);
        true
    }

    /// A connection of `id` that came free when no getter of its key waits:
    /// its slot to a getter of another key waiting at the pool cap, else the
    /// idle list (within the idle caps).
    #[inline]
    pub(crate) fn park(&mut self, id: KeyId, cid: ConnId) {
        // A getter of another key may wait at the pool cap: hand it this slot.
        // (`waiting > 0` first: no key look-up when nobody waits.)
        let waiting = self.st.counts().waiting;
        if waiting > 0
            && waiting > self.st.keys.get(id).counts().waiting
            && self.st.counts().open >= self.st.limits.max_open
            && let Some((w, other)) = self.pop_global_waiter()
        {
            let conn = self.st.remove_conn(cid);
            self.close_for_room(id, conn.conn, CloseReason::EvictedLru);
            return self.start_dial(other, Some(w));
        }
        if self.st.records.len_of(id) >= self.st.limits.max_idle_per_key {
            let conn = self.st.remove_conn(cid);
            return self.close_conn(id, conn.conn, CloseReason::MaxIdlePerKey);
        }
        if self.st.records.len() >= self.st.limits.max_idle
            && let Some((other, old)) = self.st.records.pop_lru()
        {
            let old = old.conn.expect("an idle connection is present");
            self.close_conn(other, old, CloseReason::EvictedLru);
        }
        // The entry is fresh: the maintenance task moves it into the
        // deadline heap when it next wakes, if it is still idle then. Only
        // the wake-up must be early enough.
        if let Some(at) = self
            .st
            .records
            .park(cid, |conn| conn.deadline(conn.since, self.config, P::due))
        {
            self.arm(at);
        }
    }

    /// Serves the live waiter `w` (with a connection already lent to it, or
    /// an error) and accounts for it.
    pub(crate) fn serve(&mut self, w: WaiterId, outcome: Outcome<M>) {
        let id = self.st.waiters.live(w).expect("served live").key;
        self.st.keys.unwait(id);
        if outcome.is_err() {
            self.st.unused(id);
        }
        if let Some(waker) = self.st.waiters.serve(w, outcome) {
            self.fx.wake(waker);
        }
    }

    /// Closes `conn` of `id` and gives its slot to a waiter.
    pub(crate) fn close_conn(&mut self, id: KeyId, conn: M::Connection, reason: CloseReason) {
        self.close_for_room(id, conn, reason);
        self.give_slot(id);
    }

    /// Closes `conn` of `id` whose slot the caller reuses at once.
    pub(crate) fn close_for_room(&mut self, id: KeyId, conn: M::Connection, reason: CloseReason) {
        self.st.tally(id, Event::Closed(reason));
        self.st.closing += 1;
        self.fx.actions.push(Action::Close(conn, reason));
        self.st.keys.close_idle(id);
        self.st.unused(id);
    }

    /// A connection of `id` stopped counting: hand its slot to a dial waiter
    /// (of the key, else of the pool).
    pub(crate) fn release_slot(&mut self, id: KeyId) {
        self.st.keys.close_idle(id);
        self.st.unused(id);
        self.give_slot(id);
    }

    /// A slot of `id` came free: a dial for a waiter of the key, else of
    /// the pool.
    fn give_slot(&mut self, id: KeyId) {
        if self.st.closed {
            return;
        }
        if !self.start_queued_dial(id)
            && let Some((w, other)) = self.pop_global_waiter()
        {
            self.start_dial(other, Some(w));
        }
        P::on_fewer_idle(self, id);
    }
}

/// What a borrower gives back, under the lock: a connection lent
/// exclusively (its slot in the lent count, its record's id and itself),
/// or a handle a feature lent (the handle itself is dropped before the lock
/// is taken).
#[derive(Debug)]
pub(crate) enum Back<C> {
    Own(Slot, ConnId, C),
    /// Of this key, in this slot of the feature's record.
    Handle(KeyId, usize),
}

/// What a borrower holds: the connection itself, or a handle a feature
/// lent (`conn`); the connection's `uses` (this time included; for a
/// handle, when it was made); and what its return gives back (`back`).
///
/// An exclusively lent connection carries its [`Slot`], which its return
/// gives back, and its record's id; a handle carries its key and its slot
/// in the feature's record (the feature's record holds the connection's
/// [`Slot`]).
#[derive(Debug)]
pub(crate) struct Lent<C> {
    pub(crate) conn: C,
    pub(crate) uses: u64,
    pub(crate) back: Back<()>,
}

impl<C> Back<C> {
    /// The key of the connection.
    #[inline]
    pub(crate) fn key(&self) -> KeyId {
        match self {
            Back::Own(lent, ..) => lent.key(),
            Back::Handle(key, _) => *key,
        }
    }
}

impl Back<()> {
    /// What goes back with `conn`: a connection lent exclusively goes back
    /// itself; a handle is dropped here, before the lock is taken.
    pub(crate) fn with<C>(self, conn: C) -> Back<C> {
        match self {
            Back::Own(lent, cid, ()) => Back::Own(lent, cid, conn),
            Back::Handle(key, slot) => Back::Handle(key, slot),
        }
    }
}
