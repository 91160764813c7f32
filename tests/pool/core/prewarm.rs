//! Pre-warming with `initial`/`initial_for`, and the checkout order of
//! returned connections.

use connpool::{ConnectError, Error};
use tokio::time::Instant;

use crate::support;
use crate::support::*;

use super::{M, U, secs, sorted};

// ---------------------------------------------------------------------------
// 14. Pre-warming
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn initial_for_prewarms_exactly_n_per_key() {
    let (mock, pool) = M::pool(|b| b.initial_for(1, 2).initial_for(2, 3)).await;
    assert_eq!(mock.connects(), 5);
    check_counts(&pool, &[1, 2]);
    assert_eq!(counts(&pool), Counts { open: 5, idle: 5, ..ZERO });
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 2, idle: 2, ..ZERO })
    );
    assert_eq!(
        key_counts(&pool, &2),
        Some(Counts { open: 3, idle: 3, ..ZERO })
    );
    let s = pool.state();
    assert_eq!((s.counters.dials, s.counters.gets), (5, 0));
    assert_eq!(s.keys, 2);
    let a = ok(pool.get_for(&1).await);
    let b = ok(pool.get_for(&1).await);
    assert_eq!(a.key, 1);
    assert_eq!(b.key, 1);
    assert_eq!(mock.connects(), 5, "served from the pre-warmed conns");
    assert_eq!(pool.state().counters.gets_waited, 0);
}

#[tokio::test(start_paused = true)]
async fn initial_prewarms_a_single_destination_pool() {
    let (mock, pool) = U::pool(|b| b.initial(3)).await;
    assert_eq!(mock.connects(), 3);
    assert_eq!(counts(&pool), Counts { open: 3, idle: 3, ..ZERO });
    check_counts(&pool, &[()]);
}

#[tokio::test(start_paused = true)]
async fn initial_failure_fails_build_and_closes_what_was_opened() {
    let mock = M::new();
    mock.push(1, Step::Ok);
    mock.push(1, Step::Fail("boom"));
    mock.push(1, Step::Ok);
    let r = support::core_builder(mock.clone())
        .initial_for(1, 3)
        .build()
        .await;
    match r {
        Err(Error::Connect(ConnectError::Manager(e))) => assert_eq!(e.0, "boom"),
        Err(other) => panic!("expected Error::Connect(Manager), got {other:?}"),
        Ok(_) => panic!("expected the build to fail"),
    }
    assert_eq!(mock.connects(), 3);
    assert_eq!(
        sorted(mock.closed()),
        vec![1, 2],
        "both opened conns closed"
    );
}

#[tokio::test(start_paused = true)]
async fn initial_timeout_fails_build_with_connect_timeout() {
    let mock = U::new();
    mock.push((), Step::Ok);
    mock.push((), Step::Hang);
    let start = Instant::now();
    let r = support::core_builder(mock.clone())
        .connect_timeout(secs(1))
        .initial(2)
        .build()
        .await;
    assert_eq!(start.elapsed(), secs(1));
    match r {
        Err(Error::Connect(ConnectError::Timeout(d))) => assert_eq!(d, secs(1)),
        Err(other) => panic!("expected Error::Connect(Timeout), got {other:?}"),
        Ok(_) => panic!("expected the build to fail"),
    }
    assert_eq!(mock.closed(), vec![1]);
}

/// A pre-warm dial that panics is a failed dial (`ConnectError::Panicked`,
/// as for every other dial), not a panic of `build`.
#[tokio::test(start_paused = true)]
async fn initial_panicking_dial_fails_build_with_panicked() {
    let mock = U::new();
    mock.push((), Step::Ok);
    mock.push((), Step::Panic);
    let r = support::core_builder(mock.clone()).initial(2).build().await;
    match r {
        Err(Error::Connect(ConnectError::Panicked(_))) => {}
        Err(other) => panic!("expected Error::Connect(Panicked), got {other:?}"),
        Ok(_) => panic!("expected the build to fail"),
    }
    assert_eq!(mock.closed(), vec![1]);
}

/// `initial_for(key, 0)` pre-warms nothing and leaves no trace of the key.
#[tokio::test(start_paused = true)]
async fn initial_for_zero_registers_no_key() {
    let (mock, pool) = M::pool(|b| b.initial_for(1, 1).initial_for(2, 0)).await;
    assert_eq!(mock.connects(), 1);
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );
    assert_eq!(
        key_counts(&pool, &2),
        None,
        "key 2 has no connection and no waiter"
    );
    assert_eq!(pool.state().keys, 1);
}

/// Checkout takes the most recently returned connection first (LIFO),
/// whatever the order they were returned in.
#[tokio::test(start_paused = true)]
async fn checkout_takes_the_most_recently_returned_first() {
    for n in [3, 6] {
        let (_, pool) = U::pool(|b| b.max_open(n).initial(n)).await;
        let mut lent = Vec::new();
        for _ in 0..n {
            lent.push(ok(pool.get().await));
        }
        let returned: Vec<u64> = lent.iter().map(|c| c.id).collect();
        for c in lent {
            drop(c);
        }
        assert_eq!(pool.state().idle, n);
        let mut got = Vec::new();
        for _ in 0..n {
            got.push(ok(pool.get().await));
        }
        let order: Vec<u64> = got.iter().map(|c| c.id).collect();
        let newest_first: Vec<u64> = returned.into_iter().rev().collect();
        assert_eq!(order, newest_first, "{n} returned");
        check_counts(&pool, &[()]);
    }
}
