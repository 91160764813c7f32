//! Background keepalive: `max_missed` 1 and 3, jitter, a panicking ping,
//! replacement below `min_idle`.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use crate::support::*;

use super::{U, keepalive, keepalive_pool, ms, secs};

// ---------------------------------------------------------------------------
// 7. Keepalive, max_missed 1 (gRPC)
// ---------------------------------------------------------------------------

/// A live idle connection is pinged at exactly 10 s, 20 s, 30 s… of
/// idleness, and stays idle; nothing else happens.
#[tokio::test(start_paused = true)]
async fn keepalive_pings_a_live_idle_conn_every_interval_exactly() {
    let mock = U::new();
    let pool = keepalive_pool(&mock, 1, 1).await;
    let t0 = Instant::now();
    at(t0 + secs(10) - ms(1)).await;
    assert!(mock.pings().is_empty(), "not 1 ms early");
    at(t0 + secs(30) + ms(1)).await;
    assert_eq!(
        mock.pings_since(t0),
        vec![(1, secs(10)), (1, secs(20)), (1, secs(30))]
    );
    assert_eq!(keepalive(&pool), (3, 0));
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    assert!(mock.closed().is_empty());
    check_counts(&pool, &[()]);

    // A return restarts the schedule: one interval after the return.
    sleep_until(t0 + secs(35)).await;
    drop(ok(pool.get().await));
    at(t0 + secs(45) + ms(1)).await;
    assert_eq!(mock.pings_since(t0)[3..], [(1, secs(45))]);
    assert_eq!(keepalive(&pool), (4, 0));
}

/// A keepalive ping does not reset the idle time: with idle_timeout 25 s,
/// a live connection pinged at 10 s and 20 s is still closed at exactly 25 s.
#[tokio::test(start_paused = true)]
async fn keepalive_does_not_reset_the_idle_timeout() {
    let (mock, pool) = U::pool(|b| {
        b.keepalive_interval(secs(10))
            .ping_timeout(secs(2))
            .idle_timeout(secs(25))
            .jitter(0.0)
            .initial(1)
    })
    .await;
    let t0 = Instant::now();
    at(t0 + secs(25) - ms(1)).await;
    assert_eq!(mock.pings_since(t0), vec![(1, secs(10)), (1, secs(20))]);
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    at(t0 + secs(25)).await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed_idle_timeout, 1);
    assert_eq!(counts(&pool), ZERO);
    check_counts(&pool, &[()]);
}

/// A muted idle connection is pinged at 10 s (and out of the idle list,
/// counted in `pinging`, meanwhile) and closed at exactly 12 s
/// (`ping_timeout`), as `Keepalive`.
#[tokio::test(start_paused = true)]
async fn keepalive_closes_a_muted_conn_at_exactly_interval_plus_timeout() {
    let mock = U::new();
    let pool = keepalive_pool(&mock, 1, 1).await;
    let t0 = Instant::now();
    mock.conn(1).mute();

    at(t0 + secs(10)).await;
    assert_eq!(mock.pings_since(t0), vec![(1, secs(10))]);
    assert_eq!(counts(&pool), Counts { open: 1, pinging: 1, ..ZERO });
    assert_eq!(pool.key_state(&()).unwrap().pinging, 1);
    check_counts(&pool, &[()]);

    at(t0 + secs(12) - ms(1)).await;
    assert!(mock.closed().is_empty(), "not 1 ms before the timeout");
    assert_eq!(keepalive(&pool), (0, 0));
    at(t0 + secs(12)).await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed_keepalive, 1);
    assert_eq!(pool.state().counters.closed_total(), 1);
    assert_eq!(keepalive(&pool), (1, 1));
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(mock.pings().len(), 1);
    check_counts(&pool, &[()]);
}

/// A killed idle connection fails its ping at once: closed at exactly 10 s.
#[tokio::test(start_paused = true)]
async fn keepalive_closes_a_killed_conn_at_the_interval() {
    let mock = U::new();
    let pool = keepalive_pool(&mock, 1, 1).await;
    let t0 = Instant::now();
    mock.conn(1).kill();
    at(t0 + secs(10) - ms(1)).await;
    assert!(mock.closed().is_empty());
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    at(t0 + secs(10)).await;
    assert_eq!(mock.pings_since(t0), vec![(1, secs(10))]);
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed_keepalive, 1);
    assert_eq!(keepalive(&pool), (1, 1));
    assert_eq!(counts(&pool), ZERO);
    check_counts(&pool, &[()]);
}

// ---------------------------------------------------------------------------
// 8. Keepalive, max_missed 3
// ---------------------------------------------------------------------------

/// `max_missed(3)`: after a missed ping the next one is due one interval
/// after the miss. A muted connection is pinged at 10, 22 and 34 s, its
/// pings time out at 12, 24 and 36 s, and it is closed at exactly 36 s.
#[tokio::test(start_paused = true)]
async fn keepalive_max_missed_3_closes_after_the_third_miss() {
    let mock = U::new();
    let pool = keepalive_pool(&mock, 3, 1).await;
    let t0 = Instant::now();
    mock.conn(1).mute();

    at(t0 + secs(12)).await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, idle: 1, ..ZERO },
        "one miss: back to idle"
    );
    assert_eq!(keepalive(&pool), (1, 1));
    at(t0 + secs(24)).await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, idle: 1, ..ZERO },
        "two misses: still idle"
    );
    assert_eq!(keepalive(&pool), (2, 2));
    at(t0 + secs(36) - ms(1)).await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, pinging: 1, ..ZERO },
        "third ping in flight"
    );
    assert!(mock.closed().is_empty());
    at(t0 + secs(36)).await;
    assert_eq!(
        mock.pings_since(t0),
        vec![(1, secs(10)), (1, secs(22)), (1, secs(34))]
    );
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed_keepalive, 1);
    assert_eq!(keepalive(&pool), (3, 3));
    assert_eq!(counts(&pool), ZERO);
    check_counts(&pool, &[()]);
}

/// `max_missed(3)`: two misses, then a good ping resets the count: muted
/// again, the connection survives two more misses and is closed only after
/// the third one after the reset.
#[tokio::test(start_paused = true)]
async fn keepalive_good_ping_resets_the_miss_count() {
    let mock = U::new();
    let pool = keepalive_pool(&mock, 3, 1).await;
    let t0 = Instant::now();
    mock.conn(1).mute();
    at(t0 + secs(30)).await; // missed at 12 and 24, next ping at 34
    assert_eq!(keepalive(&pool), (2, 2));
    mock.conn(1).unmute();
    at(t0 + secs(34)).await;
    assert_eq!(keepalive(&pool), (3, 2), "the third ping answered");
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });

    // Muted again: misses at 46 (ping 44) and 58 (ping 56) are only 1 and 2.
    mock.conn(1).mute();
    at(t0 + secs(70) - ms(1)).await;
    assert_eq!(keepalive(&pool), (5, 4));
    assert!(mock.closed().is_empty(), "the count was reset: kept");
    assert_eq!(counts(&pool), Counts { open: 1, pinging: 1, ..ZERO });
    at(t0 + secs(70)).await;
    assert_eq!(
        mock.pings_since(t0),
        vec![
            (1, secs(10)),
            (1, secs(22)),
            (1, secs(34)),
            (1, secs(44)),
            (1, secs(56)),
            (1, secs(68)),
        ]
    );
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(keepalive(&pool), (6, 5));
    assert_eq!(pool.state().counters.closed_keepalive, 1);
    check_counts(&pool, &[()]);
}

// ---------------------------------------------------------------------------
// 10. Keepalive jitter
// ---------------------------------------------------------------------------

/// 200 connections returned at the same instant, jitter 0.2, interval 10 s:
/// each first ping falls in [8 s, 10 s] after the return, and they spread
/// over many distinct instants across that band.
#[tokio::test(start_paused = true)]
async fn keepalive_jitter_spreads_the_first_pings() {
    let (mock, pool) = U::pool(|b| {
        b.max_open(200)
            .keepalive_interval(secs(10))
            .ping_timeout(secs(2))
            .jitter(0.2)
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..200 {
        held.push(ok(pool.get().await));
    }
    let t1 = Instant::now() + secs(100);
    sleep_until(t1).await;
    drop(held); // all returned at t1
    assert_eq!(counts(&pool), Counts { open: 200, idle: 200, ..ZERO });

    at(t1 + secs(8) - ms(1)).await;
    assert!(mock.pings().is_empty(), "nothing before 8 s");
    at(t1 + secs(10) + ms(1)).await;
    let pings = mock.pings();
    assert_eq!(pings.len(), 200, "each pinged once by 10 s");
    let ids: BTreeSet<u64> = pings.iter().map(|&(id, _)| id).collect();
    assert_eq!(ids.len(), 200);
    for &(id, when) in &pings {
        let after = when - t1;
        assert!(
            (secs(8)..=secs(10)).contains(&after),
            "conn {id} first pinged {after:?} after its return"
        );
    }
    let instants: BTreeSet<Instant> = pings.iter().map(|&(_, at)| at).collect();
    assert!(
        instants.len() >= 100,
        "only {} distinct instants",
        instants.len()
    );
    let (lo, hi) = (*instants.first().unwrap(), *instants.last().unwrap());
    assert!(lo - t1 < ms(8500) && hi - t1 > ms(9500), "{lo:?}..{hi:?}");
    assert_eq!(keepalive(&pool), (200, 0));
    assert_eq!(counts(&pool), Counts { open: 200, idle: 200, ..ZERO });
    check_counts(&pool, &[()]);
}

/// One idle connection pinged again and again: each interval is drawn
/// anew, in [8 s, 10 s] (regression: the jitter was drawn once per
/// connection, and every interval of it was the same).
#[tokio::test(start_paused = true)]
async fn keepalive_jitter_is_drawn_for_every_interval() {
    let (mock, pool) = U::pool(|b| {
        b.keepalive_interval(secs(10))
            .ping_timeout(secs(2))
            .jitter(0.2)
            .initial(1)
    })
    .await;
    let t0 = Instant::now();
    at(t0 + secs(101)).await;
    let pings: Vec<Instant> = mock.pings().iter().map(|&(_, at)| at).collect();
    assert!(pings.len() >= 10, "{} pings in 101 s", pings.len());
    let intervals: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    for d in &intervals {
        assert!((secs(8)..=secs(10)).contains(d), "interval {d:?}");
    }
    let distinct: BTreeSet<Duration> = intervals.iter().copied().collect();
    assert!(
        distinct.len() > intervals.len() / 2,
        "intervals repeat: {intervals:?}"
    );
    check_counts(&pool, &[()]);
}

// ---------------------------------------------------------------------------
// 11. A panicking ping
// ---------------------------------------------------------------------------

/// A keepalive ping that panics is a failed ping of a broken connection:
/// it is closed (`Keepalive`) through `Manager::close`, the counts stay
/// exact, and the pool keeps working (the other idle connection,
/// keepalive, new dials).
#[tokio::test(start_paused = true)]
async fn keepalive_panicking_ping_counts_the_conn_closed_and_the_pool_works_on() {
    let mock = U::new();
    let pool = keepalive_pool(&mock, 1, 2).await;
    let t0 = Instant::now();
    mock.panic_next_ping();
    at(t0 + secs(10)).await;
    let pings = mock.pings();
    assert_eq!(pings.len(), 2);
    let (lost, kept) = (pings[0].0, pings[1].0);
    assert!(pings.iter().all(|&(_, at)| at == t0 + secs(10)));
    let s = pool.state();
    assert_eq!(s.counters.closed_keepalive, 1);
    assert_eq!(s.counters.closed_total(), 1);
    assert_eq!(
        (s.counters.keepalive_pings, s.counters.keepalive_failures),
        (2, 1)
    );
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    assert_eq!(s.closing, 0);
    assert_eq!(mock.closed(), vec![lost], "closed through Manager::close");
    check_counts(&pool, &[()]);

    // The survivor is still kept alive, and served.
    at(t0 + secs(20)).await;
    assert_eq!(mock.pings()[2..], [(kept, t0 + secs(20))]);
    let a = ok(pool.get().await);
    assert_eq!(a.id, kept);
    let b = ok(pool.get().await);
    assert_eq!(b.id, 3, "a new dial");
    assert_eq!(counts(&pool), Counts { open: 2, lent: 2, ..ZERO });
    check_counts(&pool, &[()]);
}

// ---------------------------------------------------------------------------
// 12. Keepalive and min_idle
// ---------------------------------------------------------------------------

/// `min_idle(1)`: the only idle connection is killed; its ping fails at
/// 10 s, it is closed and a replacement is dialed at that instant, idle,
/// and itself pinged one interval later.
#[tokio::test(start_paused = true)]
async fn keepalive_replaces_a_dead_conn_below_min_idle() {
    let (mock, pool) = U::pool(|b| {
        b.min_idle(1)
            .keepalive_interval(secs(10))
            .ping_timeout(secs(2))
            .jitter(0.0)
            .initial(1)
    })
    .await;
    let t0 = Instant::now();
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    mock.conn(1).kill();
    at(t0 + secs(10) - ms(1)).await;
    assert_eq!(mock.connects(), 1);
    at(t0 + secs(10)).await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed_keepalive, 1);
    assert_eq!(mock.connects(), 2, "replaced at once");
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    check_counts(&pool, &[()]);
    at(t0 + secs(20)).await;
    assert_eq!(
        mock.pings_since(t0),
        vec![(1, secs(10)), (2, secs(20))],
        "the replacement is kept alive too"
    );
    assert_eq!(keepalive(&pool), (2, 1));
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
}

/// `min_idle(1)` with a muted connection: while its ping is pending it
/// counts toward `min_idle` (no replacement yet); at 12 s it is closed and
/// replaced at that instant.
#[tokio::test(start_paused = true)]
async fn keepalive_replacement_waits_for_the_pings_verdict() {
    let (mock, pool) = U::pool(|b| {
        b.min_idle(1)
            .keepalive_interval(secs(10))
            .ping_timeout(secs(2))
            .jitter(0.0)
            .initial(1)
    })
    .await;
    let t0 = Instant::now();
    mock.conn(1).mute();
    at(t0 + secs(12) - ms(1)).await;
    assert_eq!(mock.connects(), 1, "pinging counts toward min_idle");
    assert_eq!(counts(&pool), Counts { open: 1, pinging: 1, ..ZERO });
    at(t0 + secs(12)).await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(mock.connects(), 2);
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    check_counts(&pool, &[()]);
}
