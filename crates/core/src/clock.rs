//! The pool's time: [`Tick`], an instant as nanoseconds in a `u64`.
//!
//! Every connection's life record, every deadline and the backoffs are
//! compared and added to on the hot path (checkout, return). `Instant`
//! arithmetic normalizes a seconds-and-nanoseconds pair on every addition
//! and subtraction; a `Tick` is one integer, half the size, and adds with one
//! instruction. It counts from a process-wide epoch (the first time the pool
//! reads the clock), offset by [`ORIGIN`] so that instants *before* the epoch
//! fit too: each tokio runtime with a paused clock has its own, frozen at
//! its start, so a test's runtime can be behind the epoch. 146 years fit on
//! either side of the epoch.
//!
//! **One source.** [`Tick::now`] reads tokio's `Instant::now()`, so tokio's
//! paused clock (`start_paused`, `time::advance`) drives the pool in tests
//! exactly as it drives the timers, and every reading is as precise as the
//! timers' own. A cheaper clock (`CLOCK_MONOTONIC_COARSE`, or a thread
//! publishing the time in an atomic) made a get + return faster and moved
//! no field workload (see BENCHMARKS.md, "Speed mechanisms").

use std::ops::Add;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// An instant, in nanoseconds since the process-wide epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Tick(u64);

/// The epoch, as an `Instant` of std's (which tokio's `Instant`s wrap,
/// paused or not).
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The epoch's `Tick`: 2^62 ns (146 years) up, so earlier instants fit.
const ORIGIN: u64 = 1 << 62;

fn epoch() -> Instant {
    *EPOCH.get_or_init(|| Instant::from_std(std::time::Instant::now()))
}

/// `d` times `factor` (in `[0, 1]`), saturating: `Duration::mul_f64`
/// panics where the product rounds up past `Duration::MAX`, which a
/// setting of `Duration::MAX` (meaning "never") reaches.
pub(crate) fn scaled(d: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// `d` shortened by a random fraction of at most `jitter` (so never longer
/// than `d`): connections opened or returned together spread out.
pub(crate) fn jittered(d: Duration, jitter: f64) -> Duration {
    if jitter == 0.0 {
        return d;
    }
    scaled(d, 1.0 - jitter * fastrand::f64())
}

/// `d` in nanoseconds, saturating (`Duration::MAX` is `u64::MAX`). In
/// 64-bit arithmetic: `as_nanos` goes through `u128`, which costs more on
/// the hot path (every `Tick::now`).
pub(crate) fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(u64::from(d.subsec_nanos())))
        .unwrap_or(u64::MAX)
}

impl Tick {
    /// Later than any instant the pool will see: "no deadline". Additions
    /// saturate to it.
    pub(crate) const NEVER: Tick = Tick(u64::MAX);

    /// Earlier than any instant the pool will see (they are near 2^62).
    pub(crate) const BEFORE_ALL: Tick = Tick(0);

    /// Now, by tokio's clock.
    #[inline]
    pub(crate) fn now() -> Tick {
        Tick::from(Instant::now())
    }

    /// The same instant as a tokio `Instant` (for timers).
    pub(crate) fn into_instant(self) -> Instant {
        match self.0.checked_sub(ORIGIN) {
            Some(after) => epoch() + Duration::from_nanos(after),
            None => epoch() - Duration::from_nanos(ORIGIN - self.0),
        }
    }

    /// `self` plus `n` nanoseconds, saturating to [`Tick::NEVER`].
    pub(crate) fn add_nanos(self, n: u64) -> Tick {
        Tick(self.0.saturating_add(n))
    }

    /// How long after `earlier` this is; zero if it is not later.
    pub(crate) fn saturating_duration_since(self, earlier: Tick) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl From<Instant> for Tick {
    fn from(instant: Instant) -> Tick {
        let epoch = epoch();
        match instant.checked_duration_since(epoch) {
            Some(after) => Tick(ORIGIN.saturating_add(nanos(after))),
            None => Tick(ORIGIN.saturating_sub(nanos(epoch - instant))),
        }
    }
}

impl Add<Duration> for Tick {
    type Output = Tick;

    /// Saturating: a deadline past the end of time is never reached.
    fn add(self, d: Duration) -> Tick {
        Tick(self.0.saturating_add(nanos(d)))
    }
}

#[cfg(test)]
mod tests;
