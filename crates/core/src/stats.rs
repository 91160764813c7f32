//! Snapshots of the pool's state and its cumulative counters.
//!
//! The counters live inside the pool's state and are updated under its lock
//! by the transition that they count, so a snapshot is always consistent: in
//! any [`PoolState`] or [`KeyState`], `open == idle + lent + dialing + pinging +
//! recycling`.

use std::time::Duration;

/// What a call was waiting for when its own deadline passed
/// ([`Pool::count_timeout`](crate::Pool::count_timeout)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Waiting {
    /// A connection: counted in [`Counters::timeouts`], as a get past its
    /// checkout deadline is.
    Connection,
    /// The reply, on a connection it had: counted in
    /// [`Counters::reply_timeouts`].
    Reply,
}

/// Cumulative counters, for the whole pool or for one key.
///
/// A key's counters start when the pool first sees the key and are dropped
/// with its state once the key has no connection and no waiter; the pool's
/// totals are kept for the pool's life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
// `gets` first: the one counter every checkout bumps (see `KeyEntry`'s
// layout).
#[repr(C)]
pub struct Counters {
    /// Calls to `get`/`get_for` that reached the pool (a closed pool's are not counted).
    pub gets: u64,
    /// Gets that found no idle connection and had to wait (for a hand-off or a dial).
    pub gets_waited: u64,
    /// Total time spent waiting by the gets that waited and were served or
    /// failed, from the `get` to its pick-up (serialized in seconds, as
    /// `wait_time_seconds`).
    #[cfg_attr(
        feature = "serde",
        serde(rename = "wait_time_seconds", serialize_with = "seconds")
    )]
    pub wait_time: Duration,
    /// Dials started (calls to [`Manager::connect`](crate::Manager::connect)).
    pub dials: u64,
    /// Dials that failed or timed out, and new connections refused under
    /// their first request ([`Pooled::mark_refused`](crate::Pooled::mark_refused)),
    /// which count as failed dials.
    pub dial_failures: u64,
    /// Gets that ran into their checkout deadline, and calls of a service
    /// (connpool's `PgService`, `RedisService`, `HttpService`, `WsService`,
    /// or a user's through [`Pool::count_timeout`](crate::Pool::count_timeout))
    /// whose own deadline passed while they waited for a connection.
    pub timeouts: u64,
    /// Calls of a service whose deadline passed after they had their
    /// connection, while they waited for the reply
    /// ([`Pool::count_timeout`](crate::Pool::count_timeout) with
    /// [`Waiting::Reply`]).
    pub reply_timeouts: u64,
    /// Gets refused at once because `max_waiters` getters were already waiting.
    pub rejections: u64,
    /// Health-check pings before lending.
    pub health_checks: u64,
    /// Health-check pings that failed or timed out.
    pub health_check_failures: u64,
    /// Background keepalive pings.
    pub keepalive_pings: u64,
    /// Background keepalive pings that failed or timed out.
    pub keepalive_failures: u64,
    /// Times a key entered dial backoff (once per failed dial while backoff is on).
    pub backoffs: u64,
    /// Gets failed with [`Error::Backoff`](crate::Error::Backoff): the dial
    /// or probe they waited for failed.
    pub backoff_rejections: u64,
    /// Dials the pool started itself to learn whether a key in backoff
    /// that getters wanted is back (counted in `dials` too).
    pub probes: u64,
    /// Times a key's connections were all closed because one of them
    /// found its server changed
    /// ([`Health::ServerChanged`](crate::Health::ServerChanged)).
    pub key_clears: u64,
    /// Connections reported held longer than the
    /// [`leak_detection_threshold`](crate::Builder::leak_detection_threshold)
    /// (each once per lending).
    pub leaks: u64,
    /// Calls of the [`before_lend`](crate::Builder::before_lend) hook.
    pub before_lend_checks: u64,
    /// Calls of the `before_lend` hook that failed, panicked or timed out
    /// (each closed its connection as [`closed_broken`](Counters::closed_broken)).
    pub before_lend_failures: u64,
    /// Recycles of returned connections ([`Manager::recycle`](crate::Manager::recycle)
    /// and the [`after_return`](crate::Builder::after_return) hook).
    pub recycles: u64,
    /// Recycles that failed, panicked or timed out (each closed its
    /// connection as [`closed_broken`](Counters::closed_broken)).
    pub recycle_failures: u64,
    /// Requests sent again after meeting a connection the server had
    /// closed while it was idle, or (HTTP/2) that the server did not
    /// process: what [`Pooled::count_retry`](crate::Pooled::count_retry)
    /// counted (connpool's `HttpService` does).
    pub retries: u64,
    /// Connections closed because [`Manager::health`](crate::Manager::health)
    /// said so, or the borrower called
    /// [`Pooled::mark_broken`](crate::Pooled::mark_broken).
    pub closed_broken: u64,
    /// Connections closed because their server or protocol ended them in
    /// the normal course, not broken: [`Manager::health`](crate::Manager::health)
    /// said [`Health::ClosedByServer`](crate::Health::ClosedByServer) (an
    /// HTTP/1.1 `Connection: close`, an HTTP/2 `GOAWAY` without error, a
    /// WebSocket Close).
    pub closed_by_server: u64,
    /// Connections closed on their return because their key already held
    /// `max_idle_per_key` idle connections.
    pub closed_max_idle_per_key: u64,
    /// Connections closed as the least recently used idle connection of the
    /// pool, to stay under `max_idle` or to free a slot for a getter of
    /// another key waiting at the global `max_open` cap.
    pub closed_evicted_lru: u64,
    /// Connections closed because the pool was closed.
    pub closed_pool_closed: u64,
    /// Connections closed after `idle_timeout` idle (found by the
    /// maintenance task or at checkout).
    pub closed_idle_timeout: u64,
    /// Connections closed at their `max_lifetime` (while idle, or when they
    /// came back).
    pub closed_lifetime: u64,
    /// Connections closed after being lent `max_uses` times.
    pub closed_uses: u64,
    /// Connections closed because they failed the health-check ping before
    /// they would have been lent.
    pub closed_health_check: u64,
    /// Connections closed after `keepalive_max_missed` background keepalive
    /// pings in a row were missed.
    pub closed_keepalive: u64,
    /// Connections closed on demand ([`Pool::retain`](crate::Pool::retain),
    /// [`Pool::close_key`](crate::Pool::close_key),
    /// [`Pool::close_idle`](crate::Pool::close_idle)), or to bring the pool
    /// under caps lowered by [`Pool::resize`](crate::Pool::resize).
    pub closed_retired: u64,
}

// `closed_total` and `count_close` are written with the close reasons, in
// reason.rs, from one list of the reasons and their counters.

/// A consistent snapshot of the whole pool ([`Pool::state`](crate::Pool::state)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct PoolState {
    /// Connections that count against `max_open`: `idle + lent + dialing +
    /// pinging + recycling`.
    pub open: usize,
    /// Connections in the idle lists.
    pub idle: usize,
    /// Connections held by borrowers (including ones handed to a waiter that
    /// has not picked them up yet). A shared connection counts once, however
    /// many borrowers hold a handle to it.
    pub lent: usize,
    /// Handles to shared connections held by borrowers (0 in a pool whose
    /// manager lends exclusively).
    pub borrowers: usize,
    /// Dials in flight.
    pub dialing: usize,
    /// Idle connections taken out for a background keepalive ping.
    pub pinging: usize,
    /// Returned connections being recycled ([`Manager::recycle`](crate::Manager::recycle),
    /// the [`after_return`](crate::Builder::after_return) hook) before they
    /// are lent again or parked.
    pub recycling: usize,
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
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct KeyState {
    /// Connections of this key that count against `max_open_per_key`:
    /// `idle + lent + dialing + pinging + recycling`.
    pub open: usize,
    /// Idle connections of this key.
    pub idle: usize,
    /// Connections of this key held by borrowers (a shared one counts once).
    pub lent: usize,
    /// Handles to shared connections of this key held by borrowers.
    pub borrowers: usize,
    /// Dials in flight for this key.
    pub dialing: usize,
    /// Idle connections of this key out for a keepalive ping.
    pub pinging: usize,
    /// Returned connections of this key being recycled.
    pub recycling: usize,
    /// Consecutive failed dials of this key, refusals included (0 after a
    /// success; a refusal counts on from the failures before the dial
    /// whose connection was refused).
    pub dial_failures_in_a_row: u32,
    /// How long the key's dial backoff lasts still (`None` if it is not
    /// backing off; serialized in seconds, as `backoff_left_seconds`).
    /// Gets that find no idle connection meanwhile wait for a probe of it
    /// in flight or due within 400 ms, and fail at once otherwise.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "backoff_left_seconds", serialize_with = "maybe_seconds")
    )]
    pub backoff_left: Option<Duration>,
    /// Getters waiting for a connection of this key.
    pub waiting: usize,
    /// Cumulative counters since the pool started tracking this key.
    pub counters: Counters,
}

/// The counts the gauges show: idle, used (lent), pending (waiting).
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) struct Gauges {
    pub(crate) idle: usize,
    pub(crate) used: usize,
    pub(crate) pending: usize,
}

/// A duration as seconds, for serde.
#[cfg(feature = "serde")]
fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// An optional duration as seconds (or none), for serde.
#[cfg(feature = "serde")]
fn maybe_seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&d.map(|d| d.as_secs_f64()), s)
}
