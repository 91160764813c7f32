//! The backoff schedule: its start, doubling up to the cap, jitter, and a
//! short backoff ending on time on a running clock.

use std::time::Duration;

use connpool::Error;
use tokio::time::{Instant, advance};

use crate::support::*;

use super::{
    BASE, CAP, M, assert_in_band, backoff_counters, backoff_error, backoff_left, backoff_state,
    connect_error, delay_of, ms, ns,
};

// ---------------------------------------------------------------------------
// 1. The schedule
// ---------------------------------------------------------------------------

/// The plainest case: a cold key, nothing open, its one dial fails. The
/// key backs off though nothing of it is open (a backend that is down
/// leaves exactly such keys behind), and the next get does not dial: it
/// waits for the pool's probe at the backoff's end, which fails it with
/// the probe's error.
#[tokio::test(start_paused = true)]
async fn a_failed_dial_backs_off_a_key_with_nothing_open() {
    let (mock, pool) = M::pool(|b| b.backoff(BASE, CAP)).await;
    mock.push(1, Step::Fail("refused"));
    mock.push(1, Step::Fail("refused again"));
    let t0 = Instant::now();

    let e = err(pool.get_for(&1).await);
    assert_eq!(connect_error(&e), "refused");
    assert_eq!(mock.connects(), 1);
    assert_eq!(backoff_counters(&pool), (1, 1, 0));
    assert_eq!(backoff_state(&pool, &1), (true, 1));
    let left = backoff_left(&pool, &1);
    assert_in_band(left, BASE);

    // The next get waits for the probe (tokio's timer: to the next
    // millisecond), which fails it.
    let e = err(pool.get_for(&1).await);
    let waited = Instant::now() - t0;
    assert!(
        waited >= left && waited <= left + ms(1),
        "waited {waited:?} for a backoff of {left:?}"
    );
    let (retry_in, msg) = backoff_error(&e);
    assert_eq!(msg, "refused again");
    assert_in_band(retry_in, delay_of(BASE, CAP, 2));
    assert_eq!(mock.connects(), 2, "one dial in the backoff: the probe");
    assert_eq!(backoff_counters(&pool), (2, 2, 1));
    assert_eq!(backoff_state(&pool, &1), (true, 2));
    check_counts(&pool, &[1]);
}

/// With a key kept alive by a lent connection (so this test does not depend
/// on the previous one), seven failures in a row: after the n-th, the key
/// backs off for a time in [d/2, d], d = min(100 ms, 10 ms × 2ⁿ⁻¹) (10, 20,
/// 40, 80 ms, then the 100 ms cap); it is in backoff until exactly that
/// instant (1 ns before it still is, `retry_in` = 1 ns), out of it at that
/// instant, and the next get dials again. Counters follow each step.
/// (Nobody asks during a backoff, so the pool does not probe: every dial is
/// the test's; probes are `probes.rs`'s.)
#[tokio::test(start_paused = true)]
async fn backoff_doubles_per_failure_up_to_the_cap() {
    const FAILURES: u32 = 7;
    const BASE: std::time::Duration = ms(10);
    const CAP: std::time::Duration = ms(100);
    let delay = |n| delay_of(BASE, CAP, n);
    let (mock, pool) = M::pool(|b| b.backoff(BASE, CAP)).await;
    let pin = ok(pool.get_for(&1).await);
    assert_eq!(pin.id, 1);
    for _ in 0..FAILURES {
        mock.push(1, Step::Fail("down"));
    }

    let mut draws = Vec::new();
    for n in 1..=FAILURES {
        let n64 = u64::from(n);
        assert_eq!(
            backoff_state(&pool, &1),
            (false, n - 1),
            "before failure {n}"
        );
        let t = Instant::now();
        let e = err(pool.get_for(&1).await);
        assert_eq!(connect_error(&e), "down", "failure {n}");
        assert_eq!(Instant::now(), t, "a failing dial takes no time here");
        assert_eq!(mock.connects(), 1 + n as usize);
        assert_eq!(backoff_state(&pool, &1), (true, n));
        assert_eq!(backoff_counters(&pool), (n64, n64, 0));

        let left = backoff_left(&pool, &1);
        assert_in_band(left, delay(n));
        draws.push(left);

        // 1 ns before the end: still backing off, for exactly 1 ns.
        advance(left - ns(1)).await;
        assert_eq!(backoff_left(&pool, &1), ns(1));
        // At the end: out of backoff (the failure count stays), and no
        // probe: nobody asked during it.
        advance(ns(1)).await;
        assert_eq!(backoff_state(&pool, &1), (false, n));
        settle().await;
        assert_eq!(mock.connects(), 1 + n as usize);
        check_counts(&pool, &[1]);
    }
    // Per key, too.
    let c = pool.key_state(&1).unwrap().counters;
    let f = u64::from(FAILURES);
    assert_eq!(
        (c.backoffs, c.dial_failures, c.backoff_rejections, c.dials),
        (f, f, 0, 1 + f)
    );
    // From the 5th failure on, the cap: every draw in [50 ms, 100 ms].
    for d in &draws[4..] {
        assert_in_band(*d, CAP);
    }
    drop(pin);
}

/// The jitter: 200 keys failing at the same instant draw their backoffs over
/// the whole band [50 ms, 100 ms] (none outside; the extremes of 200 draws
/// come within 5 ms of both ends), so they retry apart.
#[tokio::test(start_paused = true)]
async fn backoff_jitter_spreads_over_half_to_full_delay() {
    const KEYS: u32 = 200;
    let (mock, pool) = M::pool(|b| b.backoff(BASE, CAP).max_open(2 * KEYS as usize)).await;
    let mut pins = Vec::new();
    let mut draws = Vec::new();
    for k in 0..KEYS {
        pins.push(ok(pool.get_for(&k).await));
        mock.push(k, Step::Fail("down"));
        assert_eq!(connect_error(&err(pool.get_for(&k).await)), "down");
        let left = backoff_left(&pool, &k);
        assert_in_band(left, BASE);
        draws.push(left);
    }
    let lo = *draws.iter().min().unwrap();
    let hi = *draws.iter().max().unwrap();
    assert!(lo < ms(55) && hi > ms(95), "draws in [{lo:?}, {hi:?}]");
    let k = u64::from(KEYS);
    assert_eq!(backoff_counters(&pool), (k, k, 0));
    drop(pins);
}

// On a running clock (not paused: the one test here that isn't), a
// backoff of 1 ms must end 1 ms after the failure, not at the next kernel
// tick. (With a clock that lagged a tick, each round here was refused with
// `Backoff` about three times in four.) The wait is a spin on the real clock: real time passing is what
// is tested.
#[tokio::test]
async fn a_short_backoff_ends_on_time_on_a_running_clock() {
    let (mock, pool) =
        M::pool(|b| b.backoff(Duration::from_millis(1), Duration::from_millis(1))).await;
    for round in 0..50 {
        mock.push(0, Step::Fail("scripted"));
        assert!(
            matches!(pool.get_for(&0).await, Err(Error::Connect(_))),
            "round {round}: the scripted failure"
        );
        let failed = std::time::Instant::now();
        while failed.elapsed() < Duration::from_millis(2) {
            std::hint::spin_loop();
        }
        let conn = pool
            .get_for(&0)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        // Gone for good: the next round's get dials again.
        drop(connpool::Pooled::detach(conn));
    }
}
