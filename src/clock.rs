//! The pool's time: [`Tick`], an instant as nanoseconds in a `u64`.
//!
//! Every connection's life record, every deadline and the backoffs are
//! compared and added to on the hot path (checkout, return). `Instant`
//! arithmetic normalizes a seconds-and-nanoseconds pair on every addition
//! and subtraction; a `Tick` is one integer, half the size, and adds with one
//! instruction. It counts from a process-wide epoch (the first time the pool
//! reads the clock), offset by [`ORIGIN`] so that instants *before* the epoch
//! fit too: each tokio runtime with a paused clock has its own, frozen at
//! its start, so a test's runtime can be behind the epoch another test's
//! runtime set. It is read through tokio's `Instant::now()`, so tokio's
//! paused clock (`start_paused`, `time::advance`) drives it in tests exactly
//! as it drives the timers. 146 years fit on either side of the epoch.

use std::ops::Add;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// An instant, in nanoseconds since the process-wide epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Tick(u64);

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The epoch's `Tick`: 2^62 ns (146 years) up, so earlier instants fit.
const ORIGIN: u64 = 1 << 62;

fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
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

    /// Now, by tokio's clock.
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

    /// `self + d`, unless it does not fit.
    pub(crate) fn checked_add(self, d: Duration) -> Option<Tick> {
        self.0.checked_add(nanos(d)).map(Tick)
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
mod tests {
    use super::Tick;
    use std::time::Duration;
    use tokio::time::Instant;

    // Each paused runtime has a clock of its own, frozen at its start: one
    // created before another test set the epoch is behind it. (Before the
    // origin offset such instants all became the epoch itself, and a
    // getter's deadline fired late: seen in CI as a flaky core test.)
    #[test]
    fn instants_before_the_epoch_keep_their_distance() {
        let epoch = super::epoch();
        let early = epoch - Duration::from_secs(5);
        let earlier = early - Duration::from_secs(5);
        let (a, b) = (Tick::from(earlier), Tick::from(early));
        assert!(a < b);
        assert_eq!(b.saturating_duration_since(a), Duration::from_secs(5));
        assert_eq!(a.into_instant(), earlier);
        assert_eq!((a + Duration::from_secs(5)).into_instant(), early);
        assert!(Tick::from(epoch) > a);
        assert_eq!(Tick::from(epoch).into_instant(), epoch);
    }

    #[test]
    fn nanos_saturate() {
        use super::nanos;
        assert_eq!(nanos(Duration::new(3, 7)), 3_000_000_007);
        assert_eq!(nanos(Duration::from_nanos(u64::MAX)), u64::MAX);
        assert_eq!(
            nanos(Duration::from_nanos(u64::MAX) + Duration::from_nanos(1)),
            u64::MAX
        );
        assert_eq!(
            nanos(Duration::new(u64::MAX / 1_000_000_000, 0)),
            18_446_744_073_000_000_000
        );
        assert_eq!(nanos(Duration::MAX), u64::MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn follows_the_paused_clock_exactly() {
        let t0 = Tick::now();
        let i0 = Instant::now();
        tokio::time::advance(Duration::from_millis(1500)).await;
        let t1 = Tick::now();
        assert_eq!(
            t1.saturating_duration_since(t0),
            Duration::from_millis(1500)
        );
        assert_eq!(t1.into_instant(), i0 + Duration::from_millis(1500));
        assert_eq!(Tick::from(t1.into_instant()), t1);
        assert_eq!(t0 + Duration::from_millis(1500), t1);
        assert!(t0 < t1);
        assert_eq!(t0.saturating_duration_since(t1), Duration::ZERO);
        assert_eq!(t1 + Duration::MAX, t1 + Duration::from_secs(u64::MAX));
        assert_eq!(t1.checked_add(Duration::MAX), None);
    }
}
