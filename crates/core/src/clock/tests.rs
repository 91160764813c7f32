use super::{Tick, jittered};
use std::time::Duration;
use tokio::time::Instant;

// Each paused runtime has a clock of its own, frozen at its start: one
// created before another test set the epoch is behind it.
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
}

#[test]
fn scaling_saturates_where_mul_f64_would_panic() {
    use super::scaled;
    assert_eq!(scaled(Duration::from_secs(10), 0.5), Duration::from_secs(5));
    assert_eq!(scaled(Duration::MAX, 1.0), Duration::MAX);
    assert!(std::panic::catch_unwind(|| Duration::MAX.mul_f64(1.0)).is_err());
    assert!(scaled(Duration::MAX, 0.5) < Duration::MAX);
}

#[test]
fn jitter_stays_in_its_band() {
    let d = Duration::from_secs(100);
    assert_eq!(jittered(d, 0.0), d);
    let (mut lo, mut hi) = (d, Duration::ZERO);
    for _ in 0..10_000 {
        let j = jittered(d, 0.1);
        assert!(j <= d && j >= Duration::from_secs(90), "{j:?}");
        lo = lo.min(j);
        hi = hi.max(j);
    }
    // It really spreads: the extremes of 10k draws come near the band's ends.
    assert!(lo < Duration::from_secs(91) && hi > Duration::from_secs(99));
}
