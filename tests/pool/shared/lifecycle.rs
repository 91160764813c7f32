//! A shared connection's life: idle time from its last borrower, lifetime,
//! uses, a broken connection drained, close and detach; and getters that
//! give up or whose dial fails leak no borrower.

use std::time::Duration;

use connpool::{Error, Pooled};
use tokio::time::Instant;

use crate::support;
use crate::support::{Counts, Step, ZERO, check_counts, counts, err, join, ok, settle, spawn_get};

use super::{get_n, loads, shared_mock};

#[tokio::test(start_paused = true)]
async fn idle_time_counts_from_the_last_borrower() {
    let mock = shared_mock(4);
    let pool = mock
        .core_pool(|b| b.max_connecting(1).idle_timeout(Duration::from_secs(10)))
        .await;
    let t0 = Instant::now();
    let mut held = get_n(&pool, 2).await;
    assert_eq!(loads(&held).len(), 1);
    support::at(t0 + Duration::from_secs(6)).await;
    drop(held.pop());
    support::at(t0 + Duration::from_secs(12)).await;
    drop(held.pop());
    settle().await;
    assert_eq!(pool.state().idle, 1);
    // Idle since t0 + 12 s: still open at t0 + 21.9 s, closed at t0 + 22 s.
    support::at(t0 + Duration::from_millis(21_900)).await;
    assert_eq!(pool.state().idle, 1);
    support::at(t0 + Duration::from_secs(22)).await;
    assert_eq!(pool.state().counters.closed_idle_timeout, 1);
    assert_eq!(pool.state().open, 0);
}

#[tokio::test(start_paused = true)]
async fn a_connection_past_its_lifetime_drains() {
    let mock = shared_mock(4);
    let pool = mock
        .core_pool(|b| b.max_lifetime(Duration::from_secs(10)).jitter(0.0))
        .await;
    let first = ok(pool.get().await);
    tokio::time::advance(Duration::from_secs(11)).await;
    // Expired: no new borrower; a new connection serves the next one.
    let second = ok(pool.get().await);
    assert_ne!(second.id, first.id);
    assert_eq!(pool.state().lent, 2);
    assert_eq!(pool.state().counters.closed_lifetime, 0, "in use");
    drop(first);
    settle().await;
    assert_eq!(pool.state().counters.closed_lifetime, 1);
    assert_eq!(mock.closed(), vec![1]);
    check_counts(&pool, &[()]);
}

/// A return that leaves the connection borrowers does not judge its
/// lifetime: the next checkout does, and lends it to nobody new.
#[tokio::test(start_paused = true)]
async fn a_connection_past_its_lifetime_takes_no_borrower_after_a_return() {
    let mock = shared_mock(4);
    let pool = mock
        .core_pool(|b| {
            b.max_connecting(1)
                .max_lifetime(Duration::from_secs(10))
                .jitter(0.0)
        })
        .await;
    let mut held = get_n(&pool, 2).await;
    assert_eq!(loads(&held).len(), 1);
    tokio::time::advance(Duration::from_secs(11)).await;
    drop(held.pop());
    settle().await;
    assert_eq!(pool.state().counters.closed_lifetime, 0, "in use");
    let next = ok(pool.get().await);
    assert_ne!(
        next.id, held[0].id,
        "the expired connection took a borrower"
    );
    drop(held);
    settle().await;
    assert_eq!(pool.state().counters.closed_lifetime, 1);
    assert_eq!(mock.closed(), vec![1]);
    drop(next);
    check_counts(&pool, &[()]);
}

#[tokio::test(start_paused = true)]
async fn max_uses_counts_borrowers() {
    let mock = shared_mock(10);
    let pool = mock.core_pool(|b| b.max_connecting(1).max_uses(3)).await;
    let mut held = get_n(&pool, 3).await;
    assert_eq!(loads(&held).len(), 1);
    assert_eq!(Pooled::uses(&held[2]), 3);
    held.push(ok(pool.get().await));
    assert_eq!(held[3].id, 2, "the first one had its uses");
    held.truncate(2);
    settle().await;
    assert_eq!(pool.state().counters.closed_uses, 0);
    held.truncate(0);
    settle().await;
    assert_eq!(pool.state().counters.closed_uses, 1);
    assert_eq!(mock.closed(), vec![1]);
}

#[tokio::test(start_paused = true)]
async fn a_broken_connection_drains_and_closes_after_its_last_borrower() {
    let mock = shared_mock(4);
    let pool = mock.core_pool(|b| b.max_connecting(1)).await;
    let mut held = get_n(&pool, 3).await;
    assert_eq!(loads(&held).len(), 1);
    // One borrower saw it fail.
    let mut c = held.pop().unwrap();
    Pooled::mark_broken(&mut c);
    drop(c);
    settle().await;
    // No new borrower for it, though it has room.
    let fresh = ok(pool.get().await);
    assert_eq!(fresh.id, 2);
    assert_eq!(pool.state().counters.closed_broken, 0, "still in use");
    drop(held);
    settle().await;
    assert_eq!(pool.state().counters.closed_broken, 1);
    assert_eq!(mock.closed(), vec![1]);
    // `health` on a returning handle drains it the same way.
    let other = ok(pool.get().await);
    assert_eq!(other.id, 2);
    other.break_it();
    drop(other);
    settle().await;
    let next = ok(pool.get().await);
    assert_eq!(next.id, 3, "a broken connection takes no new borrower");
    drop(fresh);
    settle().await;
    assert_eq!(mock.closed(), vec![1, 2]);
    check_counts(&pool, &[()]);
}

#[tokio::test(start_paused = true)]
async fn cancelled_getters_leak_no_borrower() {
    let mock = shared_mock(2);
    let pool = mock
        .core_pool(|b| {
            b.max_open_per_key(2)
                .checkout_timeout(Duration::from_secs(1))
        })
        .await;
    let mut held = get_n(&pool, 4).await;
    assert_eq!(mock.connects(), 2);
    // Waiters at the cap: some aborted, some timed out.
    let waiting: Vec<_> = (0..6).map(|_| spawn_get(&pool, ())).collect();
    settle().await;
    assert_eq!(pool.state().waiting, 6);
    for w in &waiting[..3] {
        w.abort();
    }
    settle().await;
    assert_eq!(pool.state().waiting, 3);
    // A handle served to a waiter that is aborted before it picks it up:
    // the place goes back.
    drop(held.pop());
    waiting[3].abort();
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 2, borrowers: 4, waiting: 1, ..ZERO }
    );
    // The last one times out.
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    let mut outcomes = Vec::new();
    for w in waiting {
        if let Ok(r) = w.await {
            outcomes.push(r);
        }
    }
    let served: Vec<_> = outcomes.into_iter().map(|r| r.map(|c| c.id)).collect();
    assert_eq!(served.len(), 2, "{served:?}");
    assert!(served[0].is_ok(), "{served:?}");
    assert!(
        matches!(served[1], Err(Error::Timeout { .. })),
        "{served:?}"
    );
    drop(held);
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 2, idle: 2, ..ZERO });
    check_counts(&pool, &[()]);
}

#[tokio::test(start_paused = true)]
async fn close_waits_for_the_borrowers_of_shared_connections() {
    let mock = shared_mock(4);
    let pool = mock.core_pool(|b| b.max_connecting(1)).await;
    let mut held = get_n(&pool, 3).await;
    let closer = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.close().await })
    };
    settle().await;
    assert!(!closer.is_finished());
    assert!(matches!(err(pool.get().await), Error::Closed));
    held.truncate(1);
    settle().await;
    assert!(!closer.is_finished());
    assert!(mock.closed().is_empty());
    held.clear();
    settle().await;
    assert!(closer.is_finished());
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed_pool_closed, 1);
}

#[tokio::test(start_paused = true)]
async fn detaching_a_handle_keeps_the_connection_pooled() {
    let mock = shared_mock(4);
    let pool = mock.core_pool(|b| b.max_connecting(1)).await;
    let held = get_n(&pool, 2).await;
    let mut held = held.into_iter();
    let raw = Pooled::detach(held.next().unwrap());
    assert_eq!(raw.id, 1);
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, borrowers: 1, ..ZERO }
    );
    drop(held);
    settle().await;
    assert_eq!(pool.state().idle, 1, "still the pool's");
    assert!(mock.closed().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_dial_fails_its_getter_and_the_next_dial_serves_the_rest() {
    let mock = shared_mock(4);
    let pool = mock.core_pool(|b| b.max_connecting(1)).await;
    // A first connection teaches the pool the key lends 4 at once.
    drop(ok(pool.get().await));
    settle().await;
    mock.conn(1).break_it();
    mock.push((), Step::Fail("refused"));
    let tasks: Vec<_> = (0..3).map(|_| spawn_get(&pool, ())).collect();
    settle().await;
    let results: Vec<_> = {
        let mut v = Vec::new();
        for t in tasks {
            v.push(join(t).await.map(|c| c.id).ok());
        }
        v
    };
    // The broken idle connection was closed; the dial started for the first
    // getter failed and fails it; the others were covered by that dial, and
    // a new dial serves them.
    assert_eq!(results, [None, Some(2), Some(2)]);
    assert_eq!(mock.connects(), 3);
}
