//! The guard's operations: `detach`, `mark_broken`, and `health` on return
//! and at checkout.

use connpool::Pooled;

use crate::support::*;

use super::{U, sorted};

// ---------------------------------------------------------------------------
// 12. The guard: detach, mark_broken, health
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn detach_frees_the_slot_and_the_pool_never_closes_it() {
    let (mock, pool) = U::pool(|b| b.max_open(1)).await;
    let c = ok(pool.get().await);
    let g = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );

    let raw = Pooled::detach(c);
    assert_eq!(raw.id, 1);
    check_counts(&pool, &[()]);
    assert_eq!(
        counts(&pool),
        Counts { open: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    let got = ok(join(g).await);
    assert_eq!(got.id, 2, "a fresh dial, not the detached conn");
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    drop(got);
    pool.close().await;
    assert_eq!(
        mock.closed(),
        vec![2],
        "the detached conn is not closed by the pool"
    );
    drop(raw);
}

#[tokio::test(start_paused = true)]
async fn mark_broken_closes_instead_of_reusing() {
    let (mock, pool) = U::pool(|b| b.max_open(1)).await;
    let mut c = ok(pool.get().await);
    assert!(!Pooled::is_marked_broken(&c));
    Pooled::mark_broken(&mut c);
    assert!(Pooled::is_marked_broken(&c));
    drop(c);
    check_counts(&pool, &[()]);
    assert_eq!(counts(&pool), ZERO);
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed_broken, 1);
    let c = ok(pool.get().await);
    assert_eq!(c.id, 2);
    assert_eq!(mock.connects(), 2);
}

#[tokio::test(start_paused = true)]
async fn broken_on_return_closes_the_conn() {
    let (mock, pool) = U::pool(|b| b.max_open(1)).await;
    let c = ok(pool.get().await);
    let g = spawn_get(&pool, ());
    settle().await;
    c.break_it();
    drop(c);
    check_counts(&pool, &[()]);
    // Not handed to the waiter: closed, and the waiter dials anew.
    assert_eq!(
        counts(&pool),
        Counts { open: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    let got = ok(join(g).await);
    assert_eq!(got.id, 2);
    assert_eq!(mock.closed(), vec![1]);
    let s = pool.state();
    assert_eq!(s.counters.closed_broken, 1);
    assert_eq!(s.counters.closed_total(), 1);
}

#[tokio::test(start_paused = true)]
async fn broken_idle_conns_are_skipped_at_checkout() {
    let (mock, pool) = U::pool(|b| b.max_open(3)).await;
    let c1 = ok(pool.get().await);
    let c2 = ok(pool.get().await);
    let c3 = ok(pool.get().await);
    let (f2, f3) = (c2.broken.clone(), c3.broken.clone());
    drop(c1);
    drop(c2);
    drop(c3);
    assert_eq!(counts(&pool), Counts { open: 3, idle: 3, ..ZERO });
    // The two newest idle conns die while idle.
    f2.store(true, std::sync::atomic::Ordering::SeqCst);
    f3.store(true, std::sync::atomic::Ordering::SeqCst);

    let c = ok(pool.get().await);
    assert_eq!(c.id, 1, "skipped ids 3 and 2");
    check_counts(&pool, &[()]);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    settle().await;
    assert_eq!(sorted(mock.closed()), vec![2, 3]);
    let s = pool.state();
    assert_eq!(s.counters.closed_broken, 2);
    assert_eq!(
        (s.counters.gets, s.counters.gets_waited),
        (4, 3),
        "one get, counted once"
    );
    assert_eq!(mock.connects(), 3);

    // All idle conns broken: the getter dials.
    c.break_it();
    let raw_flag = c.broken.clone();
    drop(c); // closed on return (broken)
    settle().await;
    assert_eq!(sorted(mock.closed()), vec![1, 2, 3]);
    drop(raw_flag);
    let d = ok(pool.get().await);
    assert_eq!(d.id, 4);
    let e = ok(pool.get().await);
    assert_eq!(e.id, 5);
    let flag = e.broken.clone();
    drop(e);
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
    drop(d);
    // Idle: [5 (broken), 4]; newest first is 4.
    let x = ok(pool.get().await);
    assert_eq!(x.id, 4);
    let y = ok(pool.get().await);
    assert_eq!(y.id, 6, "broken idle id 5 skipped, new dial");
    settle().await;
    assert_eq!(sorted(mock.closed()), vec![1, 2, 3, 5]);
    check_counts(&pool, &[()]);
    assert_eq!(counts(&pool), Counts { open: 2, lent: 2, ..ZERO });
}
