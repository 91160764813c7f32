//! Snapshots of the pool's state and its cumulative counters.
//!
//! The counters live inside the pool's state and are updated under its lock
//! by the transition that they count, so a snapshot is always consistent: in
//! any [`PoolState`] or [`KeyState`], `open == idle + lent + dialing`.

use std::time::Duration;

/// Why the pool closed a connection (the label of [`Counters::closed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`Manager::is_broken`](crate::Manager::is_broken) said so, or the
    /// borrower called [`Pooled::mark_broken`](crate::Pooled::mark_broken).
    Broken,
    /// Returned while its key already held `max_idle_per_key` idle connections.
    IdleCapacity,
    /// Evicted as the least recently used idle connection of the pool, to stay
    /// under `max_idle` or to free a slot for a getter of another key that is
    /// waiting at the global `max_open` cap.
    Evicted,
    /// The pool was closed.
    PoolClosed,
}

impl CloseReason {
    /// Every reason, in the order of their counters.
    pub const ALL: [CloseReason; 4] = [
        CloseReason::Broken,
        CloseReason::IdleCapacity,
        CloseReason::Evicted,
        CloseReason::PoolClosed,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// A short lowercase name, as used in tracing events.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Broken => "broken",
            CloseReason::IdleCapacity => "idle_capacity",
            CloseReason::Evicted => "evicted",
            CloseReason::PoolClosed => "pool_closed",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Cumulative counters, for the whole pool or for one key.
///
/// A key's counters start when the pool first sees the key and are dropped
/// with its state once the key has no connection and no waiter; the pool's
/// totals are kept for the pool's life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Calls to `get`/`get_for` that reached the pool (a closed pool's are not counted).
    pub gets: u64,
    /// Gets that found no idle connection and had to wait (for a hand-off or a dial).
    pub gets_waited: u64,
    /// Total time spent waiting by the gets that waited and were served or failed.
    pub wait_time: Duration,
    /// Dials started (calls to [`Manager::connect`](crate::Manager::connect)).
    pub dials: u64,
    /// Dials that failed or timed out.
    pub dial_failures: u64,
    /// Gets that ran into their checkout deadline.
    pub timeouts: u64,
    /// Gets refused at once because `max_waiters` getters were already waiting.
    pub rejections: u64,
    closes: [u64; CloseReason::ALL.len()],
}

impl Counters {
    /// Connections closed for `reason`.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closes[reason.index()]
    }

    /// Connections closed for any reason.
    pub fn closed_total(&self) -> u64 {
        self.closes.iter().sum()
    }

    pub(crate) fn count_close(&mut self, reason: CloseReason) {
        self.closes[reason.index()] += 1;
    }
}

/// A consistent snapshot of the whole pool ([`Pool::state`](crate::Pool::state)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolState {
    /// Connections that count against `max_open`: `idle + lent + dialing`.
    pub open: usize,
    /// Connections in the idle lists.
    pub idle: usize,
    /// Connections held by borrowers (including ones handed to a waiter that
    /// has not picked them up yet).
    pub lent: usize,
    /// Dials in flight.
    pub dialing: usize,
    /// Getters waiting for a connection.
    pub waiting: usize,
    /// Connections whose [`Manager::close`](crate::Manager::close) is still
    /// running; they no longer count in `open`.
    pub closing: usize,
    /// Keys the pool currently tracks (with a connection or a waiter).
    pub keys: usize,
    /// Whether [`Pool::close`](crate::Pool::close) was called.
    pub closed: bool,
    /// Cumulative counters for the pool's life.
    pub counters: Counters,
}

/// A consistent snapshot of one key ([`Pool::key_state`](crate::Pool::key_state)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    /// Connections of this key that count against `max_open_per_key`:
    /// `idle + lent + dialing`.
    pub open: usize,
    /// Idle connections of this key.
    pub idle: usize,
    /// Connections of this key held by borrowers.
    pub lent: usize,
    /// Dials in flight for this key.
    pub dialing: usize,
    /// Getters waiting for a connection of this key.
    pub waiting: usize,
    /// Cumulative counters since the pool started tracking this key.
    pub counters: Counters,
}
