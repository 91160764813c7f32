//! The idle timeout: closed at its deadline, restarted by a return, met at
//! checkout, off with `None`.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use connpool::Pooled;
use tokio::time::{Instant, sleep_until};

use crate::support::*;

use super::{U, jump, ms, secs};

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
    assert_eq!(pool.state().counters.closed_idle_timeout, 0);

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
    assert_eq!(s.counters.closed_idle_timeout, 1);
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
    assert_eq!(pool.state().counters.closed_idle_timeout, 1);
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
        assert_eq!(pool.state().counters.closed_idle_timeout, n as u64 + 1);
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
    assert_eq!(pool.state().counters.closed_idle_timeout, 0);

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
    assert_eq!(pool.state().counters.closed_idle_timeout, 2);
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
    assert_eq!(pool.state().counters.closed_idle_timeout, 1);
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
