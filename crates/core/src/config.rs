//! A validated [`Config`]: the settings as the [`Builder`](crate::Builder)
//! took them (their defaults in [`Settings`]), and what `build` derived
//! from them.

use std::time::Duration;

use crate::clock::Tick;
use crate::limits::Limits;
use crate::policy::Backoff;
use crate::settings::Settings;

/// A validated pool configuration (see [`Builder`](crate::Builder) for each field's meaning and default).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    /// The settings as set.
    pub(crate) set: Settings,
    /// The caps, the unset ones derived from the others.
    pub(crate) limits: Limits,
    /// `idle_timeout` in nanoseconds (`u64::MAX`: none), and the health
    /// check's idle threshold (0: `Always`, `u64::MAX`: `Never`): checkout
    /// and return compare with them, without converting a `Duration` each
    /// time.
    pub(crate) idle_timeout_ns: u64,
    pub(crate) health_idle_ns: u64,
}

impl Config {
    /// How many dials of a key may be in flight: the setting, or while
    /// unset, [`Settings::MAX_CONNECTING_UNSET`] while the key is `untried`
    /// or recovers and no cap once it is healthy.
    #[inline]
    pub(crate) fn max_connecting(&self, untried: impl FnOnce() -> bool) -> usize {
        match self.set.max_connecting {
            Some(n) => n,
            None if untried() => Settings::MAX_CONNECTING_UNSET,
            None => usize::MAX,
        }
    }

    /// How long a key whose dial failed is remembered (its last dial error,
    /// its failures in a row, its backoff) once nothing else keeps it: a
    /// backoff cap past the backoff; without backoff, a default backoff cap
    /// or a checkout deadline past the failure, whichever is longer.
    pub(crate) fn failure_memory(&self) -> Duration {
        let deadline = self.set.checkout_timeout.unwrap_or_default();
        self.set
            .backoff
            .map_or(Backoff::DEFAULT.cap.max(deadline), |b| b.cap)
    }

    /// Whether a connection idle since `since` reached the idle timeout at `now`.
    #[inline]
    pub(crate) fn idle_timed_out(&self, since: Tick, now: Tick) -> bool {
        self.idle_timeout_ns != u64::MAX && since.add_nanos(self.idle_timeout_ns) <= now
    }
}
