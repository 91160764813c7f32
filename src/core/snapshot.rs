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
        let recent = self.recent.len();
        let counts = self.counts();
        Gauges {
            idle: self.records.len() + recent,
            used: counts.lent() - recent,
            pending: counts.waiting(),
        }
    }

    /// When the connection lent exclusively as `cid` was lent.
    #[inline]
    pub(crate) fn lent_at(&self, cid: ConnId) -> Tick {
        self.records.value(cid).lent_at()
    }

    pub(crate) fn snapshot(&self) -> PoolState {
        // The recent connections are idle, only not parked yet; the gets
        // served from them are not counted yet.
        let recent = self.recent.len();
        let mut counters = self.counters.clone();
        counters.gets += self.recent.gets().1;
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

    pub(crate) fn key_snapshot(&self, key: &M::Key) -> Option<KeyState> {
        let id = self.keys.id(key)?;
        let entry = self.keys.get(id);
        let (recent, recent_gets) = match self.recent.gets() {
            (key, gets) if key == id => (self.recent.len(), gets),
            _ => (0, 0),
        };
        let mut counters = entry.counters.clone();
        counters.gets += recent_gets;
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
