//! What the features keep in the pool's records, below the core that holds
//! it: per key, [`KeyExt`]; for keys in general, [`KeysExt`] (what a new
//! key's record starts with). The core keeps them with its own records and
//! never reads them but through the questions below; the features read and
//! change them at their points (see `attach`).

use std::collections::HashMap;
use std::fmt::Debug;
use std::time::Duration;

use super::{Borrowed, Outage};

use crate::clock::{self, Tick, jittered};
use crate::config::Config;
use crate::engine::{Counts, Event, KeyPoints};
use crate::manager::Manager;
use crate::stats::Counters;

/// What the features keep per key. `repr(C)`: the counters, which every
/// checkout bumps, first (see `KeyEntry`'s layout).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct KeyExt {
    /// The key's counters.
    pub(crate) counters: Counters,
    /// Its failed dials: backoff, probes, trial.
    pub(crate) outage: Outage,
    /// Idle connections kept ready for this key (its own value, or the
    /// pool's); a key with a non-zero `min_idle` is never forgotten.
    pub(crate) min_idle: usize,
    /// How many borrowers its last dialed connection takes (1 until a dial
    /// succeeded, or when it lends exclusively): how many waiters a dial in
    /// flight is expected to serve.
    pub(crate) share_hint: usize,
    /// Its shared connections with borrowers take new ones before an idle
    /// one does ([`Lending::fill_first`](crate::Lending::fill_first) of its
    /// last dialed connection).
    pub(crate) fill_first: bool,
    /// Its connections out for their recycle.
    pub(crate) recycling: usize,
}

/// What the features keep per connection.
#[derive(Debug)]
pub(crate) struct ConnExt {
    /// When background keepalive pings it next, if it stays idle
    /// ([`Tick::NEVER`] without keepalive; a rest schedules it anew).
    pub(crate) next_ping: Tick,
    /// Its current keepalive interval: `keepalive_interval` shortened by
    /// jitter, drawn at birth and again after each keepalive ping. Between
    /// pings it stays put, so the deadlines one connection pushes as it is
    /// lent and returned stay in order (a return does not re-arm the
    /// maintenance task); drawn per ping, an idle connection's pings do not
    /// keep one fixed phase against the others'. In nanoseconds;
    /// `u64::MAX` without keepalive.
    pub(crate) ping_every_ns: u64,
    /// Keepalive pings failed in a row (saturating; `keepalive_max_missed`
    /// fits in 16 bits).
    pub(crate) missed: u16,
    /// Borrowers it may have at once: 1 is exclusive lending, more is
    /// shared lending (see `shared`). Set after the dial, and again when a
    /// borrower returns a handle (the peer may change it). `max_borrowers`
    /// fits in 16 bits.
    pub(crate) max_borrowers: u16,
}

impl ConnExt {
    /// The record of a connection dialed at `now`.
    pub(crate) fn new(now: Tick, config: &Config) -> Self {
        let ping_every_ns = ping_interval(config);
        Self {
            next_ping: now.add_nanos(ping_every_ns),
            ping_every_ns,
            missed: 0,
            max_borrowers: 1,
        }
    }

    /// Whether it is lent shared (to several borrowers at once).
    #[inline]
    pub(crate) fn is_shared(&self) -> bool {
        self.max_borrowers > 1
    }

    /// It is idle from `now` on: keepalive starts over.
    pub(crate) fn rest(&mut self, now: Tick) {
        self.missed = 0;
        self.next_ping = now.add_nanos(self.ping_every_ns);
    }

    /// A keepalive ping passed at `now`: the next one is due after a newly
    /// drawn interval.
    pub(crate) fn pinged(&mut self, now: Tick, config: &Config) {
        self.ping_every_ns = ping_interval(config);
        self.next_ping = now.add_nanos(self.ping_every_ns);
    }
}

/// Counts the engine's `event` in `c`.
#[inline]
pub(crate) fn count(c: &mut Counters, event: Event) {
    match event {
        Event::Get => c.gets += 1,
        Event::Waited => c.gets_waited += 1,
        Event::Rejected => c.rejections += 1,
        Event::Dial => c.dials += 1,
        Event::Closed(reason) => c.count_close(reason),
        Event::WaitTime(waited) => c.wait_time += waited,
        Event::Timeout => c.timeouts += 1,
    }
}

/// A keepalive interval with its jitter drawn (`u64::MAX` without
/// keepalive), in nanoseconds.
fn ping_interval(config: &Config) -> u64 {
    config.set.keepalive_interval.map_or(u64::MAX, |every| {
        clock::nanos(jittered(every, config.set.jitter))
    })
}

/// What the features keep for the pool.
pub(crate) struct PoolExt<C> {
    /// The pool's counters.
    pub(crate) counters: Counters,
    /// Shared connections that have borrowers (they count as lent).
    pub(crate) borrowed: Borrowed<C>,
    /// Connections out for their recycle.
    pub(crate) recycling: usize,
}

/// What the features keep for keys in general.
///
/// `min_idle`: a key's value is its entry in `min_idle_for` if it has one,
/// else the pool's `min_idle`; every key's [`KeyExt::min_idle`] is kept
/// equal to it (by `control`).
///
/// Generic over the manager, not its key: its one trait impl then holds
/// wherever `M: Manager` does (a bound on the key alone would have to be
/// proven again where the key is only known through a projection).
pub(crate) struct KeysExt<M: Manager> {
    /// The pool's `min_idle`, for keys without a value of their own.
    min_idle: usize,
    /// Keys' own `min_idle` values (kept while the key is forgotten).
    min_idle_for: HashMap<M::Key, usize, foldhash::fast::RandomState>,
    /// Some key may have a non-zero `min_idle` (else refills are skipped
    /// without a key look-up).
    pub(crate) any_min_idle: bool,
    /// How long a failed key is remembered after its backoff (see
    /// `Config::failure_memory`).
    pub(crate) failure_memory: Duration,
}

impl<M: Manager> Debug for KeysExt<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeysExt")
            .field("min_idle", &self.min_idle)
            .field("min_idle_for", &self.min_idle_for)
            .finish_non_exhaustive()
    }
}

impl<M: Manager> KeyPoints<M::Key> for KeysExt<M> {
    type Key = KeyExt;

    fn new_key(&self, key: &M::Key) -> KeyExt {
        KeyExt {
            counters: Counters::default(),
            outage: Outage::default(),
            min_idle: self.min_idle_of(key),
            share_hint: 1,
            fill_first: false,
            recycling: 0,
        }
    }

    /// A key with a `min_idle` is kept, and one whose failures are
    /// remembered (see [`Outage::remembered`]).
    fn remembers(&self, ext: &KeyExt, now: Tick) -> bool {
        ext.min_idle > 0 || ext.outage.remembered(now, self.failure_memory)
    }

    /// Within `max_connecting` (an unset one caps the dials of a key new
    /// or recovering: see [`Outage::untried`]), unless its outage holds
    /// it back.
    #[inline]
    fn allows_dial(&self, ext: &KeyExt, now: Tick, config: &Config, counts: &Counts) -> bool {
        let untried = || ext.outage.untried(now, self.failure_memory);
        counts.dialing < config.max_connecting(untried)
            && ext.outage.allows_dial(now, counts.open, counts.dialing)
    }

    /// A stale connection its key needs for `min_idle` is kept.
    #[inline]
    fn keeps_stale(&self, ext: &KeyExt, idle: usize) -> bool {
        idle <= ext.min_idle
    }

    #[inline]
    fn count(ext: &mut KeyExt, event: Event) {
        count(&mut ext.counters, event);
    }
}

impl<M: Manager> KeysExt<M> {
    pub(crate) fn new(min_idle: usize, failure_memory: Duration) -> Self {
        Self {
            min_idle,
            min_idle_for: HashMap::default(),
            any_min_idle: min_idle > 0,
            failure_memory,
        }
    }

    /// `key`'s `min_idle`.
    pub(crate) fn min_idle_of(&self, key: &M::Key) -> usize {
        self.min_idle_for.get(key).copied().unwrap_or(self.min_idle)
    }

    /// The pool's `min_idle` becomes `n` (for keys without their own).
    pub(crate) fn set_min_idle(&mut self, n: usize) {
        self.min_idle = n;
        self.any_min_idle = self.any();
    }

    /// `key`'s own `min_idle` becomes `n`.
    pub(crate) fn set_min_idle_for(&mut self, key: &M::Key, n: usize) {
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
