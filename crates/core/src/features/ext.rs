//! What the features keep in the pool's records, below the core that holds
//! it: per key, [`KeyExt`]; for keys in general, [`KeysExt`] (what a new
//! key's record starts with). The core keeps them with its own records and
//! never reads them but through the questions below; the features read and
//! change them at their points (see `core::attach`).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use super::Outage;

use crate::clock::Tick;

/// What the features keep per key.
#[derive(Debug, Default)]
pub(crate) struct KeyExt {
    /// Its failed dials: backoff, probes, trial.
    pub(crate) outage: Outage,
    /// Idle connections kept ready for this key (its own value, or the
    /// pool's); a key with a non-zero `min_idle` is never forgotten.
    pub(crate) min_idle: usize,
}

impl KeyExt {
    /// Whether the features let a dial of the key start at `now`, with
    /// `open` connections and `dialing` dials of it.
    #[inline]
    pub(crate) fn allows_dial(&self, now: Tick, open: usize, dialing: usize) -> bool {
        self.outage.allows_dial(now, open, dialing)
    }

    /// Whether the key is new, or recovering, at `now`: an unset
    /// `max_connecting` caps its dials then (see [`Outage::untried`]).
    pub(crate) fn untried(&self, now: Tick, memory: Duration) -> bool {
        self.outage.untried(now, memory)
    }

    /// Whether a key with `idle` idle connections keeps a stale one (for
    /// its `min_idle`).
    #[inline]
    pub(crate) fn keeps_stale(&self, idle: usize) -> bool {
        idle <= self.min_idle
    }

    /// The pool closed: nothing will dial again, so no failure is worth
    /// remembering.
    pub(crate) fn pool_closed(&mut self) {
        self.outage.failed_at = None;
    }
}

/// What the features keep for keys in general.
///
/// `min_idle`: a key's value is its entry in `min_idle_for` if it has one,
/// else the pool's `min_idle`; every key's [`KeyExt::min_idle`] is kept
/// equal to it (by `core::control`).
#[derive(Debug)]
pub(crate) struct KeysExt<K> {
    /// The pool's `min_idle`, for keys without a value of their own.
    min_idle: usize,
    /// Keys' own `min_idle` values (kept while the key is forgotten).
    min_idle_for: HashMap<K, usize, foldhash::fast::RandomState>,
    /// Some key may have a non-zero `min_idle` (else refills are skipped
    /// without a key look-up).
    pub(crate) any_min_idle: bool,
    /// How long a failed key is remembered after its backoff (see
    /// `Config::failure_memory`).
    pub(crate) failure_memory: Duration,
}

impl<K: Eq + Hash + Clone> KeysExt<K> {
    pub(crate) fn new(min_idle: usize, failure_memory: Duration) -> Self {
        Self {
            min_idle,
            min_idle_for: HashMap::default(),
            any_min_idle: min_idle > 0,
            failure_memory,
        }
    }

    /// The record of a key new to the pool.
    pub(crate) fn new_key(&self, key: &K) -> KeyExt {
        KeyExt {
            min_idle: self.min_idle_of(key),
            ..KeyExt::default()
        }
    }

    /// Whether a key with nothing open and nobody waiting is worth
    /// remembering at `now`: it has a `min_idle`, or its failures are
    /// remembered (see [`Outage::remembered`]).
    pub(crate) fn remembers(&self, ext: &KeyExt, now: Tick) -> bool {
        ext.min_idle > 0 || ext.outage.remembered(now, self.failure_memory)
    }

    /// `key`'s `min_idle`.
    pub(crate) fn min_idle_of(&self, key: &K) -> usize {
        self.min_idle_for.get(key).copied().unwrap_or(self.min_idle)
    }

    /// The pool's `min_idle` becomes `n` (for keys without their own).
    pub(crate) fn set_min_idle(&mut self, n: usize) {
        self.min_idle = n;
        self.any_min_idle = self.any();
    }

    /// `key`'s own `min_idle` becomes `n`.
    pub(crate) fn set_min_idle_for(&mut self, key: &K, n: usize) {
        self.min_idle_for.insert(key.clone(), n);
        self.any_min_idle = self.any();
    }

    fn any(&self) -> bool {
        self.min_idle > 0 || self.min_idle_for.values().any(|&n| n > 0)
    }

    /// The largest `min_idle` of its own any key has.
    pub(crate) fn max_min_idle_for(&self) -> usize {
        self.min_idle_for.values().copied().max().unwrap_or(0)
    }
}
