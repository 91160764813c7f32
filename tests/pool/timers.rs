//! Time-driven closes and the maintenance task: the idle timeout (closed by
//! the maintenance task exactly at `idle_since + idle_timeout`, restarted by
//! every return, met at checkout, off with `None`), the maximum lifetime
//! (exactly at birth + `max_lifetime` with no jitter, checked on return, met
//! at checkout, spread over `[0.9 × life, life]` by a 0.1 jitter), `max_uses`,
//! the maintenance task's own life (one per pool, ending when the pool is
//! dropped or closed), 100 000 idle connections expiring on time with that one
//! task, and the idle timeout against `min_idle`.
//!
//! Every test runs on a current-thread runtime with the clock paused; tasks
//! only run when the test yields (`settle`, an `.await`), and time only
//! passes through `tokio::time::sleep_until`/`advance` (auto-advance when
//! every task is idle). tokio's timer has millisecond resolution and the
//! paused clock starts on a millisecond tick, so with whole-millisecond
//! offsets and `jitter(0.0)` a deadline fires exactly at its instant. Every
//! pool starts from `support::core_builder` (every lifecycle feature off: no
//! idle timeout, no lifetime, no keepalive, health check `Never`, no backoff,
//! no `max_connecting`) plus the feature under test. Connection ids are the
//! mock's: 1, 2, 3… in order of the dials' completion; the mock records the
//! instant of every `Manager::close`.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use connpool::{Builder, CloseReason, Manager, Pool, Pooled};
use tokio::time::{Instant, sleep_until};

use crate::support::*;

type U = Mock<()>;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Moves the paused clock forward by `d` without yielding to the scheduler:
/// the timers that fall due (the maintenance task's included) only fire at
/// the runtime's next park, so what the test does next synchronously runs at
/// the new instant before any other task has seen it.
async fn jump(d: Duration) {
    let mut advance = pin!(tokio::time::advance(d));
    std::future::poll_fn(|cx| {
        // The first poll moves the clock, then yields: drop it there.
        let _ = advance.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
}

/// Tasks alive in the runtime (the test's own future is not one).
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Yields until every pending `Manager::close` task ended (bounded).
async fn drain_closes<Mg: Manager>(pool: &Pool<Mg>) {
    for _ in 0..100_000 {
        if pool.state().closing == 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("closes never finished: {:?}", counts(pool));
}

// ---------------------------------------------------------------------------
// 1. Idle timeout
// ---------------------------------------------------------------------------

/// An idle connection nobody asks for is closed by the maintenance task at
/// exactly `idle_since + idle_timeout`: still idle 1 ms before, closed (for
/// `IdleTimeout`, through `Manager::close`) at the deadline itself.
#[tokio::test(start_paused = true)]
async fn idle_conn_is_closed_at_its_idle_deadline_without_any_get() {
    let mock = U::new();
    let t0 = Instant::now();
    let pool = mock
        .core_pool(|b| b.idle_timeout(secs(10)).jitter(0.0).initial(1))
        .await;
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });

    at(t0 + secs(10) - ms(1)).await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, idle: 1, ..ZERO },
        "not 1 ms early"
    );
    assert!(mock.closed().is_empty());
    assert_eq!(closed_for(&pool, CloseReason::IdleTimeout), 0);

    at(t0 + secs(10)).await;
    assert_eq!(Instant::now() - t0, secs(10));
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(
        mock.closes_since(t0),
        vec![(1, secs(10))],
        "at the deadline"
    );
    let s = pool.state();
    assert_eq!(s.closing, 0);
    assert_eq!(s.counters.closed(CloseReason::IdleTimeout), 1);
    assert_eq!(s.counters.closed_total(), 1);
    assert_eq!(s.counters.gets, 0, "nobody called get");
    check_counts(&pool, &[()]);

    // Nothing else happens later; the next get dials.
    at(t0 + secs(100)).await;
    assert_eq!(mock.closed(), vec![1]);
    let c = ok(pool.get().await);
    assert_eq!(c.id, 2);
    assert_eq!(mock.connects(), 2);
}

/// A use restarts the idle clock: a connection lent at 6 s and returned at
/// 8 s is not closed at its old deadline (10 s) but at 8 s + 10 s.
#[tokio::test(start_paused = true)]
async fn a_return_restarts_the_idle_clock() {
    let mock = U::new();
    let t0 = Instant::now();
    let pool = mock
        .core_pool(|b| b.idle_timeout(secs(10)).jitter(0.0).initial(1))
        .await;

    at(t0 + secs(6)).await;
    let c = ok(pool.get().await);
    assert_eq!((c.id, Pooled::uses(&c)), (1, 1));
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    at(t0 + secs(8)).await;
    drop(c);
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });

    // The old deadline passes (the maintenance task may wake for it): kept.
    at(t0 + secs(10)).await;
    at(t0 + secs(18) - ms(1)).await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, idle: 1, ..ZERO },
        "deadline moved to 18 s"
    );
    assert!(mock.closed().is_empty());

    at(t0 + secs(18)).await;
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(mock.closes_since(t0), vec![(1, secs(18))]);
    assert_eq!(closed_for(&pool, CloseReason::IdleTimeout), 1);
    assert_eq!(mock.connects(), 1);
    check_counts(&pool, &[()]);
}

/// Connections returned at different times close in the order of their
/// deadlines, each exactly at its own (`return + idle_timeout`), not at a
/// common sweep.
#[tokio::test(start_paused = true)]
async fn conns_returned_at_different_times_close_in_order_each_at_its_deadline() {
    let mock = U::new();
    let t0 = Instant::now();
    let pool = mock
        .core_pool(|b| b.idle_timeout(secs(10)).jitter(0.0))
        .await;
    let c1 = ok(pool.get().await);
    let c2 = ok(pool.get().await);
    let c3 = ok(pool.get().await);
    assert_eq!((c1.id, c2.id, c3.id), (1, 2, 3));

    // Returned: 2 at 1 s, 1 at 3 s, 3 at 4 s.
    at(t0 + secs(1)).await;
    drop(c2);
    at(t0 + secs(3)).await;
    drop(c1);
    at(t0 + secs(4)).await;
    drop(c3);
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 3, idle: 3, ..ZERO });

    let expected = [(2, secs(11)), (1, secs(13)), (3, secs(14))];
    for (n, &(id, deadline)) in expected.iter().enumerate() {
        at(t0 + deadline - ms(1)).await;
        assert_eq!(mock.closed().len(), n, "nothing closes before {deadline:?}");
        assert_eq!(pool.state().idle, 3 - n);
        at(t0 + deadline).await;
        assert_eq!(*mock.closed().last().unwrap(), id);
        assert_eq!(mock.closes_since(t0), expected[..=n].to_vec());
        assert_eq!(pool.state().idle, 2 - n);
        assert_eq!(closed_for(&pool, CloseReason::IdleTimeout), n as u64 + 1);
        check_counts(&pool, &[()]);
    }
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(mock.closed(), vec![2, 1, 3]);
    assert_eq!(pool.state().counters.closed_total(), 3);
}

/// A stale connection met at checkout, before the maintenance task could
/// look at it, is closed (`IdleTimeout`), never lent: here both idle
/// connections are stale, so the getter closes them newest first and dials.
/// The clock jumps to the deadline without yielding, so the maintenance task
/// has not run when the get's first poll checks out.
#[tokio::test(start_paused = true)]
async fn stale_conn_met_at_checkout_is_closed_and_the_getter_dials() {
    let (mock, pool) = U::pool(|b| b.idle_timeout(secs(10)).jitter(0.0).initial(2)).await;
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 2, idle: 2, ..ZERO });

    jump(secs(10)).await;
    // The maintenance task has not run yet: both still idle.
    assert_eq!(counts(&pool), Counts { open: 2, idle: 2, ..ZERO });
    assert_eq!(closed_for(&pool, CloseReason::IdleTimeout), 0);

    let mut get = pin!(pool.get());
    let first = std::future::poll_fn(|cx| Poll::Ready(get.as_mut().poll(cx).is_pending())).await;
    assert!(
        first,
        "no fresh connection yet: the getter waits for its dial"
    );
    // The checkout itself closed both, and started a dial.
    assert_eq!(
        counts(&pool),
        Counts { open: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    assert_eq!(closed_for(&pool, CloseReason::IdleTimeout), 2);
    check_counts(&pool, &[()]);

    let c = ok(get.await);
    assert_eq!((c.id, Pooled::uses(&c)), (3, 1), "a fresh dial");
    settle().await;
    assert_eq!(
        mock.closed(),
        vec![2, 1],
        "closed by the checkout, newest first"
    );
    assert_eq!(mock.connects(), 3);
    let s = pool.state();
    assert_eq!(
        (s.counters.gets, s.counters.gets_waited, s.counters.dials),
        (1, 1, 3)
    );
    assert_eq!(s.counters.closed_total(), 2);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

/// A get at exactly the idle deadline, however it is ordered against the
/// maintenance task's wake-up, never gets the stale connection.
#[tokio::test(start_paused = true)]
async fn get_at_the_exact_idle_deadline_never_gets_the_stale_conn() {
    let (mock, pool) = U::pool(|b| b.idle_timeout(secs(10)).jitter(0.0).initial(1)).await;
    let t0 = Instant::now();

    // 1 ms before: still fresh, and lent.
    sleep_until(t0 + secs(10) - ms(1)).await;
    let c = ok(pool.get().await);
    assert_eq!(c.id, 1);
    drop(c); // returned at 9.999 s: idle until 19.999 s
    sleep_until(t0 + secs(20) - ms(1)).await;
    let c = ok(pool.get().await);
    assert_eq!(c.id, 2, "stale at exactly its deadline: not lent");
    assert_eq!(Instant::now(), t0 + secs(20) - ms(1));
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(closed_for(&pool, CloseReason::IdleTimeout), 1);
    assert_eq!(mock.connects(), 2);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

/// `idle_timeout(None)`: idle connections are never closed, however long
/// they sit (a year here).
#[tokio::test(start_paused = true)]
async fn idle_timeout_none_never_closes() {
    let (mock, pool) = U::pool(|b| b.idle_timeout(None).initial(3)).await;
    let t0 = Instant::now();
    for days in [1, 30, 365] {
        at(t0 + secs(days * 86_400)).await;
        assert_eq!(counts(&pool), Counts { open: 3, idle: 3, ..ZERO });
    }
    assert!(mock.closed().is_empty());
    let c = ok(pool.get().await);
    assert_eq!(c.id, 3, "the newest idle one, still lent");
    assert_eq!(pool.state().counters.closed_total(), 0);
    assert_eq!(mock.connects(), 3);
    check_counts(&pool, &[()]);
}

// ---------------------------------------------------------------------------
// 2. Max lifetime
// ---------------------------------------------------------------------------

/// With no jitter an idle connection is closed (`Lifetime`) at exactly birth
/// + `max_lifetime`, whatever use it had meanwhile (a use does not extend
/// it).
#[tokio::test(start_paused = true)]
async fn idle_conn_is_closed_at_exactly_birth_plus_max_lifetime() {
    let mock = U::new();
    let t0 = Instant::now();
    let pool = mock
        .core_pool(|b| b.max_lifetime(secs(60)).jitter(0.0).initial(1))
        .await;

    at(t0 + secs(20)).await;
    let c = ok(pool.get().await);
    assert_eq!(c.id, 1);
    at(t0 + secs(30)).await;
    drop(c);

    at(t0 + secs(60) - ms(1)).await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, idle: 1, ..ZERO },
        "not 1 ms early"
    );
    assert!(mock.closed().is_empty());

    at(t0 + secs(60)).await;
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(mock.closes_since(t0), vec![(1, secs(60))]);
    let s = pool.state();
    assert_eq!(s.counters.closed(CloseReason::Lifetime), 1);
    assert_eq!(s.counters.closed_total(), 1);
    assert_eq!(s.closing, 0);
    check_counts(&pool, &[()]);
}

/// A connection past its lifetime while lent is not touched while lent; when
/// it comes back it is closed (`Lifetime`) instead of being handed to the
/// waiting getter, whose slot then dials a fresh one.
#[tokio::test(start_paused = true)]
async fn lent_conn_past_its_lifetime_is_closed_on_return_not_handed_to_a_waiter() {
    let (mock, pool) = U::pool(|b| {
        b.max_open(1)
            .max_lifetime(secs(60))
            .jitter(0.0)
            .checkout_timeout(None)
    })
    .await;
    let t0 = Instant::now();
    let c = ok(pool.get().await);
    assert_eq!(c.id, 1);

    at(t0 + secs(50)).await;
    let w = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );

    at(t0 + secs(61)).await;
    assert!(mock.closed().is_empty(), "not closed while lent");
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );
    assert!(!w.is_finished());

    drop(c);
    check_counts(&pool, &[()]);
    let c = ok(join(w).await);
    assert_eq!((c.id, Pooled::uses(&c)), (2, 1), "a fresh dial, not id 1");
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(mock.connects(), 2);
    let s = pool.state();
    assert_eq!(s.counters.closed(CloseReason::Lifetime), 1);
    assert_eq!(s.counters.closed_total(), 1);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

/// An expired connection met at checkout (before the maintenance task ran)
/// is closed (`Lifetime`) and the getter gets the next idle one.
///
/// id 1 is born at 0 s, id 2 at 30 s; 2 is returned first, so 1 is the
/// newest idle connection when the clock jumps to 60 s.
#[tokio::test(start_paused = true)]
async fn expired_conn_met_at_checkout_is_closed_and_the_getter_gets_the_next() {
    let (mock, pool) = U::pool(|b| b.max_lifetime(secs(60)).jitter(0.0)).await;
    let t0 = Instant::now();
    let c1 = ok(pool.get().await);
    at(t0 + secs(30)).await;
    let c2 = ok(pool.get().await);
    assert_eq!((c1.id, c2.id), (1, 2));
    at(t0 + secs(31)).await;
    drop(c2);
    at(t0 + secs(32)).await;
    drop(c1);
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 2, idle: 2, ..ZERO });

    jump(secs(28)).await; // to 60 s, the maintenance task not yet run
    assert_eq!(Instant::now(), t0 + secs(60));
    assert_eq!(counts(&pool), Counts { open: 2, idle: 2, ..ZERO });
    let c = ok(pool.get().await);
    assert_eq!(c.id, 2, "the next idle one, not the expired one");
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    assert_eq!(closed_for(&pool, CloseReason::Lifetime), 1);
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(mock.connects(), 2);
    let s = pool.state();
    assert_eq!(
        (s.counters.gets, s.counters.gets_waited),
        (3, 2),
        "the third get did not wait"
    );
    check_counts(&pool, &[()]);
}

/// Lifetime jitter 0.1: 1000 connections born at the same instant close
/// spread over `[0.9 × life, life]`: none before 90 s, all by 100 s, over
/// many 1 % buckets and many distinct instants.
#[tokio::test(start_paused = true)]
async fn lifetime_jitter_spreads_closes_over_the_band() {
    const N: usize = 1000;
    let life = secs(100);
    let mock = U::new();
    let t0 = Instant::now();
    let pool = mock
        .core_pool(|b| b.max_open(N).max_lifetime(life).jitter(0.1).initial(N))
        .await;
    assert_eq!(Instant::now(), t0, "all born at t0");
    assert_eq!(counts(&pool), Counts { open: N, idle: N, ..ZERO });

    at(t0 + life.mul_f64(0.9) - ms(1)).await;
    assert_eq!(pool.state().idle, N, "nothing before 0.9 × life");
    assert!(mock.closed().is_empty());

    at(t0 + life).await;
    drain_closes(&pool).await;
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(closed_for(&pool, CloseReason::Lifetime), N as u64);
    assert_eq!(pool.state().counters.closed_total(), N as u64);

    let closes = mock.closes_since(t0);
    assert_eq!(closes.len(), N);
    let ids: BTreeSet<u64> = closes.iter().map(|&(id, _)| id).collect();
    assert_eq!(ids.len(), N, "each closed once");
    let (lo, hi) = (life.mul_f64(0.9), life);
    for &(id, after) in &closes {
        assert!(lo <= after && after <= hi, "conn {id} closed at {after:?}");
    }
    assert!(
        closes.windows(2).all(|w| w[0].1 <= w[1].1),
        "closed in deadline order"
    );
    let buckets: BTreeSet<u128> = closes
        .iter()
        .map(|&(_, after)| after.as_millis() / (life.as_millis() / 100))
        .collect();
    let instants: BTreeSet<Duration> = closes.iter().map(|&(_, after)| after).collect();
    assert!(buckets.len() >= 5, "1% buckets hit: {buckets:?}");
    assert!(
        instants.len() >= 500,
        "only {} distinct close instants",
        instants.len()
    );
    check_counts(&pool, &[()]);
}

// ---------------------------------------------------------------------------
// 3. Max uses
// ---------------------------------------------------------------------------

/// `max_uses(Some(3))`: a connection is lent exactly 3 times (`uses` 1, 2,
/// 3, counting a hand-off too) and closed (`Uses`) on its 3rd return, not
/// handed to the waiter, which gets a fresh dial.
#[tokio::test(start_paused = true)]
async fn max_uses_lends_a_conn_exactly_n_times() {
    let (mock, pool) = U::pool(|b| b.max_open(1).max_uses(3).checkout_timeout(None)).await;

    let c = ok(pool.get().await);
    assert_eq!((c.id, Pooled::uses(&c)), (1, 1));
    drop(c);
    let c = ok(pool.get().await);
    assert_eq!((c.id, Pooled::uses(&c)), (1, 2));
    // The 3rd lend is a hand-off to a waiter: it counts too.
    let w = spawn_get(&pool, ());
    settle().await;
    drop(c);
    let c = ok(join(w).await);
    assert_eq!((c.id, Pooled::uses(&c)), (1, 3));
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    assert!(mock.closed().is_empty());

    let w = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );
    drop(c); // 3rd return: closed, the waiter dials
    check_counts(&pool, &[()]);
    let c = ok(join(w).await);
    assert_eq!((c.id, Pooled::uses(&c)), (2, 1));
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(mock.connects(), 2);
    let s = pool.state();
    assert_eq!(s.counters.closed(CloseReason::Uses), 1);
    assert_eq!(s.counters.closed_total(), 1);
    assert_eq!(s.counters.gets, 4);
    drop(c);
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

// ---------------------------------------------------------------------------
// 4. The maintenance task's life
// ---------------------------------------------------------------------------

/// Building a pool adds exactly one task; dropping the last handle closes
/// the pool, which ends it, even while a guard is still out.
#[tokio::test(start_paused = true)]
async fn maintenance_task_ends_when_the_pool_is_dropped() {
    let base = alive_tasks();
    let (_, pool) = U::pool(|b| b.idle_timeout(secs(10)).jitter(0.0).initial(2)).await;
    let t0 = Instant::now();
    settle().await;
    assert_eq!(alive_tasks(), base + 1, "one maintenance task");
    at(t0 + secs(5)).await;
    assert_eq!(alive_tasks(), base + 1);

    let g = Pooled::into_owned(ok(pool.get().await));
    drop(pool);
    settle().await;
    assert_eq!(alive_tasks(), base, "the maintenance task ended");
    drop(g);
    settle().await;
    assert_eq!(alive_tasks(), base);
    // It does not come back when deadlines pass.
    at(t0 + secs(60)).await;
    assert_eq!(alive_tasks(), base);
}

/// Closing the pool ends its maintenance task at once, with the handle
/// still alive; nothing is closed for `IdleTimeout` afterwards.
#[tokio::test(start_paused = true)]
async fn maintenance_task_ends_when_the_pool_is_closed() {
    let base = alive_tasks();
    let (mock, pool) = U::pool(|b| {
        b.idle_timeout(secs(10))
            .max_lifetime(secs(20))
            .jitter(0.0)
            .initial(2)
    })
    .await;
    let t0 = Instant::now();
    settle().await;
    assert_eq!(alive_tasks(), base + 1, "one maintenance task");

    pool.close().await;
    settle().await;
    assert_eq!(alive_tasks(), base, "the maintenance task ended");
    assert_eq!(sorted(mock.closed()), vec![1, 2]);
    at(t0 + secs(60)).await;
    assert_eq!(alive_tasks(), base);
    let s = pool.state();
    assert!(s.closed);
    assert_eq!(s.counters.closed(CloseReason::PoolClosed), 2);
    assert_eq!(s.counters.closed_total(), 2);
    assert_eq!(counts(&pool), ZERO);
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

// ---------------------------------------------------------------------------
// 5. Scale
// ---------------------------------------------------------------------------

/// 100 000 idle connections all expire on time with the one maintenance
/// task (no task per connection): none 1 ms before the deadline, all at it.
#[tokio::test(start_paused = true)]
async fn scale_100k_idle_conns_expire_on_time_with_one_task() {
    const N: usize = 100_000;
    let base = alive_tasks();
    let mock = U::new();
    let t0 = Instant::now();
    let pool = mock
        .core_pool(|b| b.max_open(N).idle_timeout(secs(60)).jitter(0.0).initial(N))
        .await;
    assert_eq!(Instant::now(), t0);
    settle().await;
    assert_eq!(counts(&pool), Counts { open: N, idle: N, ..ZERO });
    assert_eq!(alive_tasks(), base + 1, "one task for 100k idle conns");

    at(t0 + secs(30)).await;
    assert_eq!(alive_tasks(), base + 1);
    at(t0 + secs(60) - ms(1)).await;
    assert_eq!(pool.state().idle, N, "none 1 ms early");
    assert_eq!(closed_for(&pool, CloseReason::IdleTimeout), 0);
    assert_eq!(alive_tasks(), base + 1);

    at(t0 + secs(60)).await;
    assert_eq!(Instant::now(), t0 + secs(60));
    let s = pool.state();
    assert_eq!(Counts::from(&s), ZERO, "all at the deadline");
    assert_eq!(s.counters.closed(CloseReason::IdleTimeout), N as u64);
    assert_eq!(s.counters.closed_total(), N as u64);
    drain_closes(&pool).await;
    assert_eq!(Instant::now(), t0 + secs(60));
    assert_eq!(mock.closed().len(), N);
    assert_eq!(alive_tasks(), base + 1);
    check_counts(&pool, &[()]);
}

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
    assert_eq!(closed_for(&pool, CloseReason::IdleTimeout), 3);
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
    assert_eq!(closed_for(&pool, CloseReason::IdleTimeout), 3);
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
    assert_eq!(s.counters.closed(CloseReason::IdleTimeout), 1);
    assert_eq!(s.counters.closed_total(), 1);
}

// ---------------------------------------------------------------------------
// 5. Connections returned a moment ago
// ---------------------------------------------------------------------------
//
// A single-key pool (key `()`) defers the parking of a connection returned
// when nobody waits, and its next checkout lends it straight back (the
// `recent` fast path). These connections are held to every check an idle
// one is: met stale or expired at checkout before the maintenance task
// could look at them, they are closed, never lent; and a connection
// returned used up is closed on its return.

/// Returned, then stale (idle timeout) or past its lifetime at the next
/// checkout (the clock jumped to the deadline without yielding): closed,
/// never lent, and the getter dials.
#[tokio::test(start_paused = true)]
async fn a_conn_returned_a_moment_ago_is_closed_if_stale_or_expired_at_checkout() {
    type Set = fn(Builder<U>) -> Builder<U>;
    let cases: [(Set, CloseReason); 2] = [
        (|b| b.idle_timeout(secs(10)), CloseReason::IdleTimeout),
        (|b| b.max_lifetime(secs(10)), CloseReason::Lifetime),
    ];
    for (set, reason) in cases {
        let (_, pool) = U::pool(|b| set(b).jitter(0.0).initial(1)).await;
        drop(ok(pool.get().await));
        assert_eq!(
            counts(&pool),
            Counts { open: 1, idle: 1, ..ZERO },
            "returned: idle"
        );

        jump(secs(10)).await;
        let mut get = pin!(pool.get());
        let first =
            std::future::poll_fn(|cx| Poll::Ready(get.as_mut().poll(cx).is_pending())).await;
        assert!(first, "{reason:?}: not lent, a dial is");
        assert_eq!(closed_for(&pool, reason), 1);
        let c = ok(get.await);
        assert_eq!(c.id, 2);
        check_counts(&pool, &[()]);
    }
}

/// Returned used up (its `max_uses`-th lending) with nobody waiting: closed
/// on the return, not kept for the next checkout.
#[tokio::test(start_paused = true)]
async fn a_conn_returned_used_up_is_closed_on_its_return() {
    let (_, pool) = U::pool(|b| b.max_uses(2).initial(1)).await;
    drop(ok(pool.get().await));
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    drop(ok(pool.get().await));
    assert_eq!(counts(&pool), ZERO, "closed on its 2nd return");
    assert_eq!(closed_for(&pool, CloseReason::Uses), 1);
    let c = ok(pool.get().await);
    assert_eq!((c.id, Pooled::uses(&c)), (2, 1));
    check_counts(&pool, &[()]);
}

/// A connection returned while the maintenance task has nothing to wake
/// for (every connection was lent when it last ran) is parked, so that the
/// task wakes for it: it is still closed at its idle timeout, with nothing
/// else happening in the pool.
#[tokio::test(start_paused = true)]
async fn a_conn_returned_after_the_timers_ran_dry_still_times_out() {
    let (mock, pool) = U::pool(|b| b.idle_timeout(secs(10)).jitter(0.0).initial(1)).await;
    let t0 = Instant::now();
    let c = ok(pool.get().await);
    // The maintenance task wakes at the idle connection's old deadline,
    // finds it lent, and has nothing left to wake for.
    at(t0 + secs(20)).await;
    drop(c);
    at(t0 + secs(30) - ms(1)).await;
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    at(t0 + secs(30)).await;
    drain_closes(&pool).await;
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(mock.closes(), vec![(1, t0 + secs(30))]);
}

/// The gets a single-key pool serves from its fast path are counted, per
/// key and in total, like any other; and a key forgotten (its last
/// connection timed out) and seen again counts from zero.
#[tokio::test(start_paused = true)]
async fn fast_path_gets_are_counted_and_a_forgotten_key_counts_from_zero() {
    let (_, pool) = U::pool(|b| b.idle_timeout(secs(10)).jitter(0.0).initial(1)).await;
    for _ in 0..3 {
        drop(ok(pool.get().await));
    }
    assert_eq!(pool.state().counters.gets, 3);
    assert_eq!(pool.key_state(&()).unwrap().counters.gets, 3);

    sleep_until(Instant::now() + secs(11)).await;
    assert_eq!(closed_for(&pool, CloseReason::IdleTimeout), 1);
    assert!(pool.key_state(&()).is_none(), "forgotten");

    drop(ok(pool.get().await));
    assert_eq!(pool.key_state(&()).unwrap().counters.gets, 1);
    assert_eq!(pool.state().counters.gets, 4);
    check_counts(&pool, &[()]);
}
