//! Snapshots of the state for [`Pool::state`](crate::Pool::state) and
//! [`Pool::key_state`](crate::Pool::key_state).

use super::State;
use crate::clock::Tick;
use crate::manager::Manager;
use crate::stats::Gauges;
use crate::stats::{KeyState, PoolState};
use crate::store::ConnId;

impl<M: Manager> State<M> {
    /// What the metrics' gauges show (as [`snapshot`](State::snapshot)
    /// counts them).
    #[inline]
    pub(crate) fn gauges(&self) -> Gauges {
        let counts = self.counts();
        Gauges {
            idle: self.records.len(),
            used: counts.lent(),
            pending: counts.waiting(),
        }
    }

    /// When the connection lent exclusively as `cid` was lent.
    #[inline]
    pub(crate) fn lent_at(&self, cid: ConnId) -> Tick {
        self.records.value(cid).lent_at()
    }

    pub(crate) fn snapshot(&self) -> PoolState {
        let counters = self.counters.clone();
        let counts = self.counts();
        PoolState {
            open: counts.open(),
            idle: self.records.len(),
            lent: counts.lent(),
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

    pub(crate) fn key_snapshot(&self, key: &M::Key) -> Option<KeyState> {
        let id = self.keys.id(key)?;
        let entry = self.keys.get(id);
        let counters = entry.counters.clone();
        let counts = entry.counts();
        Some(KeyState {
            open: counts.open(),
            idle: self.records.len_of(id),
            lent: counts.lent(),
            borrowers: self.borrowed.borrowers_of(id),
            dialing: counts.dialing(),
            pinging: counts.pinging(),
            recycling: counts.recycling(),
            waiting: counts.waiting(),
            dial_failures_in_a_row: entry.failures,
            backoff_left: self.backoff_left(id, Tick::now()),
            counters,
        })
    }
}
