//! Connections returned a moment ago held to every check an idle one is.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use connpool::{Builder, Counters, Pooled};
use tokio::time::{Instant, sleep_until};

use crate::support::*;

use super::{U, drain_closes, jump, ms, secs};

// ---------------------------------------------------------------------------
// 5. Connections returned a moment ago
// ---------------------------------------------------------------------------
//
// A connection returned when nobody waits is the one the next checkout
// lends (newest first). It is held to every check an idle one is: met stale or expired at checkout before the maintenance task
// could look at them, they are closed, never lent; and a connection
// returned used up is closed on its return.

/// Returned, then stale (idle timeout) or past its lifetime at the next
/// checkout (the clock jumped to the deadline without yielding): closed,
/// never lent, and the getter dials.
#[tokio::test(start_paused = true)]
async fn a_conn_returned_a_moment_ago_is_closed_if_stale_or_expired_at_checkout() {
    type Set = fn(Builder<U>) -> Builder<U>;
    type Closed = fn(&Counters) -> u64;
    let cases: [(Set, &str, Closed); 2] = [
        (
            |b| b.idle_timeout(secs(10)),
            "idle timeout",
            |c| c.closed_idle_timeout,
        ),
        (
            |b| b.max_lifetime(secs(10)),
            "lifetime",
            |c| c.closed_lifetime,
        ),
    ];
    for (set, reason, closed) in cases {
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
        assert!(first, "{reason}: not lent, a dial is");
        assert_eq!(closed(&pool.state().counters), 1);
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
    assert_eq!(pool.state().counters.closed_uses, 1);
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

/// A single-key pool's gets are counted, per key and in total; and a key
/// forgotten (its last connection timed out) and seen again counts from
/// zero.
#[tokio::test(start_paused = true)]
async fn gets_are_counted_and_a_forgotten_key_counts_from_zero() {
    let (_, pool) = U::pool(|b| b.idle_timeout(secs(10)).jitter(0.0).initial(1)).await;
    for _ in 0..3 {
        drop(ok(pool.get().await));
    }
    assert_eq!(pool.state().counters.gets, 3);
    assert_eq!(pool.key_state(&()).unwrap().counters.gets, 3);

    sleep_until(Instant::now() + secs(11)).await;
    assert_eq!(pool.state().counters.closed_idle_timeout, 1);
    assert!(pool.key_state(&()).is_none(), "forgotten");

    drop(ok(pool.get().await));
    assert_eq!(pool.key_state(&()).unwrap().counters.gets, 1);
    assert_eq!(pool.state().counters.gets, 4);
    check_counts(&pool, &[()]);
}

/// A connection lent again right after its return, when its key is
/// closed, is retired all the same: closed at its return, never lent again.
#[tokio::test(start_paused = true)]
async fn a_conn_lent_again_when_its_key_closes_is_never_lent_again() {
    let (_, pool) = U::pool(|b| b.initial(1)).await;
    drop(ok(pool.get().await));
    let c = ok(pool.get().await);
    assert_eq!((c.id, Pooled::uses(&c)), (1, 2));
    pool.close_key(&());
    drop(c);
    // (Nothing in between that takes the lock.)
    let c = ok(pool.get().await);
    assert_eq!(c.id, 2, "a new one");
    drain_closes(&pool).await;
    assert_eq!(pool.state().counters.closed_retired, 1);
    drop(c);
    let c = ok(pool.get().await);
    assert_eq!(
        (c.id, Pooled::uses(&c)),
        (2, 2),
        "which rests and is lent again"
    );
    drop(c);
    assert_eq!(pool.state().counters.gets, 4);
    check_counts(&pool, &[()]);
}
