//! A connection out for a keepalive ping is not lent.

use std::time::Duration;
use tokio::time::Instant;

use crate::support::*;

use super::{U, health, keepalive, keepalive_pool, ms, secs};

// ---------------------------------------------------------------------------
// 9. A connection out for a ping is not lent
// ---------------------------------------------------------------------------

/// Under the cap, a getter arriving while the only idle connection is out
/// for a keepalive ping dials a new one instead of taking it mid-ping.
#[tokio::test(start_paused = true)]
async fn conn_being_pinged_is_not_lent_the_getter_dials() {
    let mock = U::new();
    let pool = keepalive_pool(&mock, 1, 1).await;
    let t0 = Instant::now();
    mock.conn(1).mute();
    at(t0 + secs(10)).await;
    assert_eq!(counts(&pool), Counts { open: 1, pinging: 1, ..ZERO });

    let c = ok(pool.get().await);
    assert_eq!(c.id, 2, "dialed: conn 1 is out for its ping");
    assert_eq!(Instant::now(), t0 + secs(10));
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 1, pinging: 1, ..ZERO }
    );
    check_counts(&pool, &[()]);
    at(t0 + secs(12)).await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

/// At the cap (max_open 1), a getter arriving mid-ping waits, and is served
/// by the pinged connection the moment its ping succeeds (a ping taking 1 s:
/// at exactly 11 s), without a health check and without a dial.
#[tokio::test(start_paused = true)]
async fn at_the_cap_the_getter_gets_the_pinged_conn_when_its_ping_succeeds() {
    let mock = U::new();
    mock.delay_pings(secs(1));
    let pool = mock
        .core_pool(|b| {
            b.max_open(1)
                .health_check(Duration::ZERO)
                .keepalive_interval(secs(10))
                .ping_timeout(secs(2))
                .jitter(0.0)
                .initial(1)
        })
        .await;
    let t0 = Instant::now();
    at(t0 + secs(10)).await;
    assert_eq!(counts(&pool), Counts { open: 1, pinging: 1, ..ZERO });

    let g = spawn_get(&pool, ());
    at(t0 + secs(11) - ms(1)).await;
    assert!(!g.is_finished(), "not lent mid-ping");
    assert_eq!(
        counts(&pool),
        Counts { open: 1, pinging: 1, waiting: 1, ..ZERO }
    );
    check_counts(&pool, &[()]);

    let c = ok(join(g).await);
    assert_eq!(Instant::now(), t0 + secs(11));
    assert_eq!(c.id, 1);
    assert_eq!(mock.pings_since(t0), vec![(1, secs(10))], "no health check");
    assert_eq!(health(&pool), (0, 0));
    assert_eq!(keepalive(&pool), (1, 0));
    assert_eq!(mock.connects(), 1);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

/// At the cap, with `max_missed(2)`: the pinged connection misses once (its
/// ping times out at 12 s) and, not dead yet, goes through the hand-off to
/// the waiting getter at exactly 12 s.
#[tokio::test(start_paused = true)]
async fn at_the_cap_a_pinged_conn_that_missed_once_goes_to_the_waiter() {
    let (mock, pool) = U::pool(|b| {
        b.max_open(1)
            .keepalive_interval(secs(10))
            .ping_timeout(secs(2))
            .keepalive_max_missed(2)
            .jitter(0.0)
            .initial(1)
    })
    .await;
    let t0 = Instant::now();
    mock.conn(1).mute();
    at(t0 + secs(10)).await;
    let g = spawn_get(&pool, ());
    at(t0 + secs(12) - ms(1)).await;
    assert!(!g.is_finished());
    assert_eq!(
        counts(&pool),
        Counts { open: 1, pinging: 1, waiting: 1, ..ZERO }
    );
    let c = ok(join(g).await);
    assert_eq!(Instant::now(), t0 + secs(12));
    assert_eq!(c.id, 1);
    assert_eq!(keepalive(&pool), (1, 1));
    assert!(mock.closed().is_empty());
    assert_eq!(mock.connects(), 1);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

/// At the cap, with `max_missed(1)`: the pinged connection dies at 12 s; its
/// slot dials for the waiting getter at that instant.
#[tokio::test(start_paused = true)]
async fn at_the_cap_a_pinged_conn_that_dies_frees_its_slot_for_the_waiter() {
    let (mock, pool) = U::pool(|b| {
        b.max_open(1)
            .keepalive_interval(secs(10))
            .ping_timeout(secs(2))
            .jitter(0.0)
            .initial(1)
    })
    .await;
    let t0 = Instant::now();
    mock.conn(1).mute();
    at(t0 + secs(10)).await;
    let g = spawn_get(&pool, ());
    settle().await;
    assert_eq!(mock.connects(), 1, "at the cap: no dial");
    let c = ok(join(g).await);
    assert_eq!(Instant::now(), t0 + secs(12));
    assert_eq!(c.id, 2);
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed_keepalive, 1);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}
