//! Snapshots of the state for [`Pool::state`](crate::Pool::state) and
//! [`Pool::key_state`](crate::Pool::key_state).

use super::Check;
use super::State;
use crate::clock::Tick;
use crate::engine::{ConnId, Counts, KeyId};
use crate::manager::Manager;
use crate::stats::{Counters, Gauges, KeyState, PoolState, Waiting};

impl<M: Manager> State<M> {
    /// Counts an event of `id` that only the features see (`count` adds
    /// it to a [`Counters`]), in the key's counters and the pool's.
    pub(crate) fn tally_with(&mut self, id: KeyId, count: impl Fn(&mut Counters)) {
        count(&mut self.ext.counters);
        count(&mut self.keys.get_mut(id).ext.counters);
    }

    /// Counts a call of user code on a connection of `id` (a ping, a hook),
    /// in the pool's and the key's counters (`counters`: its calls, its
    /// failures): one more call, and one more failure if it failed.
    pub(crate) fn count_call(
        &mut self,
        id: KeyId,
        check: Check,
        counters: fn(&mut Counters) -> (&mut u64, &mut u64),
    ) {
        self.tally_with(id, |c| {
            let (calls, failures) = counters(c);
            *calls += 1;
            *failures += u64::from(check == Check::Failed);
        });
    }

    /// A request met a connection of `id` the server had closed, and is
    /// sent again on another.
    pub(crate) fn count_retry(&mut self, id: KeyId) {
        self.tally_with(id, |c| c.retries += 1);
    }

    /// Counts a call of `key` whose own deadline passed while it was
    /// `waiting` (in the key's counters too while the pool tracks it).
    pub(crate) fn count_timeout(&mut self, key: &M::Key, waiting: Waiting) {
        let count = |c: &mut Counters| match waiting {
            Waiting::Connection => c.timeouts += 1,
            Waiting::Reply => c.reply_timeouts += 1,
        };
        match self.keys.id(key) {
            Some(id) => self.tally_with(id, count),
            None => count(&mut self.ext.counters),
        }
    }

    /// What the metrics' gauges show (as [`snapshot`](State::snapshot)
    /// counts them).
    #[inline]
    pub(crate) fn gauges(&self) -> Gauges {
        gauges(self.records.len(), self.counts())
    }

    /// The per-key gauges: the `n` keys with the most connections (their
    /// keys cloned: named after the lock, where user code may panic), and
    /// the rest summed (`None`).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn key_gauges(&self, n: usize) -> Vec<(Option<M::Key>, Gauges)> {
        let of = |id| gauges(self.records.len_of(id), self.keys.get(id).counts());
        let mut keys: Vec<_> = self.keys.ids().into_iter().map(|id| (id, of(id))).collect();
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
        self.records.value(cid).since
    }

    pub(crate) fn snapshot(&self) -> PoolState {
        let counts = self.counts();
        PoolState {
            open: counts.open,
            idle: self.records.len(),
            lent: counts.lent,
            borrowers: self.ext.borrowed.borrowers(),
            dialing: counts.dialing,
            pinging: counts.out - self.ext.recycling,
            recycling: self.ext.recycling,
            waiting: counts.waiting,
            closing: self.closing,
            keys: self.keys.len(),
            closed: self.closed,
            counters: self.ext.counters.clone(),
        }
    }

    pub(crate) fn key_snapshot(&self, key: &M::Key) -> Option<KeyState> {
        let id = self.keys.id(key)?;
        let entry = self.keys.get(id);
        let counts = entry.counts();
        Some(KeyState {
            open: counts.open,
            idle: self.records.len_of(id),
            lent: counts.lent,
            borrowers: self.ext.borrowed.borrowers_of(id),
            dialing: counts.dialing,
            pinging: counts.out - entry.ext.recycling,
            recycling: entry.ext.recycling,
            waiting: counts.waiting,
            dial_failures_in_a_row: entry.ext.outage.failures,
            backoff_left: entry.ext.outage.backoff_left(Tick::now()),
            counters: entry.ext.counters.clone(),
        })
    }
}

/// What the gauges show of `idle` idle connections and `counts`.
#[inline]
fn gauges(idle: usize, counts: &Counts) -> Gauges {
    Gauges {
        idle,
        used: counts.lent,
        pending: counts.waiting,
    }
}
