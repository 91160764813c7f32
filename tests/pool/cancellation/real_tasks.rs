//! Beyond the matrix: cancellation through real tasks and wakers, and at
//! scale.

use std::time::Duration;

use connpool::{ConnectError, Error, Pool, Pooled};
use tokio::time::Instant;

use crate::support::{Counts, Step, ZERO, counts, settle};

use super::cell::Second;
use super::{CELL_LIMIT, GetFuture, K, M, advance_to, poll_once};

/// Closes `pool`, failing (instead of hanging) if it never drains.
async fn close(pool: &Pool<M>) {
    tokio::time::timeout(CELL_LIMIT, pool.close())
        .await
        .unwrap_or_else(|_| panic!("close never finished: {:?}", pool.state()));
}

/// A getter whose task is aborted after a hand-off woke it but before it ran
/// again: the connection goes to the next waiter, or idle.
#[tokio::test(start_paused = true)]
async fn aborting_a_task_after_its_hand_off_passes_the_connection_on() {
    for second in Second::ALL {
        let (mock, pool) = M::pool(|b| b.max_open_per_key(1)).await;
        let holder = pool.get_for(&K).await.unwrap();
        let p = pool.clone();
        let getter = tokio::spawn(async move { p.get_for(&K).await.map(|c| c.id) });
        settle().await;
        let w2 = (second == Second::Waiter).then(|| {
            let p = pool.clone();
            tokio::spawn(async move { p.get_for(&K).await.map(Pooled::into_owned) })
        });
        settle().await;
        let s = usize::from(w2.is_some());
        assert_eq!(
            counts(&pool),
            Counts { open: 1, lent: 1, waiting: 1 + s, ..ZERO },
            "{second:?}: queued"
        );
        // Hands connection 1 to the getter's slot and wakes its task...
        drop(holder);
        // ...which is aborted before it runs again.
        getter.abort();
        let joined = getter.await;
        assert!(
            joined.as_ref().is_err_and(|e| e.is_cancelled()),
            "{second:?}: the abort should have hit before the getter ran: {joined:?}"
        );
        settle().await;
        assert_eq!(
            counts(&pool),
            Counts { open: 1, idle: 1 - s, lent: s, ..ZERO },
            "{second:?}: after abort"
        );
        if let Some(w2) = w2 {
            assert!(w2.is_finished(), "{second:?}: second waiter not served");
            let conn = w2.await.unwrap().unwrap();
            assert_eq!(conn.id, 1, "{second:?}: second waiter");
        }
        settle().await;
        assert_eq!(
            counts(&pool),
            Counts { open: 1, idle: 1, ..ZERO },
            "{second:?}: at the end"
        );
        assert_eq!(mock.connects(), 1, "{second:?}: no extra dial");
        close(&pool).await;
        assert_eq!(mock.closed(), vec![1], "{second:?}: closed once");
    }
}

/// Cancelled getters leave stale queue entries; the live ones between them
/// are still served in FIFO order, one connection passed down the line.
#[tokio::test(start_paused = true)]
async fn live_waiters_between_cancelled_ones_are_served_in_order() {
    let (mock, pool) = M::pool(|b| b.max_open_per_key(1)).await;
    let holder = pool.get_for(&K).await.unwrap();
    let order = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut cancelled = Vec::new();
    let mut live = Vec::new();
    for i in 0..6 {
        if i % 2 == 0 {
            let mut fut: GetFuture<'_> =
                Box::pin(async { Some(pool.get_for(&K).await.map(Pooled::into_owned)) });
            assert!(poll_once(fut.as_mut()).is_pending(), "getter {i} waits");
            cancelled.push(fut);
        } else {
            let p = pool.clone();
            let order = std::sync::Arc::clone(&order);
            live.push(tokio::spawn(async move {
                let conn = p.get_for(&K).await.unwrap();
                order.lock().push((i, conn.id));
                // Dropping it hands it to the next live waiter.
            }));
        }
        settle().await;
    }
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 6, ..ZERO },
        "all queued"
    );
    drop(cancelled);
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 3, ..ZERO },
        "cancelled ones gone"
    );
    drop(holder);
    settle().await;
    for h in live {
        assert!(h.is_finished(), "a live waiter was not served");
        h.await.unwrap();
    }
    assert_eq!(*order.lock(), vec![(1, 1), (3, 1), (5, 1)], "FIFO order");
    assert_eq!(
        counts(&pool),
        Counts { open: 1, idle: 1, ..ZERO },
        "at the end"
    );
    assert_eq!(mock.connects(), 1, "one connection served everybody");
    close(&pool).await;
    assert_eq!(mock.closed(), vec![1]);
}

/// A cancelled waiter no longer counts against `max_waiters`.
#[tokio::test(start_paused = true)]
async fn a_cancelled_getter_frees_its_place_under_max_waiters() {
    let (mock, pool) = M::pool(|b| b.max_open_per_key(1).max_waiters(1)).await;
    let holder = pool.get_for(&K).await.unwrap();
    for round in 0..3 {
        let mut fut = Box::pin(pool.get_for(&K));
        assert!(poll_once(fut.as_mut()).is_pending(), "round {round}: waits");
        let refused = pool.get_for(&K).await;
        assert!(
            matches!(refused, Err(Error::TooManyWaiters { max_waiters: 1, .. })),
            "round {round}: a second waiter should be refused: {refused:?}"
        );
        drop(fut);
        assert_eq!(pool.state().waiting, 0, "round {round}: waiting after drop");
    }
    assert_eq!(pool.state().counters.rejections, 3);
    let p = pool.clone();
    let waiter = tokio::spawn(async move { p.get_for(&K).await.map(|c| c.id) });
    settle().await;
    assert_eq!(pool.state().waiting, 1, "a new waiter is admitted");
    drop(holder);
    settle().await;
    assert!(waiter.is_finished(), "the admitted waiter was not served");
    assert_eq!(waiter.await.unwrap().unwrap(), 1);
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    close(&pool).await;
    assert_eq!(mock.closed(), vec![1]);
}

/// Many getters wrapped in `tokio::time::timeout`, in tasks of their own,
/// give up together (enough stale entries to make the pool compact its
/// queues); the one live getter behind them still gets the connection.
#[tokio::test(start_paused = true)]
async fn a_crowd_of_timed_out_getters_leaves_the_live_one_served() {
    const CROWD: usize = 40;
    let (mock, pool) = M::pool(|b| b.max_open_per_key(1).checkout_timeout(None)).await;
    let holder = pool.get_for(&K).await.unwrap();
    let crowd: Vec<_> = (0..CROWD)
        .map(|_| {
            let p = pool.clone();
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(1), p.get_for(&K))
                    .await
                    .is_err()
            })
        })
        .collect();
    settle().await;
    let p = pool.clone();
    let live = tokio::spawn(async move { p.get_for(&K).await.map(|c| c.id) });
    settle().await;
    assert_eq!(pool.state().waiting, CROWD + 1);
    advance_to(Instant::now() + Duration::from_secs(1)).await;
    for h in crowd {
        assert!(h.await.unwrap(), "a crowd getter should have timed out");
    }
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO },
        "only the live getter waits"
    );
    assert_eq!(pool.key_state(&K).map(|k| k.waiting), Some(1));
    drop(holder);
    settle().await;
    assert!(live.is_finished(), "the live getter was not served");
    assert_eq!(live.await.unwrap().unwrap(), 1, "the live getter is served");
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    assert_eq!(mock.connects(), 1);
    close(&pool).await;
    assert_eq!(mock.closed(), vec![1]);
}

/// A getter whose dial failed is dropped before it picks the error up, and
/// the dial the freed slot starts for the next waiter panics: that waiter
/// sees `ConnectError::Aborted`, and nothing stays counted.
#[tokio::test(start_paused = true)]
async fn a_panicking_dial_behind_a_dropped_getter_leaks_nothing() {
    for second in Second::ALL {
        let (mock, pool) = M::pool(|b| b.max_open_per_key(1)).await;
        let gate = mock.gate(K);
        let mut fut = Box::pin(pool.get_for(&K));
        assert!(poll_once(fut.as_mut()).is_pending(), "{second:?}: waits");
        settle().await;
        let w2 = (second == Second::Waiter).then(|| {
            let p = pool.clone();
            tokio::spawn(async move { p.get_for(&K).await.map(Pooled::into_owned) })
        });
        settle().await;
        let s = usize::from(w2.is_some());
        assert_eq!(
            counts(&pool),
            Counts { open: 1, dialing: 1, waiting: 1 + s, ..ZERO },
            "{second:?}: dialing"
        );
        // G's dial fails; the slot it frees dials for W2 (if any), and
        // that dial panics.
        if s == 1 {
            mock.push(K, Step::Panic);
        }
        gate.fail("refused");
        settle().await;
        // G holds its dial's error; W2 (if any) got the freed slot, whose
        // dial panicked and was reported as aborted.
        drop(fut);
        settle().await;
        assert_eq!(counts(&pool), ZERO, "{second:?}: after drop");
        // The key is remembered for its failed dials, with nothing counted.
        let ks = pool.key_state(&K).expect("remembered for its failures");
        assert_eq!(ks.dial_failures_in_a_row, 1 + s as u32, "{second:?}");
        if let Some(w2) = w2 {
            assert!(w2.is_finished(), "{second:?}: second waiter not served");
            let got = w2.await.unwrap();
            assert!(
                matches!(got, Err(Error::Connect(ConnectError::Panicked(_)))),
                "{second:?}: second waiter should see the panicked dial: {got:?}"
            );
        }
        assert_eq!(mock.connects(), 1 + s, "{second:?}: dials");
        let fresh = pool.get_for(&K).await.unwrap();
        assert_eq!(fresh.id, 1, "{second:?}: the first connection made");
        drop(fresh);
        close(&pool).await;
        assert_eq!(mock.closed(), vec![1], "{second:?}: closed once");
    }
}
