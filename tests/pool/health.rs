//! Connection health: the health check before lending (`HealthCheck::Never`,
//! `Always`, `IfIdleFor(d)`, `ping_timeout`, the checkout deadline during a
//! check, `is_broken` at checkout, no check on a hand-off) and background
//! keepalive (`keepalive_interval`, `keepalive_timeout`,
//! `keepalive_max_missed`, jitter, a connection out for a ping is not lent,
//! a panicking ping, replacement below `min_idle`).
//!
//! Every test runs on a current-thread runtime with the clock paused; tasks
//! only run when the test yields (`settle`, an `.await`), and time only
//! passes through `tokio::time::sleep_until` (auto-advance when every task is
//! idle). Every pool starts from `support::core_builder` (every lifecycle
//! feature off: no idle timeout, no lifetime, no keepalive, health check
//! `Never`, no backoff, no `max_connecting`) plus the one feature under test,
//! always with `jitter(0.0)` where exact instants matter. Connection ids are
//! the mock's: 1, 2, 3… in order of the dials' completion. The mock's pings
//! record `(id, instant)` when they start (`mock.pings()`); `kill()` makes
//! them fail at once, `mute()` makes them hang forever.

use std::collections::BTreeSet;
use std::time::Duration;

use connpool::{CloseReason, Error, HealthCheck, Manager, Pool};
use tokio::time::{Instant, sleep_until};

use crate::support::*;

type U = Mock<()>;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `(health_checks, health_check_failures)` of the pool.
fn health<Mg: Manager>(pool: &Pool<Mg>) -> (u64, u64) {
    let c = pool.state().counters;
    (c.health_checks, c.health_check_failures)
}

/// `(keepalive_pings, keepalive_failures)` of the pool.
fn keepalive<Mg: Manager>(pool: &Pool<Mg>) -> (u64, u64) {
    let c = pool.state().counters;
    (c.keepalive_pings, c.keepalive_failures)
}

/// A pool with background keepalive only: interval 10 s, timeout 2 s, no
/// jitter, `max_missed` as given; `n` connections pre-warmed at t0 (idle
/// since t0, first ping due at t0 + 10 s).
async fn keepalive_pool(mock: &U, max_missed: u32, n: usize) -> Pool<U> {
    mock.core_pool(|b| {
        b.keepalive_interval(secs(10))
            .keepalive_timeout(secs(2))
            .keepalive_max_missed(max_missed)
            .jitter(0.0)
            .initial(n)
    })
    .await
}

// ---------------------------------------------------------------------------
// 1. HealthCheck::Never
// ---------------------------------------------------------------------------

/// `Never`: a dead idle connection that `is_broken` cannot see is lent as it
/// is (the price of `Never`), and nothing is pinged.
#[tokio::test(start_paused = true)]
async fn never_lends_a_dead_idle_conn_without_a_ping() {
    let (mock, pool) = U::pool(|b| b.health_check(HealthCheck::Never).initial(1)).await;
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
// 2. HealthCheck::Always
// ---------------------------------------------------------------------------

/// `Always`: every checkout from the idle list pings, even of a connection
/// returned a moment ago; a fresh dial is not pinged.
#[tokio::test(start_paused = true)]
async fn always_pings_every_idle_checkout_but_not_a_fresh_dial() {
    let (mock, pool) = U::pool(|b| b.health_check(HealthCheck::Always)).await;
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
    let (mock, pool) = U::pool(|b| b.health_check(HealthCheck::Always).initial(1)).await;
    let t0 = Instant::now();
    mock.conn(1).kill();

    let c = ok(pool.get().await);
    assert_eq!(c.id, 2, "a new dial, not the dead conn");
    assert_eq!(Instant::now(), t0, "a failed ping costs no time here");
    assert_eq!(mock.pings_since(t0), vec![(1, Duration::ZERO)]);
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(closed_for(&pool, CloseReason::HealthCheck), 1);
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
    let (mock, pool) = U::pool(|b| b.health_check(HealthCheck::Always)).await;
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
    assert_eq!(closed_for(&pool, CloseReason::HealthCheck), 2);
    assert_eq!(health(&pool), (3, 2));
    assert_eq!(mock.connects(), 3, "no new dial");
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

// ---------------------------------------------------------------------------
// 3. HealthCheck::IfIdleFor(d)
// ---------------------------------------------------------------------------

/// `IfIdleFor(2 s)`: a connection idle 2 s − 1 ms is lent without a ping
/// (even a dead one); idle exactly 2 s it is pinged first (the dead one then
/// fails and the getter dials). Idle time counts from the last return.
#[tokio::test(start_paused = true)]
async fn if_idle_for_pings_from_exactly_d_of_idleness() {
    let (mock, pool) =
        U::pool(|b| b.health_check(HealthCheck::IfIdleFor(secs(2))).initial(1)).await;
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
    assert_eq!(closed_for(&pool, CloseReason::HealthCheck), 1);
    assert_eq!(health(&pool), (2, 1));
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

// ---------------------------------------------------------------------------
// 4. ping_timeout and the checkout deadline
// ---------------------------------------------------------------------------

/// `Always`, `ping_timeout` 1 s: the ping of a muted idle connection hangs;
/// at exactly 1 s it is closed (`HealthCheck`) and the getter is served by a
/// new dial at that instant.
#[tokio::test(start_paused = true)]
async fn ping_timeout_closes_a_muted_conn_and_the_getter_dials_at_exactly_1s() {
    let (mock, pool) = U::pool(|b| {
        b.health_check(HealthCheck::Always)
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
    assert_eq!(closed_for(&pool, CloseReason::HealthCheck), 1);
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
        b.health_check(HealthCheck::Always)
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
    assert_eq!(closed_for(&pool, CloseReason::HealthCheck), 1);
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
        b.health_check(HealthCheck::Always)
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
    assert_eq!(closed_for(&pool, CloseReason::HealthCheck), 1);
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
        b.health_check(HealthCheck::Always)
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
        b.health_check(HealthCheck::Always)
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
    assert_eq!(closed_for(&pool, CloseReason::HealthCheck), 1);
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
        b.health_check(HealthCheck::Always)
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
    assert_eq!(closed_for(&pool, CloseReason::HealthCheck), 1);
    assert_eq!(
        health(&pool),
        (2, 1),
        "the ping was sent and the conn closed as HealthCheck, yet neither is counted"
    );
}

// ---------------------------------------------------------------------------
// 5. Hand-off: no health check
// ---------------------------------------------------------------------------

/// Under `Always`, a connection a borrower returns to a waiting getter is
/// handed over without a ping (it just worked), even if it is dead.
#[tokio::test(start_paused = true)]
async fn handed_over_conn_is_not_pinged_even_under_always() {
    let (mock, pool) = U::pool(|b| b.health_check(HealthCheck::Always).max_open(1)).await;
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
// 6. is_broken at checkout
// ---------------------------------------------------------------------------

/// An idle connection that `is_broken` reports is closed (`Broken`) at
/// checkout and never lent; no ping is spent on it, even under `Always`.
#[tokio::test(start_paused = true)]
async fn broken_idle_conn_is_closed_at_checkout_without_a_ping() {
    let (mock, pool) = U::pool(|b| b.health_check(HealthCheck::Always).initial(1)).await;
    mock.conn(1).break_it();
    let c = ok(pool.get().await);
    assert_eq!(c.id, 2);
    assert!(mock.pings().is_empty(), "is_broken needs no ping");
    assert_eq!(health(&pool), (0, 0));
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(closed_for(&pool, CloseReason::Broken), 1);
    assert_eq!(closed_for(&pool, CloseReason::HealthCheck), 0);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

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
            .keepalive_timeout(secs(2))
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
    assert_eq!(closed_for(&pool, CloseReason::IdleTimeout), 1);
    assert_eq!(counts(&pool), ZERO);
    check_counts(&pool, &[()]);
}

/// A muted idle connection is pinged at 10 s (and out of the idle list,
/// counted in `pinging`, meanwhile) and closed at exactly 12 s
/// (`keepalive_timeout`), as `Keepalive`.
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
    assert_eq!(closed_for(&pool, CloseReason::Keepalive), 1);
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
    assert_eq!(closed_for(&pool, CloseReason::Keepalive), 1);
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
    assert_eq!(closed_for(&pool, CloseReason::Keepalive), 1);
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
    assert_eq!(closed_for(&pool, CloseReason::Keepalive), 1);
    check_counts(&pool, &[()]);
}

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
                .health_check(HealthCheck::Always)
                .keepalive_interval(secs(10))
                .keepalive_timeout(secs(2))
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
            .keepalive_timeout(secs(2))
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
            .keepalive_timeout(secs(2))
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
    assert_eq!(closed_for(&pool, CloseReason::Keepalive), 1);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
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
            .keepalive_timeout(secs(2))
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
            .keepalive_timeout(secs(2))
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
    assert_eq!(s.counters.closed(CloseReason::Keepalive), 1);
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
            .keepalive_timeout(secs(2))
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
    assert_eq!(closed_for(&pool, CloseReason::Keepalive), 1);
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
            .keepalive_timeout(secs(2))
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

// ---------------------------------------------------------------------------
// Abandoned pings
// ---------------------------------------------------------------------------

/// A getter that gives up in the middle of its health-check ping leaves the
/// connection in an unknown state (a ping written, its answer unread): it is
/// closed as `HealthCheck`, never put back idle for the next getter.
#[tokio::test(start_paused = true)]
async fn a_getter_cancelled_mid_health_check_closes_the_conn() {
    let (mock, pool) = U::pool(|b| {
        b.health_check(HealthCheck::Always)
            .ping_timeout(secs(5))
            .initial(1)
    })
    .await;
    mock.conn(1).mute();
    let g = spawn_get(&pool, ());
    settle().await;
    assert_eq!(mock.pings().len(), 1, "the ping is in flight");
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    g.abort();
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(closed_for(&pool, CloseReason::HealthCheck), 1);
    assert_eq!(counts(&pool), ZERO);
    check_counts(&pool, &[()]);
    // The next getter dials a fresh connection.
    let c = ok(pool.get().await);
    assert_eq!(c.id, 2);
}

/// A keepalive ping that fails on a connection `is_broken` then reports
/// broken (the manager's way to say "abandoned mid-exchange") closes it at
/// once, whatever `keepalive_max_missed` allows.
#[tokio::test(start_paused = true)]
async fn a_missed_ping_on_a_broken_conn_closes_it_at_once() {
    let mock = U::new();
    let pool = keepalive_pool(&mock, 3, 1).await;
    let t0 = Instant::now();
    mock.conn(1).mute();
    at(t0 + secs(10)).await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, pinging: 1, ..ZERO },
        "ping in flight"
    );
    mock.conn(1).break_it();
    at(t0 + secs(12)).await;
    assert_eq!(mock.closed(), vec![1], "closed at the first miss");
    assert_eq!(closed_for(&pool, CloseReason::Keepalive), 1);
    assert_eq!(keepalive(&pool), (1, 1));
    assert_eq!(counts(&pool), ZERO);
    check_counts(&pool, &[()]);
}
