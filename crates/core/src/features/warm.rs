//! **Keeping keys warm**: `initial` dials are reserved before the pool
//! starts ([`State::reserve_initial`]); each key's `min_idle` is refilled
//! after every transition that may have taken it below
//! ([`Transition::refill`], at the point `on_fewer_idle`) and when a
//! backoff of it ends. A stale connection its key needs for `min_idle` is
//! kept (`KeyExt::keeps_stale`).

use super::{State, Transition};
use crate::engine::{KeyId, Place, Slot};
use crate::manager::Manager;

impl<M: Manager> State<M> {
    /// Reserves `n` slots of `key` for pre-warm dials (already validated
    /// against the caps) and returns its id.
    pub(crate) fn reserve_initial(&mut self, key: &M::Key, n: usize) -> Vec<Slot> {
        let id = self.keys.id_or_insert(key);
        debug_assert_eq!(
            self.keys.get(id).epoch,
            0,
            "pre-warm dials are of the first epoch"
        );
        self.tally_with(id, |c| c.dials += n as u64);
        (0..n)
            .map(|_| self.keys.open_slot(id, Place::Dialing))
            .collect()
    }
}

impl<M: Manager> Transition<'_, M> {
    /// Tops `id` up to `min_idle`, if any key has one (the dials
    /// themselves: [`refill_dials`](Transition::refill_dials)): the end of
    /// every transition that may take a key below it, a checkout's first.
    #[inline]
    pub(crate) fn refill(&mut self, id: KeyId) {
        if self.st.keys.ext.any_min_idle && !self.st.closed {
            self.refill_dials(id);
        }
    }

    /// Tops every key up to `min_idle` (after pre-warming).
    pub(crate) fn refill_all(mut self) {
        for id in self.st.keys.ids() {
            self.refill(id);
        }
        self.finish();
    }

    /// [`refill`](Transition::refill)'s dials: as many as bring `id` back
    /// to `min_idle`, as far as the caps, `max_connecting` and the backoff
    /// allow (a backoff schedules a refill for when it ends). Dials beyond
    /// the key's waiters count as future idle connections, and so do
    /// connections out for a ping or a recycle.
    fn refill_dials(&mut self, id: KeyId) {
        loop {
            let entry = self.st.keys.get(id);
            let counts = entry.counts();
            let spare_dials = counts.dialing.saturating_sub(counts.waiting);
            if self.st.records.len_of(id) + spare_dials + counts.out >= entry.ext.min_idle
                || !self.st.key_can_dial(id, self.now, self.config)
                || self.st.counts().open >= self.st.limits.max_open
            {
                return;
            }
            self.start_dial(id, None);
        }
    }
}
