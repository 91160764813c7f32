//! Returns and freed slots go to the waiters: FIFO order, by direct hand-off,
//! never through the idle list.

use connpool::Pooled;

use crate::support::*;

use super::{M, U};

// ---------------------------------------------------------------------------
// 1. FIFO order of waiters
// ---------------------------------------------------------------------------

/// Waiters queued at the key's cap are served in arrival order, whatever
/// order the connections come back in, each by direct hand-off.
#[tokio::test(start_paused = true)]
async fn fifo_waiters_are_handed_returns_in_arrival_order() {
    let (mock, pool) = M::pool(|b| b.max_open(2)).await;
    let a = ok(pool.get_for(&1).await);
    let b = ok(pool.get_for(&1).await);
    assert_eq!((a.id, b.id), (1, 2));
    check_counts(&pool, &[1]);

    let mut w = Vec::new();
    for i in 0..4 {
        w.push(spawn_get(&pool, 1));
        settle().await;
        assert_eq!(
            counts(&pool),
            Counts { open: 2, lent: 2, waiting: i + 1, ..ZERO }
        );
        check_counts(&pool, &[1]);
    }

    // b (id 2) comes back first: it goes to the first waiter.
    drop(b);
    check_counts(&pool, &[1]);
    settle().await;
    assert!(w[0].is_finished());
    assert!(!w[1].is_finished() && !w[2].is_finished() && !w[3].is_finished());
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 2, waiting: 3, ..ZERO }
    );
    drop(a);
    check_counts(&pool, &[1]);
    settle().await;
    assert!(w[1].is_finished());
    assert!(!w[2].is_finished() && !w[3].is_finished());
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 2, waiting: 2, ..ZERO }
    );

    let mut w = w.into_iter();
    let c0 = ok(join(w.next().unwrap()).await);
    let c1 = ok(join(w.next().unwrap()).await);
    assert_eq!((c0.id, c1.id), (2, 1));
    let (w2, w3) = (w.next().unwrap(), w.next().unwrap());

    // Returned in the order id 1, id 2: the third waiter gets id 1.
    drop(c1);
    check_counts(&pool, &[1]);
    settle().await;
    assert!(w2.is_finished() && !w3.is_finished());
    drop(c0);
    check_counts(&pool, &[1]);
    let c2 = ok(join(w2).await);
    let c3 = ok(join(w3).await);
    assert_eq!((c2.id, c3.id), (1, 2));
    assert_eq!(counts(&pool), Counts { open: 2, lent: 2, ..ZERO });
    assert_eq!(mock.connects(), 2, "hand-offs dial nothing");
    assert_eq!(pool.state().counters.dials, 2);
    drop((c2, c3));
    check_counts(&pool, &[1]);
    assert_eq!(counts(&pool), Counts { open: 2, idle: 2, ..ZERO });
    assert!(mock.closed().is_empty());
}

/// Slots freed by closed/detached connections go to the key's dial waiters
/// in arrival order.
#[tokio::test(start_paused = true)]
async fn fifo_dial_waiters_get_freed_slots_in_arrival_order() {
    let (mock, pool) = U::pool(|b| b.max_open(1)).await;
    let mut c = ok(pool.get().await);
    assert_eq!(c.id, 1);
    let mut w = Vec::new();
    for _ in 0..3 {
        w.push(spawn_get(&pool, ()));
        settle().await;
    }
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 3, ..ZERO }
    );
    check_counts(&pool, &[()]);

    // Broken: closed, its slot dials for the first waiter.
    Pooled::mark_broken(&mut c);
    drop(c);
    check_counts(&pool, &[()]);
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert!(w[0].is_finished() && !w[1].is_finished() && !w[2].is_finished());
    let mut w = w.into_iter();
    let c0 = ok(join(w.next().unwrap()).await);
    assert_eq!(c0.id, 2);
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 2, ..ZERO }
    );

    // Detached: its slot dials for the second waiter.
    let raw = Pooled::detach(c0);
    assert_eq!(raw.id, 2);
    check_counts(&pool, &[()]);
    let c1 = ok(join(w.next().unwrap()).await);
    assert_eq!(c1.id, 3);
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );

    // Returned: handed to the third.
    drop(c1);
    let c2 = ok(join(w.next().unwrap()).await);
    assert_eq!(c2.id, 3);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
    assert_eq!(mock.connects(), 3);
    assert_eq!(mock.closed(), vec![1]);
}

// ---------------------------------------------------------------------------
// 7. Hand-off on return
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn return_is_handed_straight_to_the_waiter_never_idle() {
    let (mock, pool) = U::pool(|b| b.max_open(1).max_idle(1)).await;
    let c = ok(pool.get().await);
    let g = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );

    drop(c);
    // Before the waiter runs: already counted as lent to it, never idle.
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
    let got = ok(join(g).await);
    assert_eq!(got.id, 1);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    assert_eq!(mock.connects(), 1);
    assert_eq!(pool.state().counters.dials, 1);
    assert!(mock.closed().is_empty());
}
