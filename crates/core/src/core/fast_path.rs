//! **The single-key fast path**, the lock's side of it (the store's
//! [`Recent`](crate::store::Recent) slot, which a checkout takes from and a
//! return rests in without the lock). Every transition starts by parking
//! what rests there ([`Transition::park_recent`], called by
//! [`State::begin`]), so it sees the pool exactly as if that return had
//! parked its connection; it ends by setting the slot's gate
//! ([`Transition::set_recent_gate`]): open if a return may rest there now
//! (the pool open, not shrinking, nobody waiting, returns allowed to defer
//! their parking), until the maintenance task's next wake-up.
//!
//! The gets served from the slot are counted when the connection next
//! passes through the lock (its record's `uses` lags its guard's by them):
//! [`State::count_fast_gets`].

use super::{State, Transition};
use crate::manager::Manager;
use crate::store::{ConnId, KeyId};

impl<M: Manager> State<M> {
    /// The gets that the lock-free path served with `cid` (of `id`), whose
    /// guard counted `uses`, join the counters, and its record's `uses`.
    #[inline]
    pub(super) fn count_fast_gets(&mut self, id: KeyId, cid: ConnId, uses: u64) {
        if !Self::ONE_KEY {
            return;
        }
        let record = self.records.value_mut(cid);
        let gets = uses.saturating_sub(record.uses.into());
        if gets > 0 {
            record.uses = u32::try_from(uses).unwrap_or(u32::MAX);
            self.tally(id, |c| c.gets += gets);
        }
    }
}

impl<M: Manager> Transition<'_, M> {
    /// Parks what rests in the single-key slot, as its return would have
    /// (at rest since then).
    #[inline]
    pub(super) fn park_recent(&mut self) {
        if State::<M>::ONE_KEY
            && let Some(rested) = self.recent.take_rested()
        {
            self.park_rested(rested);
        }
    }

    /// The end of a transition of a single-key pool: returns may rest in
    /// the slot if they may defer their parking and parking would only park
    /// (the pool open and not shrinking, nobody waiting); the maintenance
    /// task's next wake-up bounds which may. If that admits fewer than
    /// before, what a return left there meanwhile is parked now.
    #[inline]
    pub(super) fn set_recent_gate(&mut self) {
        let st = &*self.st;
        let open = st.defer_parking && !st.closed && !st.shrinking && st.counts().waiting() == 0;
        if self.recent.set_gate(open, st.timer_at) {
            self.park_recent();
        }
    }

    #[cold]
    fn park_rested(&mut self, r: crate::store::Rested<M::Connection>) {
        let since = r.since;
        self.take_back((r.lent, r.id, r.conn, r.uses), None, since);
    }

    /// Nothing but what `begin` did: park the resting connection (for a
    /// return that left it in the slot as a transition began).
    pub(crate) fn park_only(self) {
        self.finish();
    }

    /// Parks `rested`, which a checkout took from the slot and would not
    /// lend as it is (expired, stale, a health check due, retired).
    pub(crate) fn park_taken(&mut self, rested: crate::store::Rested<M::Connection>) {
        self.park_rested(rested);
    }
}
