//! Snapshots of the state for [`Pool::state`](crate::Pool::state) and
//! [`Pool::key_state`](crate::Pool::key_state).

use super::State;
use crate::clock::Tick;
use crate::engine::ConnId;
use crate::manager::Manager;
use crate::stats::Gauges;
use crate::stats::{KeyState, PoolState};

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

    /// The per-key gauges: the `n` keys with the most connections (their
    /// keys cloned: named after the lock, where user code may panic), and
    /// the rest summed (`None`).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn key_gauges(&self, n: usize) -> Vec<(Option<M::Key>, Gauges)> {
        let mut keys: Vec<_> = self
            .keys
            .ids()
            .into_iter()
            .map(|id| {
                let counts = self.keys.get(id).counts();
                let g = Gauges {
                    idle: self.records.len_of(id),
                    used: counts.lent(),
                    pending: counts.waiting(),
                };
                (id, g)
            })
            .collect();
        keys.sort_by_key(|(_, g)| std::cmp::Reverse(g.idle + g.used + g.pending));
        let rest = keys.split_off(n.min(keys.len()));
        let mut out: Vec<(Option<M::Key>, Gauges)> = keys
            .into_iter()
            .map(|(id, g)| (Some(self.keys.get(id).key.clone()), g))
            .collect();
        if !rest.is_empty() {
            let sum = rest.iter().fold(Gauges::default(), |a, (_, g)| Gauges {
                idle: a.idle + g.idle,
                used: a.used + g.used,
                pending: a.pending + g.pending,
            });
            out.push((None, sum));
        }
        out
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
            borrowers: self.ext.borrowed.borrowers(),
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
            borrowers: self.ext.borrowed.borrowers_of(id),
            dialing: counts.dialing(),
            pinging: counts.pinging(),
            recycling: counts.recycling(),
            waiting: counts.waiting(),
            dial_failures_in_a_row: entry.ext.outage.failures,
            backoff_left: self.backoff_left(id, Tick::now()),
            counters,
        })
    }
}
