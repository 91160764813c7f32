//! The idle timeout against `min_idle`.

use std::collections::BTreeSet;

use tokio::time::Instant;

use crate::support::*;

use super::{U, ms, secs};

// ---------------------------------------------------------------------------
// 6. Idle timeout and min_idle
// ---------------------------------------------------------------------------

/// `min_idle(2)`: of 5 connections returned together, the idle timeout
/// closes exactly 3 (at the deadline, not 1 ms before); the 2 left stay
/// through five more timeouts, and nothing is re-dialed (no close/refill
/// churn). `max_open(5)` makes the 5 dials exact whatever background
/// top-up `min_idle` would start while they are lent.
#[tokio::test(start_paused = true)]
async fn idle_timeout_keeps_min_idle_without_churn() {
    let (mock, pool) =
        U::pool(|b| b.max_open(5).idle_timeout(secs(10)).min_idle(2).jitter(0.0)).await;
    let t0 = Instant::now();
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(ok(pool.get().await));
    }
    settle().await;
    assert_eq!(mock.connects(), 5);
    assert_eq!(counts(&pool), Counts { open: 5, lent: 5, ..ZERO });

    at(t0 + secs(1)).await;
    drop(held);
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 5, idle: 5, ..ZERO });
    check_counts(&pool, &[()]);

    at(t0 + secs(11) - ms(1)).await;
    assert_eq!(
        counts(&pool),
        Counts { open: 5, idle: 5, ..ZERO },
        "not 1 ms early"
    );
    at(t0 + secs(11)).await;
    assert_eq!(counts(&pool), Counts { open: 2, idle: 2, ..ZERO });
    assert_eq!(pool.state().counters.closed_idle_timeout, 3);
    let closes = mock.closes_since(t0);
    assert_eq!(closes.len(), 3);
    assert!(
        closes.iter().all(|&(_, after)| after == secs(11)),
        "{closes:?}"
    );
    assert_eq!(mock.connects(), 5);
    check_counts(&pool, &[()]);

    for n in 2..=6 {
        at(t0 + secs(1 + 10 * n) + ms(1)).await;
        assert_eq!(
            counts(&pool),
            Counts { open: 2, idle: 2, ..ZERO },
            "after {n} timeouts"
        );
        assert_eq!(mock.connects(), 5, "no churn");
        assert_eq!(mock.closed().len(), 3);
        check_counts(&pool, &[()]);
    }
    let s = pool.state();
    assert_eq!(s.counters.closed_total(), 3);
    assert_eq!(s.counters.dials, 5);

    // The two kept ones are still usable (lent, not stale-closed: the key
    // is at `min_idle`).
    let kept: BTreeSet<u64> = (1..=5).filter(|id| !mock.closed().contains(id)).collect();
    let c = ok(pool.get().await);
    assert!(kept.contains(&c.id), "{} not in {kept:?}", c.id);
    assert_eq!(pool.state().counters.closed_idle_timeout, 3);
}

/// `min_idle(2)` on a key first seen through a get that had to dial: the
/// get's own dial serves it, and the pool dials 2 more in the background
/// (dials beyond the key's waiters count toward `min_idle`). Once the
/// connection is back the key has 3 idle; the idle timeout closes the one
/// above `min_idle` and never goes below it. (Regression: the waiting path
/// of checkout and a finished dial did not top the key up, so it stayed at
/// 1 idle connection for good.)
#[tokio::test(start_paused = true)]
async fn min_idle_tops_up_a_key_first_seen_through_a_dialing_get() {
    let (mock, pool) = U::pool(|b| b.idle_timeout(secs(10)).min_idle(2).jitter(0.0)).await;
    let t0 = Instant::now();
    let c = ok(pool.get().await);
    assert_eq!(c.id, 1);
    settle().await;
    drop(c);
    at(t0 + secs(30)).await;
    check_counts(&pool, &[()]);
    let s = pool.state();
    assert_eq!(
        s.idle,
        2,
        "key seen, min_idle(2), 30 s later: {:?}, {} dials",
        counts(&pool),
        mock.connects()
    );
    assert_eq!(mock.connects(), 3, "the get's dial and 2 for min_idle");
    assert_eq!(s.counters.closed_idle_timeout, 1);
    assert_eq!(s.counters.closed_total(), 1);
}
