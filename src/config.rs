//! A validated [`Config`], and advice on sizing the caps (the settings
//! themselves are the [`Builder`](crate::Builder)'s, their defaults in
//! [`defaults`](crate::defaults)).
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
use crate::defaults;

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

/// Every setting of a pool as the [`Builder`](crate::Builder) takes it,
/// with its default: each setting is declared here once. The builder's
/// setters write these fields, its `Debug` shows them, and a validated
/// [`Config`] keeps them as they were set, beside what `build` derived
/// from them. (`None` for a cap: derived from the other caps at build;
/// for `keepalive_max_missed`: the manager's.)
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    pub(crate) max_open: usize,
    pub(crate) max_open_per_key: Option<usize>,
    pub(crate) max_idle: Option<usize>,
    pub(crate) max_idle_per_key: Option<usize>,
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
    pub(crate) keepalive_max_missed: Option<u32>,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) max_connecting: usize,
    pub(crate) max_borrowers: usize,
    pub(crate) clock_thread: bool,
    pub(crate) leak_detection_threshold: Option<Duration>,
    pub(crate) acquire_slow_threshold: Option<Duration>,
    pub(crate) name: String,
    pub(crate) metrics_key_attribute: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_open: defaults::MAX_OPEN,
            max_open_per_key: None,
            max_idle: None,
            max_idle_per_key: None,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            checkout_timeout: Some(defaults::CHECKOUT_TIMEOUT),
            max_waiters: None,
            idle_timeout: Some(defaults::IDLE_TIMEOUT),
            max_lifetime: Some(defaults::MAX_LIFETIME),
            jitter: defaults::JITTER,
            max_uses: None,
            min_idle: 0,
            health_check: defaults::HEALTH_CHECK,
            ping_timeout: defaults::PING_TIMEOUT,
            keepalive_interval: Some(defaults::KEEPALIVE_INTERVAL),
            keepalive_timeout: defaults::KEEPALIVE_TIMEOUT,
            keepalive_max_missed: None,
            backoff: Some(Backoff {
                base: defaults::BACKOFF_BASE,
                cap: defaults::BACKOFF_CAP,
            }),
            max_connecting: defaults::MAX_CONNECTING,
            max_borrowers: defaults::MAX_BORROWERS,
            clock_thread: false,
            leak_detection_threshold: None,
            acquire_slow_threshold: Some(defaults::ACQUIRE_SLOW_THRESHOLD),
            name: defaults::NAME.to_string(),
            metrics_key_attribute: false,
        }
    }
}

/// A validated pool configuration (see [`Builder`](crate::Builder) for each field's meaning and default).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The settings as set.
    pub(crate) set: Settings,
    /// The caps, the unset ones derived from the others.
    pub(crate) max_open_per_key: usize,
    pub(crate) max_idle: usize,
    pub(crate) max_idle_per_key: usize,
    /// The builder's, else the manager's (clamped).
    pub(crate) keepalive_max_missed: u32,
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
            max_open: self.set.max_open,
            max_open_per_key: self.max_open_per_key,
            max_idle: self.max_idle,
            max_idle_per_key: self.max_idle_per_key,
            min_idle: self.set.min_idle,
        }
    }

    /// How long a key whose dial failed is remembered (its last dial error,
    /// its failures in a row, its backoff) once nothing else keeps it: a
    /// backoff cap past the backoff; without backoff, a default backoff cap
    /// or a checkout deadline past the failure, whichever is longer.
    pub(crate) fn failure_memory(&self) -> Duration {
        match self.set.backoff {
            Some(b) => b.cap,
            None => defaults::BACKOFF_CAP.max(self.set.checkout_timeout.unwrap_or_default()),
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
        self.set.max_open
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
        self.set.connect_timeout
    }
    /// How long a get may wait; `None` means forever.
    pub fn checkout_timeout(&self) -> Option<Duration> {
        self.set.checkout_timeout
    }
    /// Cap on getters waiting at once; `None` means no cap.
    pub fn max_waiters(&self) -> Option<usize> {
        self.set.max_waiters
    }
    /// How long a connection may stay idle; `None` means forever.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.set.idle_timeout
    }
    /// How long a connection may live; `None` means forever.
    pub fn max_lifetime(&self) -> Option<Duration> {
        self.set.max_lifetime
    }
    /// Fraction by which lifetimes and keepalive intervals are randomly shortened.
    pub fn jitter(&self) -> f64 {
        self.set.jitter
    }
    /// How many times a connection may be lent; `None` means no limit.
    pub fn max_uses(&self) -> Option<u64> {
        self.set.max_uses
    }
    /// Idle connections kept ready per key.
    pub fn min_idle(&self) -> usize {
        self.set.min_idle
    }
    /// When an idle connection is pinged before it is lent.
    pub fn health_check(&self) -> HealthCheck {
        self.set.health_check
    }
    /// Time limit of a health-check ping.
    pub fn ping_timeout(&self) -> Duration {
        self.set.ping_timeout
    }
    /// Idle time after which background keepalive pings; `None`: no keepalive.
    pub fn keepalive_interval(&self) -> Option<Duration> {
        self.set.keepalive_interval
    }
    /// Time limit of a keepalive ping.
    pub fn keepalive_timeout(&self) -> Duration {
        self.set.keepalive_timeout
    }
    /// Keepalive pings failed in a row that declare a connection dead.
    pub fn keepalive_max_missed(&self) -> u32 {
        self.keepalive_max_missed
    }
    /// Dial backoff per key; `None`: none.
    pub fn backoff(&self) -> Option<Backoff> {
        self.set.backoff
    }
    /// Cap on dials in flight per key.
    pub fn max_connecting(&self) -> usize {
        self.set.max_connecting
    }
    /// Cap on the borrowers of one shared connection.
    pub fn max_borrowers(&self) -> usize {
        self.set.max_borrowers
    }
    /// How long a connection may be held before it is reported as a
    /// possible leak; `None`: no leak detection.
    pub fn leak_detection_threshold(&self) -> Option<Duration> {
        self.set.leak_detection_threshold
    }
    /// How long a get may wait before it is logged at `warn`; `None`: never.
    pub fn acquire_slow_threshold(&self) -> Option<Duration> {
        self.set.acquire_slow_threshold
    }
    /// The pool's name, in its metrics and log events.
    pub fn name(&self) -> &str {
        &self.set.name
    }
    /// Whether metrics carry the key (feature `metrics`).
    pub fn metrics_key_attribute(&self) -> bool {
        self.set.metrics_key_attribute
    }
    /// Whether the hot path reads the clock thread's time.
    pub fn clock_thread(&self) -> bool {
        self.set.clock_thread
    }
}
