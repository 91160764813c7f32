//! `ping_timeout` and the checkout deadline during a health check.

use std::time::Duration;

use connpool::Error;
use tokio::time::Instant;

use crate::support::*;

use super::{U, health, ms, secs};

// ---------------------------------------------------------------------------
// 4. ping_timeout and the checkout deadline
// ---------------------------------------------------------------------------

/// `Always`, `ping_timeout` 1 s: the ping of a muted idle connection hangs;
/// at exactly 1 s it is closed (`HealthCheck`) and the getter is served by a
/// new dial at that instant.
#[tokio::test(start_paused = true)]
async fn ping_timeout_closes_a_muted_conn_and_the_getter_dials_at_exactly_1s() {
    let (mock, pool) = U::pool(|b| {
        b.health_check(Duration::ZERO)
            .ping_timeout(secs(1))
            .checkout_timeout(secs(30))
            .initial(1)
    })
    .await;
    let t0 = Instant::now();
    mock.conn(1).mute();

    let g = spawn_get(&pool, ());
    at(t0 + secs(1) - ms(1)).await;
    assert!(!g.is_finished(), "still pinging 1 ms before the timeout");
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, ..ZERO },
        "lent to the checking getter"
    );
    assert_eq!(mock.connects(), 1);
    check_counts(&pool, &[()]);

    let c = ok(join(g).await);
    assert_eq!(Instant::now(), t0 + secs(1));
    assert_eq!(c.id, 2);
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed_health_check, 1);
    assert_eq!(health(&pool), (1, 1));
    assert_eq!(pool.state().counters.timeouts, 0);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

/// `Always`, `ping_timeout` 1 s, two idle connections, the newest muted: at
/// exactly 1 s it is closed and the getter pings and gets the other one.
#[tokio::test(start_paused = true)]
async fn ping_timeout_then_the_next_idle_conn_serves_the_getter() {
    let (mock, pool) = U::pool(|b| {
        b.health_check(Duration::ZERO)
            .ping_timeout(secs(1))
            .initial(2)
    })
    .await;
    let t0 = Instant::now();
    // Find which pre-warmed conn is newest: take both, give back 1 then 2.
    let (a, b) = (ok(pool.get().await), ok(pool.get().await));
    let (first, newest) = (b.id, a.id); // dropped in the order b, a
    drop(b);
    drop(a);
    mock.conn(newest).mute();
    let before = mock.pings().len();

    let c = ok(pool.get().await);
    assert_eq!(Instant::now(), t0 + secs(1));
    assert_eq!(c.id, first);
    assert_eq!(
        mock.pings_since(t0)[before..],
        [(newest, Duration::ZERO), (first, secs(1))]
    );
    settle().await;
    assert_eq!(mock.closed(), vec![newest]);
    assert_eq!(pool.state().counters.closed_health_check, 1);
    assert_eq!(mock.connects(), 2, "no dial: the other idle conn served");
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

/// A checkout deadline (500 ms) shorter than `ping_timeout` (1 s): the getter
/// gets `Error::Timeout` at exactly 500 ms, the connection is closed
/// (`HealthCheck`), the counts stay exact and the pool keeps working.
#[tokio::test(start_paused = true)]
async fn checkout_deadline_during_the_health_check_gives_timeout() {
    let (mock, pool) = U::pool(|b| {
        b.health_check(Duration::ZERO)
            .ping_timeout(secs(1))
            .checkout_timeout(ms(500))
            .initial(1)
    })
    .await;
    let t0 = Instant::now();
    mock.conn(1).mute();

    let g = spawn_get(&pool, ());
    at(t0 + ms(499)).await;
    assert!(!g.is_finished());
    match join(g).await {
        Err(Error::Timeout {
            waited, last_connect_error: None, foreign_runtime: false, ..
        }) => assert_eq!(waited, ms(500)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(Instant::now(), t0 + ms(500));
    settle().await;
    assert_eq!(mock.closed(), vec![1], "closed, not returned mid-ping");
    assert_eq!(pool.state().counters.closed_health_check, 1);
    assert_eq!(pool.state().counters.timeouts, 1);
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(pool.state().closing, 0);
    check_counts(&pool, &[()]);

    // The pool works on: a fresh dial, not pinged.
    let c = ok(pool.get().await);
    assert_eq!(c.id, 2);
    assert_eq!(mock.pings().len(), 1);
    check_counts(&pool, &[()]);
}

/// A getter whose health check failed waits for a dial: its deadline still
/// counts from its `get` (3 s), not from the wait that began when the
/// check failed (at 1 s), and its `Timeout` says it waited 3 s.
#[tokio::test(start_paused = true)]
async fn a_getter_that_waits_after_a_failed_check_times_out_at_its_get_s_deadline() {
    let (mock, pool) = U::pool(|b| {
        b.health_check(Duration::ZERO)
            .ping_timeout(secs(1))
            .checkout_timeout(secs(3))
            .max_open(1)
            .initial(1)
    })
    .await;
    let t0 = Instant::now();
    mock.conn(1).mute();
    mock.push((), Step::Hang);

    let g = spawn_get(&pool, ());
    at(t0 + secs(2)).await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, dialing: 1, waiting: 1, ..ZERO },
        "the check failed at 1 s: the getter waits for a dial"
    );
    at(t0 + secs(3) - ms(1)).await;
    assert!(!g.is_finished());
    match join(g).await {
        Err(Error::Timeout { waited, .. }) => assert_eq!(waited, secs(3)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(Instant::now(), t0 + secs(3));
    assert_eq!(pool.state().counters.timeouts, 1);
    assert_eq!(counts(&pool), Counts { open: 1, dialing: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

/// Same, with the key still holding another (lent) connection, so the key
/// is not forgotten when the checked connection closes: `Error::Timeout` at
/// exactly 500 ms, the muted connection closed, counts exact.
#[tokio::test(start_paused = true)]
async fn checkout_deadline_during_the_health_check_with_another_conn_open() {
    let (mock, pool) = U::pool(|b| {
        b.health_check(Duration::ZERO)
            .ping_timeout(secs(1))
            .checkout_timeout(ms(500))
            .initial(2)
    })
    .await;
    let t0 = Instant::now();
    let held = ok(pool.get().await); // pinged (Always), answers at once
    let other = 3 - held.id;
    mock.conn(other).mute();

    match pool.get().await {
        Err(Error::Timeout {
            waited, last_connect_error: None, foreign_runtime: false, ..
        }) => assert_eq!(waited, ms(500)),
        Err(e) => panic!("expected a timeout, got {e:?}"),
        Ok(c) => panic!("expected a timeout, got conn {}", c.id),
    }
    assert_eq!(Instant::now(), t0 + ms(500));
    settle().await;
    assert_eq!(mock.closed(), vec![other]);
    assert_eq!(pool.state().counters.closed_health_check, 1);
    assert_eq!(pool.state().counters.timeouts, 1);
    assert_eq!(pool.key_state(&()).unwrap().counters.timeouts, 1);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    assert_eq!(pool.state().closing, 0);
    assert_eq!(mock.connects(), 2, "no dial after the deadline");
    check_counts(&pool, &[()]);
}

/// The health check cut short by the checkout deadline sent a ping and
/// closed the connection as `HealthCheck`: the health-check counters should
/// say so (`health_checks` counts the ping, `health_check_failures` the
/// failed check), as they do for a `ping_timeout`. (Another connection is
/// held so the key stays registered; see the test above.)
#[tokio::test(start_paused = true)]
async fn health_check_cut_by_the_checkout_deadline_is_counted() {
    let (mock, pool) = U::pool(|b| {
        b.health_check(Duration::ZERO)
            .ping_timeout(secs(1))
            .checkout_timeout(ms(500))
            .initial(2)
    })
    .await;
    let held = ok(pool.get().await);
    assert_eq!(health(&pool), (1, 0));
    mock.conn(3 - held.id).mute();
    assert!(pool.get().await.is_err());
    settle().await;
    assert_eq!(mock.pings().len(), 2, "a second health-check ping was sent");
    assert_eq!(pool.state().counters.closed_health_check, 1);
    assert_eq!(
        health(&pool),
        (2, 1),
        "the ping was sent and the conn closed as HealthCheck, yet neither is counted"
    );
}
