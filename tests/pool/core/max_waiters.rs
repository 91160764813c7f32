//! `max_waiters`: the extra waiter refused at once, a getter on its own dial
//! counted.

use std::time::Duration;

use connpool::Error;
use tokio::time::Instant;

use crate::support::*;

use super::U;

// ---------------------------------------------------------------------------
// 9. max_waiters
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn max_waiters_rejects_the_extra_waiter_at_once() {
    let (_, pool) = U::pool(|b| b.max_open(1).max_waiters(2)).await;
    let c = ok(pool.get().await);
    let w1 = spawn_get(&pool, ());
    settle().await;
    let w2 = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 2, ..ZERO }
    );

    let start = Instant::now();
    match err(pool.get().await) {
        Error::TooManyWaiters { max_waiters, .. } => assert_eq!(max_waiters, 2),
        other => panic!("expected TooManyWaiters, got {other:?}"),
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    check_counts(&pool, &[()]);
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 2, ..ZERO }
    );
    let s = pool.state();
    assert_eq!(s.counters.rejections, 1);
    assert_eq!((s.counters.gets, s.counters.gets_waited), (4, 3));
    assert_eq!(pool.key_state(&()).unwrap().counters.rejections, 1);

    // One waiter served: room for another.
    drop(c);
    let c1 = ok(join(w1).await);
    assert_eq!(c1.id, 1);
    let w3 = spawn_get(&pool, ());
    settle().await;
    assert!(!w3.is_finished());
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 2, ..ZERO }
    );
    assert_eq!(pool.state().counters.rejections, 1);
    drop(c1);
    let c2 = ok(join(w2).await);
    drop(c2);
    let c3 = ok(join(w3).await);
    assert_eq!(c3.id, 1);
    check_counts(&pool, &[()]);
}

/// A getter waiting for its own dial counts as a waiter: with
/// `max_waiters(1)` a second get during that dial is refused at once, and an
/// idle connection is still served without waiting.
#[tokio::test(start_paused = true)]
async fn max_waiters_counts_a_getter_waiting_for_its_own_dial() {
    let (mock, pool) = U::pool(|b| b.max_waiters(1)).await;
    let gate = mock.gate(());
    let first = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    match err(pool.get().await) {
        Error::TooManyWaiters { max_waiters, .. } => assert_eq!(max_waiters, 1),
        other => panic!("expected TooManyWaiters, got {other:?}"),
    }
    assert_eq!(mock.connects(), 1, "the refused get started no dial");
    gate.succeed();
    let c = ok(join(first).await);
    drop(c);
    let again = ok(pool.get().await);
    assert_eq!(again.id, 1);
    assert_eq!(pool.state().counters.rejections, 1);
    drop(again);
    check_counts(&pool, &[()]);
}
