//! A validated [`Config`], and advice on sizing the caps (the settings
//! themselves are the [`Builder`](crate::Builder)'s, their defaults in
//! [`defaults`]).
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

/// Declares every setting once: its field in [`Settings`] (as the builder
/// takes it), its default, and, unless marked `getter by hand` (a setting
/// `build` resolves, or one read by reference), its getter on [`Config`]
/// with the setting's docs.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $ty:ty = $default:expr $(, getter $by_hand:ident $hand:ident)?;
    )*) => {
        /// Every setting of a pool as the [`Builder`](crate::Builder) takes
        /// it, with its default. The builder's setters write these fields,
        /// its `Debug` shows them, and a validated [`Config`] keeps them as
        /// they were set, beside what `build` derived from them. (`None` for
        /// a cap: derived from the other caps at build; for
        /// `keepalive_max_missed`: the manager's.)
        #[derive(Debug, Clone, PartialEq)]
        pub(crate) struct Settings {
            $(pub(crate) $name: $ty,)*
        }

        impl Default for Settings {
            fn default() -> Self {
                Self {
                    $($name: $default,)*
                }
            }
        }

        impl Config {
            $(settings!(@getter $(#[doc = $doc])* $name: $ty $(, $by_hand $hand)?);)*
        }
    };
    (@getter $(#[doc = $doc:literal])* $name:ident: $ty:ty) => {
        $(#[doc = $doc])*
        pub fn $name(&self) -> $ty {
            Clone::clone(&self.set.$name)
        }
    };
    (@getter $(#[doc = $doc:literal])* $name:ident: $ty:ty, by hand) => {};
}

settings! {
    /// Cap on connections of all keys (idle + lent + dialing).
    max_open: usize = defaults::MAX_OPEN;
    /// Cap on connections of one key.
    max_open_per_key: Option<usize> = None, getter by hand;
    /// Cap on idle connections of all keys.
    max_idle: Option<usize> = None, getter by hand;
    /// Cap on idle connections of one key.
    max_idle_per_key: Option<usize> = None, getter by hand;
    /// Time limit of one dial.
    connect_timeout: Duration = defaults::CONNECT_TIMEOUT;
    /// How long a get may wait; `None` means forever.
    checkout_timeout: Option<Duration> = Some(defaults::CHECKOUT_TIMEOUT);
    /// Cap on getters waiting at once; `None` means no cap.
    max_waiters: Option<usize> = None;
    /// How long a connection may stay idle; `None` means forever.
    idle_timeout: Option<Duration> = Some(defaults::IDLE_TIMEOUT);
    /// How long a connection may live; `None` means forever.
    max_lifetime: Option<Duration> = Some(defaults::MAX_LIFETIME);
    /// Fraction by which lifetimes and keepalive intervals are randomly shortened.
    jitter: f64 = defaults::JITTER;
    /// How many times a connection may be lent; `None` means no limit.
    max_uses: Option<u64> = None;
    /// Idle connections kept ready per key.
    min_idle: usize = 0;
    /// When an idle connection is pinged before it is lent.
    health_check: HealthCheck = defaults::HEALTH_CHECK;
    /// Time limit of a health-check ping.
    ping_timeout: Duration = defaults::PING_TIMEOUT;
    /// Idle time after which background keepalive pings; `None`: no keepalive.
    keepalive_interval: Option<Duration> = Some(defaults::KEEPALIVE_INTERVAL);
    /// Time limit of a keepalive ping.
    keepalive_timeout: Duration = defaults::KEEPALIVE_TIMEOUT;
    /// Keepalive pings failed in a row that declare a connection dead.
    keepalive_max_missed: Option<u32> = None, getter by hand;
    /// Dial backoff per key; `None`: none.
    backoff: Option<Backoff> = Some(Backoff {
        base: defaults::BACKOFF_BASE,
        cap: defaults::BACKOFF_CAP,
    });
    /// Cap on dials in flight per key.
    max_connecting: usize = defaults::MAX_CONNECTING;
    /// Cap on the borrowers of one shared connection.
    max_borrowers: usize = defaults::MAX_BORROWERS;
    /// Whether the hot path reads the clock thread's time.
    clock_thread: bool = false;
    /// How long a connection may be held before it is reported as a
    /// possible leak; `None`: no leak detection.
    leak_detection_threshold: Option<Duration> = None;
    /// How long a get may wait before it is logged at `warn`; `None`: never.
    acquire_slow_threshold: Option<Duration> = Some(defaults::ACQUIRE_SLOW_THRESHOLD);
    /// The pool's name, in its metrics and log events.
    name: String = defaults::NAME.to_string(), getter by hand;
    /// Whether metrics carry the key (feature `metrics`).
    metrics_key_attribute: bool = false;
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
    /// Keepalive pings failed in a row that declare a connection dead.
    pub fn keepalive_max_missed(&self) -> u32 {
        self.keepalive_max_missed
    }
    /// The pool's name, in its metrics and log events.
    pub fn name(&self) -> &str {
        &self.set.name
    }
}
