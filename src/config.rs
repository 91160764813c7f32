//! A validated [`Config`], the defaults, and advice on sizing the caps (the
//! settings themselves are the [`Builder`](crate::Builder)'s).
//!
//! # Sizing the caps
//!
//! By Little's law a key needs about `peak requests per second × mean time a
//! connection is held` connections at its busiest; set `max_open_per_key` a
//! little above that (×1.5 for bursts) and keep `max_idle_per_key` equal to
//! it. An idle cap far below the open cap is the trap of Go's
//! `MaxIdleConnsPerHost = 2`: every burst opens connections that are closed
//! again on return, the closes pile up in `TIME_WAIT`, and the client runs
//! out of ephemeral ports while its pool barely pools. Trim idle connections
//! with time (idle timeout), not with a small idle cap.

use std::time::Duration;

use crate::clock::Tick;

/// Default for `max_open`: Go's default global idle cap (`MaxIdleConns`),
/// enough for most services, and below PostgreSQL's default `max_connections`.
pub const DEFAULT_MAX_OPEN: usize = 100;
/// Default for `connect_timeout`: long enough for a slow TLS handshake across
/// regions, short enough that a black-holed host frees its slot quickly.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for `checkout_timeout`: a getter never waits forever (bb8's default too).
pub const DEFAULT_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for `idle_timeout`: Go's `IdleConnTimeout`. Long enough to carry a
/// connection across the gaps of ordinary traffic, short enough that a quiet
/// client hands its sockets back to the server.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Default for `max_lifetime`: HikariCP's and bb8's 30 minutes, so load
/// balancers and DNS changes are followed and server-side leaks are bounded.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Default for `jitter`: gRPC's ±10% on `MaxConnectionAge`, applied downwards
/// so a lifetime never exceeds `max_lifetime`.
pub const DEFAULT_JITTER: f64 = 0.1;
/// Default for the health check: HikariCP skips validation of a connection
/// used within the last 500 ms (`aliveBypassWindowMs`): a connection that just
/// worked almost surely still works, and a busy pool pays no round trip.
pub const DEFAULT_HEALTH_CHECK: HealthCheck = HealthCheck::IfIdleFor(Duration::from_millis(500));
/// Default for `ping_timeout`: a healthy peer answers a ping in milliseconds;
/// five seconds only fails a peer that is gone.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for `keepalive_interval`: half of the ~60 s after which NATs and
/// firewalls commonly drop an idle flow, so idle connections survive them,
/// and a dead one is found before a user meets it.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Default for `keepalive_timeout`: gRPC's `Timeout` is 20 s; an idle
/// connection whose peer takes more than 10 s to answer a ping is not worth
/// keeping.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for `keepalive_max_missed` (unless the manager has its own, see
/// [`Manager::keepalive_max_missed`](crate::Manager::keepalive_max_missed)):
/// 1, gRPC's semantics. A missed ping on an idle connection costs one dial
/// to repair; keeping a doubtful one costs a user's request.
pub const DEFAULT_KEEPALIVE_MAX_MISSED: u32 = 1;
/// Default first dial backoff: short enough that one transient failure costs
/// callers of that key at most 100 ms of fast failures.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Default backoff cap: a backend that comes back is used again within 5 s.
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Default for `max_connecting`: the MongoDB pool spec's `maxConnecting`. A
/// burst of getters on a cold key opens connections two at a time (each
/// serving a waiter as soon as it is up, returns serving the rest), instead
/// of hitting a just-restarted backend with one handshake per getter.
pub const DEFAULT_MAX_CONNECTING: usize = 2;
/// Default for `acquire_slow_threshold`: sqlx's. A get that waits 2 s is
/// worth a warning well before its checkout deadline (30 s) fails it.
pub const DEFAULT_ACQUIRE_SLOW_THRESHOLD: Duration = Duration::from_secs(2);
/// Default for `name`.
pub const DEFAULT_NAME: &str = "connpool";
/// Default for `max_borrowers`: a shared (multiplexed) connection carries at
/// most 100 borrowers at once, gRPC's usual `MAX_CONCURRENT_STREAMS`. A peer
/// that advertises no limit (or a huge one) would otherwise never look
/// saturated, and every call would funnel through one connection.
pub const DEFAULT_MAX_BORROWERS: usize = 100;

/// When a connection taken from the idle list is pinged
/// ([`Manager::ping`](crate::Manager::ping)) before it is lent.
///
/// A connection that fails the check (or its [`ping_timeout`](crate::Builder::ping_timeout))
/// is closed and the getter is served by another idle connection or a new
/// dial, within its checkout deadline. A connection handed over directly by a
/// returning borrower, or freshly dialed, is never pinged: it just worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheck {
    /// Never ping: only [`Manager::is_broken`](crate::Manager::is_broken) is checked. Cheapest; a dead
    /// connection reaches the user when `is_broken` cannot see its death.
    Never,
    /// Ping every connection taken from the idle list: no known-dead
    /// connection is ever lent, at one round trip per idle checkout.
    Always,
    /// Ping when the connection was idle this long or longer (HikariCP).
    IfIdleFor(Duration),
}

/// Exponential dial backoff of one key: after the `n`th consecutive failed
/// dial, no dial for a random time between half of and all of
/// `min(cap, base × 2ⁿ⁻¹)` ("equal jitter", so keys that failed together
/// retry apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
}

impl Backoff {
    /// The delay after `failures` consecutive failures, before jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// A validated pool configuration (see [`Builder`](crate::Builder) for each field's meaning and default).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub(crate) max_open: usize,
    pub(crate) max_open_per_key: usize,
    pub(crate) max_idle: usize,
    pub(crate) max_idle_per_key: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) checkout_timeout: Option<Duration>,
    pub(crate) max_waiters: Option<usize>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) jitter: f64,
    pub(crate) max_uses: Option<u64>,
    pub(crate) min_idle: usize,
    pub(crate) health_check: HealthCheck,
    pub(crate) ping_timeout: Duration,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) keepalive_max_missed: u32,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) max_connecting: usize,
    pub(crate) max_borrowers: usize,
    pub(crate) clock_thread: bool,
    pub(crate) leak_detection_threshold: Option<Duration>,
    pub(crate) acquire_slow_threshold: Option<Duration>,
    pub(crate) name: String,
    pub(crate) metrics_key_attribute: bool,
    /// `idle_timeout` in nanoseconds (`u64::MAX`: none), and the health
    /// check's idle threshold (0: `Always`, `u64::MAX`: `Never`): checkout
    /// and return compare with them, without converting a `Duration` each
    /// time.
    pub(crate) idle_timeout_ns: u64,
    pub(crate) health_idle_ns: u64,
}

impl Config {
    /// The caps as built.
    pub(crate) fn limits(&self) -> crate::limits::Limits {
        crate::limits::Limits {
            max_open: self.max_open,
            max_open_per_key: self.max_open_per_key,
            max_idle: self.max_idle,
            max_idle_per_key: self.max_idle_per_key,
            min_idle: self.min_idle,
        }
    }

    /// How long a key whose dial failed is remembered (its last dial error,
    /// its failures in a row, its backoff) once nothing else keeps it: a
    /// backoff cap past the backoff; without backoff, a default backoff cap
    /// or a checkout deadline past the failure, whichever is longer.
    pub(crate) fn failure_memory(&self) -> Duration {
        match self.backoff {
            Some(b) => b.cap,
            None => DEFAULT_BACKOFF_CAP.max(self.checkout_timeout.unwrap_or_default()),
        }
    }

    /// Whether the health-check policy pings a connection idle since `since`
    /// before it is lent at `now`.
    #[inline]
    pub(crate) fn health_check_due(&self, since: Tick, now: Tick) -> bool {
        match self.health_idle_ns {
            0 => true,
            u64::MAX => false,
            // An addition, not `now - since`: cheaper, and it saturates.
            n => since.add_nanos(n) <= now,
        }
    }

    /// Whether a connection idle since `since` reached the idle timeout at `now`.
    #[inline]
    pub(crate) fn idle_timed_out(&self, since: Tick, now: Tick) -> bool {
        self.idle_timeout_ns != u64::MAX && since.add_nanos(self.idle_timeout_ns) <= now
    }

    /// Cap on connections of all keys (idle + lent + dialing).
    pub fn max_open(&self) -> usize {
        self.max_open
    }
    /// Cap on connections of one key.
    pub fn max_open_per_key(&self) -> usize {
        self.max_open_per_key
    }
    /// Cap on idle connections of all keys.
    pub fn max_idle(&self) -> usize {
        self.max_idle
    }
    /// Cap on idle connections of one key.
    pub fn max_idle_per_key(&self) -> usize {
        self.max_idle_per_key
    }
    /// Time limit of one dial.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    /// How long a get may wait; `None` means forever.
    pub fn checkout_timeout(&self) -> Option<Duration> {
        self.checkout_timeout
    }
    /// Cap on getters waiting at once; `None` means no cap.
    pub fn max_waiters(&self) -> Option<usize> {
        self.max_waiters
    }
    /// How long a connection may stay idle; `None` means forever.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }
    /// How long a connection may live; `None` means forever.
    pub fn max_lifetime(&self) -> Option<Duration> {
        self.max_lifetime
    }
    /// Fraction by which lifetimes and keepalive intervals are randomly shortened.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }
    /// How many times a connection may be lent; `None` means no limit.
    pub fn max_uses(&self) -> Option<u64> {
        self.max_uses
    }
    /// Idle connections kept ready per key.
    pub fn min_idle(&self) -> usize {
        self.min_idle
    }
    /// When an idle connection is pinged before it is lent.
    pub fn health_check(&self) -> HealthCheck {
        self.health_check
    }
    /// Time limit of a health-check ping.
    pub fn ping_timeout(&self) -> Duration {
        self.ping_timeout
    }
    /// Idle time after which background keepalive pings; `None`: no keepalive.
    pub fn keepalive_interval(&self) -> Option<Duration> {
        self.keepalive_interval
    }
    /// Time limit of a keepalive ping.
    pub fn keepalive_timeout(&self) -> Duration {
        self.keepalive_timeout
    }
    /// Keepalive pings failed in a row that declare a connection dead.
    pub fn keepalive_max_missed(&self) -> u32 {
        self.keepalive_max_missed
    }
    /// Dial backoff per key; `None`: none.
    pub fn backoff(&self) -> Option<Backoff> {
        self.backoff
    }
    /// Cap on dials in flight per key.
    pub fn max_connecting(&self) -> usize {
        self.max_connecting
    }
    /// Cap on the borrowers of one shared connection.
    pub fn max_borrowers(&self) -> usize {
        self.max_borrowers
    }
    /// How long a connection may be held before it is reported as a
    /// possible leak; `None`: no leak detection.
    pub fn leak_detection_threshold(&self) -> Option<Duration> {
        self.leak_detection_threshold
    }
    /// How long a get may wait before it is logged at `warn`; `None`: never.
    pub fn acquire_slow_threshold(&self) -> Option<Duration> {
        self.acquire_slow_threshold
    }
    /// The pool's name, in its metrics and log events.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Whether metrics carry the key (feature `metrics`).
    pub fn metrics_key_attribute(&self) -> bool {
        self.metrics_key_attribute
    }
    /// Whether the hot path reads the clock thread's time.
    pub fn clock_thread(&self) -> bool {
        self.clock_thread
    }
}
