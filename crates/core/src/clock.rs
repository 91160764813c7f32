//! The pool's time: [`Tick`], an instant as nanoseconds in a `u64`, and
//! [`Clock`], where a pool's hot path reads it.
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
//! **Two sources, one time line.** [`Tick::now`] reads tokio's
//! `Instant::now()`, so tokio's paused clock (`start_paused`,
//! `time::advance`) drives it in tests exactly as it drives the timers. A
//! get + return needs two readings, and this one converts from std's
//! `Instant`: a large share of an uncontended get + return. So a pool whose
//! runtime's clock is *not* paused when it is built reads
//! `CLOCK_MONOTONIC_COARSE` on its hot path instead ([`Clock::Coarse`],
//! Linux), with no conversion. That is the same clock as `Instant`'s,
//! behind it by at most one kernel tick (a few milliseconds), so both kinds
//! of `Tick` share one time line: a coarse reading is never later than a
//! precise one taken after it. What that costs in precision: an idle
//! timeout, lifetime or health-check threshold may be judged up to one tick
//! early, and a checkout deadline may end up to one tick early. Everything
//! off the hot path (the maintenance task, dials, pings) reads the precise
//! clock, so a timer set for a deadline always finds it due when it fires.
//! And where a tick would change an outcome, not just its timing, the
//! precise clock has the last word: a dial backoff that the coarse reading
//! says is still running (backoffs can be a millisecond) is checked again
//! with the precise clock before a getter is refused.
//!
//! **No clock thread.** A thread publishing the time every millisecond in
//! an atomic would save 2–3 ns per get + return (an atomic load against the
//! coarse clock's vDSO call): under 0.1 % of the cheapest field workload
//! measured (an HTTP/1.1 request through the pool, ~13 µs), for an OS
//! thread waking a thousand times a second. The crate has none.

use std::ops::Add;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// Where a pool's hot path (checkout, return) reads the time; chosen once,
/// when the pool is built (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clock {
    /// tokio's clock: [`Tick::now`]. For a runtime whose clock is paused,
    /// and where the coarse clock is not available.
    Tokio,
    /// `CLOCK_MONOTONIC_COARSE`: [`Tick::coarse_now`].
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    Coarse {
        /// The epoch in `CLOCK_MONOTONIC` nanoseconds, kept here so that a
        /// reading does not go through the epoch's `OnceLock`.
        raw_epoch: u64,
    },
}

impl Clock {
    /// The clock for a pool built now, on the current runtime: [`Clock::Tokio`]
    /// if tokio's clock is paused (it then stands still while this spins for
    /// a few microseconds) or the coarse clock is unavailable or disagrees
    /// with `Instant` (as it would if `Instant` were another clock); else
    /// [`Clock::Coarse`].
    pub(crate) fn detect() -> Clock {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let before = Instant::now();
            let spin = std::time::Instant::now();
            while spin.elapsed() < Duration::from_micros(5) {
                std::hint::spin_loop();
            }
            let after = Tick::now();
            if Instant::now() != before {
                let coarse = Tick::coarse_now();
                // Behind by at most one tick (a few ms), never ahead.
                let agree = coarse <= Tick::now()
                    && after.saturating_duration_since(coarse) < Duration::from_millis(50);
                if agree {
                    let raw_epoch = epoch_pair().1;
                    return Clock::Coarse { raw_epoch };
                }
            }
        }
        Clock::Tokio
    }

    /// Now, by this clock.
    #[inline]
    pub(crate) fn now(self) -> Tick {
        match self {
            Clock::Tokio => Tick::now(),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Clock::Coarse { raw_epoch } => Tick::coarse_since(raw_epoch),
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            Clock::Coarse { .. } => Tick::now(),
        }
    }
}

/// An instant, in nanoseconds since the process-wide epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Tick(u64);

/// The epoch, as an `Instant` of std's (which tokio's `Instant`s wrap,
/// paused or not), and as `CLOCK_MONOTONIC` nanoseconds: the raw one read
/// just after the `Instant` (see `epoch_pair`), so raw ticks are never
/// ahead.
static EPOCH: OnceLock<(Instant, u64)> = OnceLock::new();

/// The epoch's `Tick`: 2^62 ns (146 years) up, so earlier instants fit.
const ORIGIN: u64 = 1 << 62;

fn epoch_pair() -> (Instant, u64) {
    *EPOCH.get_or_init(|| {
        // The raw epoch is the raw reading taken *after* the `Instant`: a
        // tick from a raw reading is then never ahead of one from an
        // `Instant` read at the same moment, only behind, by the gap
        // between the two raw readings. Up to eight tries keep the gap
        // under a microsecond.
        let mut best: Option<(Instant, u64, u64)> = None;
        for _ in 0..8 {
            let raw_before = raw_monotonic();
            let epoch = Instant::from_std(std::time::Instant::now());
            let raw_after = raw_monotonic();
            let gap = raw_after - raw_before;
            if best.is_none_or(|(_, _, best_gap)| gap < best_gap) {
                best = Some((epoch, raw_after, gap));
            }
            if gap < 1_000 {
                break;
            }
        }
        let (epoch, raw_epoch, _) = best.expect("one try at least");
        (epoch, raw_epoch)
    })
}

fn epoch() -> Instant {
    epoch_pair().0
}

/// `CLOCK_MONOTONIC` in nanoseconds (0 where it is not read directly: the
/// coarse clock is then never used).
fn raw_monotonic() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        timespec_nanos(rustix::time::clock_gettime(
            rustix::time::ClockId::Monotonic,
        ))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        0
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn timespec_nanos(ts: rustix::time::Timespec) -> u64 {
    // Monotonic clocks count from boot: both fields are non-negative.
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// `d` times `factor` (in `[0, 1]`), saturating: `Duration::mul_f64`
/// panics where the product rounds up past `Duration::MAX`, which a
/// setting of `Duration::MAX` (meaning "never") reaches.
pub(crate) fn scaled(d: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(Duration::MAX)
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
    pub(crate) fn now() -> Tick {
        Tick::from(Instant::now())
    }

    /// Now, by `CLOCK_MONOTONIC_COARSE`: up to one kernel tick behind
    /// [`Tick::now`] of an unpaused clock (see the module docs).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[inline]
    pub(crate) fn coarse_now() -> Tick {
        Tick::coarse_since(epoch_pair().1)
    }

    /// [`Tick::coarse_now`], given the epoch's raw reading.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[inline]
    fn coarse_since(raw_epoch: u64) -> Tick {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
        // Wrapping, not saturating: nothing here can overflow. The clock
        // counts from boot, so `tv_sec * 10^9 + tv_nsec` fits in 64 bits
        // for 584 years of uptime.
        let raw = (ts.tv_sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(ts.tv_nsec as u64);
        Tick::of_raw(raw, raw_epoch)
    }

    /// The `Tick` of a raw `CLOCK_MONOTONIC` (or coarse) reading. Wrapping:
    /// a reading is `ORIGIN` (2^62) plus or minus less than 584 years since
    /// the epoch, so nothing can overflow (and the hot path does without
    /// the saturating forms).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[inline]
    fn of_raw(raw: u64, raw_epoch: u64) -> Tick {
        Tick(raw.wrapping_sub(raw_epoch).wrapping_add(ORIGIN))
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
