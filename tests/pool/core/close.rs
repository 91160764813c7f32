//! `close` and `close_timeout`: gets failed, waiters woken, idle closed, lent
//! and dialing connections waited for.

use std::time::Duration;

use connpool::Error;
use tokio::time::Instant;

use crate::support::*;

use super::{M, U, secs};

// ---------------------------------------------------------------------------
// 11. close
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn close_fails_gets_wakes_waiters_closes_idle_and_waits_for_lent() {
    let keys = [1, 2];
    let (mock, pool) = M::pool(|b| b.max_open(3).max_open_per_key(2)).await;
    let a = ok(pool.get_for(&1).await);
    let b = ok(pool.get_for(&1).await);
    let c = ok(pool.get_for(&2).await);
    assert_eq!((a.id, b.id, c.id), (1, 2, 3));
    drop(c);
    let w = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 3, idle: 1, lent: 2, waiting: 1, ..ZERO }
    );
    check_counts(&pool, &keys);
    let gets_before = pool.state().counters.gets;

    let p = pool.clone();
    let closer = tokio::spawn(async move { p.close().await });
    settle().await;
    assert!(pool.is_closed());
    assert!(matches!(err(join(w).await), Error::Closed));
    assert_eq!(
        mock.closed(),
        vec![3],
        "idle conn closed through the manager"
    );
    assert!(!closer.is_finished(), "two conns are still lent");
    let s = pool.state();
    assert!(s.closed);
    assert_eq!(Counts::from(&s), Counts { open: 2, lent: 2, ..ZERO });
    assert_eq!(s.closing, 0);
    assert_eq!(s.counters.closed_pool_closed, 1);
    check_counts(&pool, &keys);

    assert!(matches!(err(pool.get_for(&1).await), Error::Closed));
    assert!(matches!(err(pool.get_for(&3).await), Error::Closed));
    assert_eq!(
        pool.state().counters.gets,
        gets_before,
        "closed gets not counted"
    );
    assert_eq!(key_counts(&pool, &3), None);

    drop(a);
    check_counts(&pool, &keys);
    settle().await;
    assert_eq!(mock.closed(), vec![3, 1]);
    assert!(!closer.is_finished());
    drop(b);
    check_counts(&pool, &keys);
    settle().await;
    assert_eq!(mock.closed(), vec![3, 1, 2]);
    assert!(closer.is_finished());
    join(closer).await;
    let s = pool.state();
    assert_eq!(Counts::from(&s), ZERO);
    assert_eq!(s.closing, 0);
    assert_eq!(s.keys, 0);
    assert_eq!(s.counters.closed_pool_closed, 3);
    assert_eq!(mock.connects(), 3);
    // Closing again resolves at once.
    pool.close().await;
}

#[tokio::test(start_paused = true)]
async fn close_timeout_reports_the_lent_conn() {
    let (mock, pool) = U::pool(|b| b.max_open(2)).await;
    let c = ok(pool.get().await);
    let d = ok(pool.get().await);
    drop(d);
    let start = Instant::now();
    let r = pool.close_timeout(secs(5)).await;
    assert_eq!(start.elapsed(), secs(5));
    let e = r.expect_err("close timed out");
    assert!(
        matches!(e, Error::CloseTimeout { open: 1, closing: 0, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "pool close timed out with 1 connection(s) open and 0 closing"
    );
    assert_eq!(mock.closed(), vec![2]);
    check_counts(&pool, &[()]);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });

    drop(c);
    settle().await;
    assert_eq!(mock.closed(), vec![2, 1]);
    let start = Instant::now();
    assert!(pool.close_timeout(secs(5)).await.is_ok());
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(pool.state().closing, 0);
}

/// Dials in flight at close: a success is closed when it lands, a failure
/// just ends; close resolves after both.
#[tokio::test(start_paused = true)]
async fn close_closes_a_dial_in_flight_when_it_completes() {
    let (mock, pool) = U::pool(|b| b.max_open(2)).await;
    let gate_a = mock.gate(());
    let gate_b = mock.gate(());
    let g1 = spawn_get(&pool, ());
    settle().await;
    let g2 = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, dialing: 2, waiting: 2, ..ZERO }
    );

    let p = pool.clone();
    let closer = tokio::spawn(async move { p.close().await });
    settle().await;
    assert!(matches!(err(join(g1).await), Error::Closed));
    assert!(matches!(err(join(g2).await), Error::Closed));
    assert!(!closer.is_finished());
    assert_eq!(counts(&pool), Counts { open: 2, dialing: 2, ..ZERO });
    check_counts(&pool, &[()]);

    gate_a.succeed();
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(counts(&pool), Counts { open: 1, dialing: 1, ..ZERO });
    assert!(!closer.is_finished());
    check_counts(&pool, &[()]);

    gate_b.fail("late");
    settle().await;
    assert!(closer.is_finished());
    join(closer).await;
    assert_eq!(mock.closed(), vec![1]);
    let s = pool.state();
    assert_eq!(Counts::from(&s), ZERO);
    assert_eq!(s.closing, 0);
    assert_eq!(s.keys, 0);
    assert_eq!(s.counters.closed_pool_closed, 1);
    assert_eq!(s.counters.dial_failures, 1);
}

/// A closed pool keeps no key, not even one `min_idle` kept warm: the
/// pool's memory of a key is for getters to come.
#[tokio::test(start_paused = true)]
async fn a_closed_pool_forgets_a_key_kept_warm() {
    let (_mock, pool) = M::pool(|b| b.max_open(4).min_idle_for(1, 2)).await;
    settle().await;
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 2, idle: 2, ..ZERO })
    );
    pool.close().await;
    assert_eq!(pool.state().keys, 0);
    assert_eq!(key_counts(&pool, &1), None);
}
