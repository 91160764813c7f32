//! Snapshots of the state for [`Pool::state`](crate::Pool::state) and
//! [`Pool::key_state`](crate::Pool::key_state).

use super::{State, Transition};
use crate::clock::Tick;
use crate::manager::Manager;
use crate::stats::Gauges;
use crate::stats::{KeyState, PoolState};
use crate::store::{ConnId, Recent};

impl<M: Manager> State<M> {
    /// What the metrics' gauges show (as [`snapshot`](State::snapshot)
    /// counts them).
    #[inline]
    pub(crate) fn gauges(&self, recent: &Recent<M::Connection>) -> Gauges {
        let recent = recent.len();
        let counts = self.counts();
        Gauges {
            idle: self.records.len() + recent,
            used: counts.lent() - recent,
            pending: counts.waiting(),
        }
    }

    /// When the connection lent exclusively as `cid` was lent (from the
    /// lock: the single-key slot's lendings do not stamp the record).
    #[inline]
    pub(crate) fn lent_at(&self, cid: ConnId) -> Tick {
        self.records.value(cid).lent_at()
    }

    pub(crate) fn snapshot(&self, recent: &Recent<M::Connection>) -> PoolState {
        // A connection resting in the slot is idle, only not parked yet.
        let recent = recent.len();
        let counters = self.counters.clone();
        let counts = self.counts();
        PoolState {
            open: counts.open(),
            idle: self.records.len() + recent,
            lent: counts.lent() - recent,
            borrowers: self.borrowed.borrowers(),
            dialing: counts.dialing(),
            pinging: counts.pinging(),
            recycling: counts.recycling(),
            waiting: counts.waiting(),
            closing: self.closing,
            keys: self.keys.len(),
            closed: self.closed,
            counters,
        }
    }

    pub(crate) fn key_snapshot(
        &self,
        key: &M::Key,
        recent: &Recent<M::Connection>,
    ) -> Option<KeyState> {
        let id = self.keys.id(key)?;
        let entry = self.keys.get(id);
        // (A single-key pool's one key is the slot's.)
        let recent = if Self::ONE_KEY { recent.len() } else { 0 };
        let counters = entry.counters.clone();
        let counts = entry.counts();
        Some(KeyState {
            open: counts.open(),
            idle: self.records.len_of(id) + recent,
            lent: counts.lent() - recent,
            borrowers: self.borrowed.borrowers_of(id),
            dialing: counts.dialing(),
            pinging: counts.pinging(),
            recycling: counts.recycling(),
            waiting: counts.waiting(),
            dial_failures_in_a_row: entry.failures,
            in_backoff: self.in_backoff(id, Tick::now()),
            counters,
        })
    }
}

impl<M: Manager> Transition<'_, M> {
    /// [`State::snapshot`] after `begin` parked the single-key slot's
    /// connection (so the gets it served are counted).
    pub(crate) fn snapshot(self) -> PoolState {
        let s = self.st.snapshot(self.recent);
        self.finish();
        s
    }

    /// [`State::key_snapshot`], likewise.
    pub(crate) fn key_snapshot(self, key: &M::Key) -> Option<KeyState> {
        let s = self.st.key_snapshot(key, self.recent);
        self.finish();
        s
    }
}
