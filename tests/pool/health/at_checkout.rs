//! The health check before lending: `Never`, `Always`, `IfIdleFor(d)`, no
//! check on a hand-off, `health` at checkout.

use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use crate::support::*;

use super::{U, health, ms, secs};

// ---------------------------------------------------------------------------
// 1. None
// ---------------------------------------------------------------------------

/// `Never`: a dead idle connection that `health` cannot see is lent as it
/// is (the price of `Never`), and nothing is pinged.
#[tokio::test(start_paused = true)]
async fn never_lends_a_dead_idle_conn_without_a_ping() {
    let (mock, pool) = U::pool(|b| b.health_check(None).initial(1)).await;
    mock.conn(1).kill();
    sleep_until(Instant::now() + secs(3600)).await;

    let c = ok(pool.get().await);
    assert_eq!(c.id, 1, "the dead conn is lent");
    assert!(mock.pings().is_empty(), "no ping under Never");
    assert_eq!(health(&pool), (0, 0));
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
    drop(c);
    settle().await;
    assert!(mock.closed().is_empty());
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    assert_eq!(mock.connects(), 1);
}

// ---------------------------------------------------------------------------
// 2. Duration::ZERO
// ---------------------------------------------------------------------------

/// `Always`: every checkout from the idle list pings, even of a connection
/// returned a moment ago; a fresh dial is not pinged.
#[tokio::test(start_paused = true)]
async fn always_pings_every_idle_checkout_but_not_a_fresh_dial() {
    let (mock, pool) = U::pool(|b| b.health_check(Duration::ZERO)).await;
    let t0 = Instant::now();
    drop(ok(pool.get().await)); // dialed: no ping
    assert!(mock.pings().is_empty());
    for i in 1..=3u64 {
        sleep_until(t0 + ms(i)).await;
        let c = ok(pool.get().await);
        assert_eq!(c.id, 1);
        assert_eq!(mock.pings().len() as u64, i, "one ping per idle checkout");
        drop(c);
    }
    assert_eq!(
        mock.pings_since(t0),
        vec![(1, ms(1)), (1, ms(2)), (1, ms(3))]
    );
    assert_eq!(health(&pool), (3, 0));
    assert_eq!(pool.state().counters.closed_total(), 0);
    assert_eq!(mock.connects(), 1);
    check_counts(&pool, &[()]);
}

/// `Always`: a dead idle connection is never lent: its ping fails, it is
/// closed (`HealthCheck`) and, with no idle connection left, the getter dials.
#[tokio::test(start_paused = true)]
async fn always_closes_a_dead_idle_conn_and_the_getter_dials() {
    let (mock, pool) = U::pool(|b| b.health_check(Duration::ZERO).initial(1)).await;
    let t0 = Instant::now();
    mock.conn(1).kill();

    let c = ok(pool.get().await);
    assert_eq!(c.id, 2, "a new dial, not the dead conn");
    assert_eq!(Instant::now(), t0, "a failed ping costs no time here");
    assert_eq!(mock.pings_since(t0), vec![(1, Duration::ZERO)]);
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed_health_check, 1);
    assert_eq!(pool.state().counters.closed_total(), 1);
    assert_eq!(health(&pool), (1, 1));
    assert_eq!(pool.state().counters.gets, 1, "one get, counted once");
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
    assert_eq!(mock.connects(), 2);
}

/// `Always`: with three idle connections, the two newest dead, the getter
/// pings its way down the idle list (newest first) and gets the live one;
/// the dead ones are closed, nothing is dialed.
#[tokio::test(start_paused = true)]
async fn always_skips_dead_idle_conns_to_the_live_one() {
    let (mock, pool) = U::pool(|b| b.health_check(Duration::ZERO)).await;
    let t0 = Instant::now();
    let (a, b, c) = (
        ok(pool.get().await),
        ok(pool.get().await),
        ok(pool.get().await),
    );
    assert_eq!((a.id, b.id, c.id), (1, 2, 3));
    drop((a, b, c)); // idle, newest last: 3, then 2, then 1
    mock.conn(3).kill();
    mock.conn(2).kill();

    let got = ok(pool.get().await);
    assert_eq!(got.id, 1, "the live one");
    assert_eq!(
        mock.pings_since(t0),
        vec![
            (3, Duration::ZERO),
            (2, Duration::ZERO),
            (1, Duration::ZERO)
        ]
    );
    settle().await;
    let mut closed = mock.closed();
    closed.sort_unstable();
    assert_eq!(closed, vec![2, 3]);
    assert_eq!(pool.state().counters.closed_health_check, 2);
    assert_eq!(health(&pool), (3, 2));
    assert_eq!(mock.connects(), 3, "no new dial");
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

// ---------------------------------------------------------------------------
// 3. d
// ---------------------------------------------------------------------------

/// `IfIdleFor(2 s)`: a connection idle 2 s − 1 ms is lent without a ping
/// (even a dead one); idle exactly 2 s it is pinged first (the dead one then
/// fails and the getter dials). Idle time counts from the last return.
#[tokio::test(start_paused = true)]
async fn if_idle_for_pings_from_exactly_d_of_idleness() {
    let (mock, pool) = U::pool(|b| b.health_check(secs(2)).initial(1)).await;
    let t0 = Instant::now();

    // Live, idle 2 s − 1 ms: no ping.
    sleep_until(t0 + secs(2) - ms(1)).await;
    let c = ok(pool.get().await);
    assert_eq!(c.id, 1);
    assert!(mock.pings().is_empty(), "under d: no ping");
    drop(c); // idle since t0 + 1.999 s

    // Live, idle exactly 2 s since its return: pinged, lent.
    let t1 = t0 + secs(2) - ms(1);
    sleep_until(t1 + secs(2)).await;
    let c = ok(pool.get().await);
    assert_eq!(c.id, 1);
    assert_eq!(mock.pings_since(t0), vec![(1, secs(4) - ms(1))]);
    assert_eq!(health(&pool), (1, 0));
    drop(c); // idle since t1 + 2 s

    // Dead, idle d − 1 ms: lent all the same (no ping sees it).
    let t2 = t1 + secs(2);
    mock.conn(1).kill();
    sleep_until(t2 + secs(2) - ms(1)).await;
    let c = ok(pool.get().await);
    assert_eq!(c.id, 1, "the dead conn is lent inside the window");
    assert_eq!(mock.pings().len(), 1);
    drop(c);

    // Dead, idle exactly d: pinged, closed, the getter dials.
    let t3 = t2 + secs(2) - ms(1);
    sleep_until(t3 + secs(2)).await;
    let c = ok(pool.get().await);
    assert_eq!(c.id, 2);
    assert_eq!(mock.pings().len(), 2);
    assert_eq!(mock.pings()[1], (1, t3 + secs(2)));
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed_health_check, 1);
    assert_eq!(health(&pool), (2, 1));
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

// ---------------------------------------------------------------------------
// 5. Hand-off: no health check
// ---------------------------------------------------------------------------

/// Under `Always`, a connection a borrower returns to a waiting getter is
/// handed over without a ping (it just worked), even if it is dead.
#[tokio::test(start_paused = true)]
async fn handed_over_conn_is_not_pinged_even_under_always() {
    let (mock, pool) = U::pool(|b| b.health_check(Duration::ZERO).max_open(1)).await;
    let c = ok(pool.get().await);
    let g = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );
    mock.conn(1).kill(); // a ping would fail: proves none is sent
    drop(c);
    let c = ok(join(g).await);
    assert_eq!(c.id, 1);
    assert!(mock.pings().is_empty(), "hand-off: no ping");
    assert_eq!(health(&pool), (0, 0));
    assert!(mock.closed().is_empty());
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);

    // Back to idle, the next checkout does ping it (and finds it dead).
    drop(c);
    let c = ok(pool.get().await);
    assert_eq!(c.id, 2);
    assert_eq!(mock.pings().len(), 1);
    assert_eq!(health(&pool), (1, 1));
}

// ---------------------------------------------------------------------------
// 6. health at checkout
// ---------------------------------------------------------------------------

/// An idle connection that `health` reports is closed (`Broken`) at
/// checkout and never lent; no ping is spent on it, even under `Always`.
#[tokio::test(start_paused = true)]
async fn broken_idle_conn_is_closed_at_checkout_without_a_ping() {
    let (mock, pool) = U::pool(|b| b.health_check(Duration::ZERO).initial(1)).await;
    mock.conn(1).break_it();
    let c = ok(pool.get().await);
    assert_eq!(c.id, 2);
    assert!(mock.pings().is_empty(), "health needs no ping");
    assert_eq!(health(&pool), (0, 0));
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed_broken, 1);
    assert_eq!(pool.state().counters.closed_health_check, 0);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}
