//! Shared lending: connections that several borrowers hold at once (the
//! manager answers `Lending::shared(n)`), with the mock manager and the
//! paused clock.

use std::collections::HashMap;
use std::time::Duration;

use connpool::{CloseReason, Error, HealthCheck, Pool, Pooled};
use tokio::time::Instant;

use crate::support;
use crate::support::{
    Counts, Mock, Step, ZERO, check_counts, closed_for, counts, err, join, ok, settle, spawn_get,
};

type M = Mock<()>;

/// A single-destination mock whose connections take `limit` borrowers.
/// (Until a key's first connection is up the pool cannot know it is
/// shared: tests that want one connection for a burst use `max_connecting(1)`.)
fn shared_mock(limit: usize) -> M {
    let mock = M::new();
    mock.share(limit);
    mock
}

/// Connection id → handles held.
fn loads(held: &[Pooled<M>]) -> HashMap<u64, usize> {
    let mut loads = HashMap::new();
    for c in held {
        *loads.entry(c.id).or_default() += 1;
    }
    loads
}

/// `n` getters, all served.
async fn get_n(pool: &Pool<M>, n: usize) -> Vec<Pooled<'_, M>> {
    let tasks: Vec<_> = (0..n).map(|_| spawn_get(pool, ())).collect();
    settle().await;
    let mut held = Vec::new();
    for t in tasks {
        held.push(ok(join(t).await));
    }
    held
}

#[tokio::test(start_paused = true)]
async fn a_burst_opens_only_the_connections_it_needs() {
    // 20 concurrent getters, 8 borrowers per connection: 3 connections.
    let mock = shared_mock(8);
    let pool = mock
        .core_pool(|b| b.max_open_per_key(10).max_connecting(2))
        .await;
    let held = get_n(&pool, 20).await;
    assert_eq!(mock.connects(), 3, "ceil(20 / 8) connections");
    let loads = loads(&held);
    assert_eq!(loads.len(), 3);
    assert!(loads.values().all(|&n| n <= 8), "{loads:?}");
    assert!(held.iter().all(Pooled::is_shared));
    assert_eq!(
        counts(&pool),
        Counts { open: 3, lent: 3, borrowers: 20, ..ZERO }
    );
    check_counts(&pool, &[()]);
    drop(held);
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 3, idle: 3, ..ZERO });
}

#[tokio::test(start_paused = true)]
async fn a_limit_of_one_lends_exclusively() {
    // A peer allowing one stream: K getters get min(K, per-key cap)
    // connections, the rest wait, exactly as with exclusive lending.
    let mock = shared_mock(1);
    let pool = mock.core_pool(|b| b.max_open_per_key(3)).await;
    let tasks: Vec<_> = (0..5).map(|_| spawn_get(&pool, ())).collect();
    settle().await;
    assert_eq!(mock.connects(), 3);
    assert_eq!(
        counts(&pool),
        Counts { open: 3, lent: 3, waiting: 2, ..ZERO }
    );
    let mut done = Vec::new();
    let mut waiting = Vec::new();
    for t in tasks {
        if t.is_finished() {
            done.push(ok(join(t).await));
        } else {
            waiting.push(t);
        }
    }
    assert!(done.iter().all(|c| !Pooled::is_shared(c)));
    assert_eq!(loads(&done).len(), 3, "one borrower per connection");
    drop(done.pop());
    settle().await;
    assert!(waiting.iter().filter(|t| t.is_finished()).count() == 1);
}

#[tokio::test(start_paused = true)]
async fn the_least_loaded_connection_is_chosen_and_an_unborrowed_one_rests_idle() {
    let mock = shared_mock(4);
    let pool = mock.core_pool(|b| b.initial(2)).await;
    let mut held = get_n(&pool, 2).await;
    // Both idle connections were taken (load 0 beats load 1).
    assert_eq!(loads(&held).len(), 2);
    let (a, b) = (held[0].id, held[1].id);
    // Load a to 3 (b has 1): the next borrower goes to b.
    held.extend(get_n(&pool, 2).await);
    let l = loads(&held);
    assert_eq!((l[&a], l[&b]), (2, 2), "{l:?}");
    held.push(ok(pool.get().await));
    let third = held.last().unwrap().id;
    // Give back every handle of the other one: it rests idle.
    let other = if third == a { b } else { a };
    held.retain(|c| c.id != other);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, idle: 1, lent: 1, borrowers: 3, ..ZERO }
    );
    // Idle (load 0) is preferred to the loaded connection.
    let c = ok(pool.get().await);
    assert_eq!(c.id, other);
    assert_eq!(mock.connects(), 2);
    check_counts(&pool, &[()]);
}

/// `Lending::fill_first`: the fullest connection with room takes the next
/// borrower, an idle one only when every connection with borrowers is
/// full; a connection that loses its borrowers rests idle.
#[tokio::test(start_paused = true)]
async fn a_key_that_fills_first_keeps_an_idle_connection_spare() {
    let mock = shared_mock(4);
    mock.fill_first();
    let pool = mock.core_pool(|b| b.initial(2)).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(ok(pool.get().await));
    }
    // All four on one connection; the other rests idle.
    let l = loads(&held);
    assert_eq!(l.len(), 1, "{l:?}");
    let a = held[0].id;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, idle: 1, lent: 1, borrowers: 4, ..ZERO }
    );
    // Room again on `a`: it takes the next borrower, not the idle one.
    drop(held.pop());
    settle().await;
    held.push(ok(pool.get().await));
    assert_eq!(held.last().unwrap().id, a);
    // `a` is full: the idle connection is taken.
    held.push(ok(pool.get().await));
    let b = held.last().unwrap().id;
    assert_ne!(b, a);
    // Both have borrowers, `a` 3 of 4 and `b` 1 of 4: the fullest with
    // room, `a`, is chosen, then `b` once `a` is full.
    let i = held.iter().position(|c| c.id == a).unwrap();
    drop(held.remove(i));
    settle().await;
    held.push(ok(pool.get().await));
    assert_eq!(held.last().unwrap().id, a);
    held.push(ok(pool.get().await));
    let l = loads(&held);
    assert_eq!((l[&a], l[&b]), (4, 2), "{l:?}");
    // Every handle of `b` back: it rests idle, and `a`, with room again,
    // takes the next borrower.
    held.retain(|c| c.id != b);
    drop(held.pop());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, idle: 1, lent: 1, borrowers: 3, ..ZERO }
    );
    let c = ok(pool.get().await);
    assert_eq!(c.id, a);
    assert_eq!(mock.connects(), 2);
    drop((c, held));
    settle().await;
    check_counts(&pool, &[()]);
}

#[tokio::test(start_paused = true)]
async fn the_limit_is_clamped_by_max_borrowers() {
    // A peer advertising a huge stream limit still fans out.
    let mock = shared_mock(1_000_000);
    let pool = mock
        .core_pool(|b| b.max_borrowers(5).max_connecting(1))
        .await;
    let held = get_n(&pool, 11).await;
    assert_eq!(mock.connects(), 3);
    let mut l: Vec<_> = loads(&held).into_values().collect();
    l.sort();
    assert_eq!(l, vec![1, 5, 5]);
}

#[tokio::test(start_paused = true)]
async fn waiters_at_the_key_cap_are_served_in_order_as_borrowers_return() {
    let mock = shared_mock(2);
    let pool = mock.core_pool(|b| b.max_open_per_key(1)).await;
    let mut held = get_n(&pool, 2).await;
    let waiting: Vec<_> = (0..3).map(|_| spawn_get(&pool, ())).collect();
    settle().await;
    assert_eq!(pool.state().waiting, 3);
    assert_eq!(mock.connects(), 1, "the key is at its cap");
    for (i, w) in waiting.into_iter().enumerate() {
        drop(held.remove(0));
        settle().await;
        assert!(w.is_finished(), "waiter {i} served by the freed place");
        let c = ok(join(w).await);
        assert_eq!(c.id, 1);
        held.push(c);
        assert_eq!(pool.state().waiting, 2 - i);
    }
    check_counts(&pool, &[()]);
}

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
    assert_eq!(closed_for(&pool, CloseReason::IdleTimeout), 1);
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
    assert_eq!(closed_for(&pool, CloseReason::Lifetime), 0, "in use");
    drop(first);
    settle().await;
    assert_eq!(closed_for(&pool, CloseReason::Lifetime), 1);
    assert_eq!(mock.closed(), vec![1]);
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
    assert_eq!(closed_for(&pool, CloseReason::Uses), 0);
    held.truncate(0);
    settle().await;
    assert_eq!(closed_for(&pool, CloseReason::Uses), 1);
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
    assert_eq!(closed_for(&pool, CloseReason::Broken), 0, "still in use");
    drop(held);
    settle().await;
    assert_eq!(closed_for(&pool, CloseReason::Broken), 1);
    assert_eq!(mock.closed(), vec![1]);
    // `is_broken` on a returning handle drains it the same way.
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
async fn an_idle_shared_connection_is_health_checked_and_a_busy_one_is_not() {
    let mock = shared_mock(4);
    let pool = mock
        .core_pool(|b| b.health_check(HealthCheck::Always))
        .await;
    let a = ok(pool.get().await); // dialed: not pinged
    let b = ok(pool.get().await); // joins a busy connection: not pinged
    assert_eq!((a.id, b.id), (1, 1));
    assert!(mock.pings().is_empty());
    drop((a, b));
    settle().await;
    // Idle now: pinged before it is lent; dead, so closed and replaced.
    mock.conn(1).kill();
    let c = ok(pool.get().await);
    assert_eq!(c.id, 2);
    assert_eq!(mock.pings().len(), 1);
    assert_eq!(closed_for(&pool, CloseReason::HealthCheck), 1);
}

#[tokio::test(start_paused = true)]
async fn keepalive_pings_a_shared_connection_only_once_it_is_idle() {
    let mock = shared_mock(4);
    let pool = mock
        .core_pool(|b| {
            b.max_connecting(1)
                .keepalive_interval(Duration::from_secs(30))
                .jitter(0.0)
        })
        .await;
    let t0 = Instant::now();
    let held = get_n(&pool, 2).await;
    support::at(t0 + Duration::from_secs(90)).await;
    assert!(mock.pings().is_empty(), "busy connections are not pinged");
    drop(held);
    settle().await;
    support::at(t0 + Duration::from_secs(120)).await;
    assert_eq!(mock.pings().len(), 1);
    assert_eq!(mock.pings()[0].1, t0 + Duration::from_secs(120));
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
    assert_eq!(closed_for(&pool, CloseReason::PoolClosed), 1);
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

// HealthCheck::Always: a shared connection taken from the idle set takes no
// other borrower while its first borrower's health check is still running.
// Here its ping hangs (a half-open peer): a second getter joining it would
// be handed it at once, without a ping, and its request would fail. (The
// pool once did that; `reliability/faults.rs`,
// `grpc_shared_health_check_always_never_lends_a_severed_connection`, saw it
// over real gRPC: 32 of 64 callers on severed connections.)
#[tokio::test(start_paused = true)]
async fn always_lends_no_shared_connection_before_its_check_passed() {
    let mock = shared_mock(2);
    let pool = mock
        .core_pool(|b| {
            b.health_check(HealthCheck::Always)
                .ping_timeout(Duration::from_secs(1))
        })
        .await;
    let first = ok(pool.get().await);
    assert_eq!(first.id, 1);
    drop(first);
    settle().await;
    assert_eq!(pool.state().idle, 1);
    mock.conn(1).mute(); // its ping never answers

    let a = spawn_get(&pool, ());
    settle().await;
    assert_eq!(mock.pings().len(), 1, "a took it from idle and pings it");
    assert!(!a.is_finished());
    let b = spawn_get(&pool, ());
    settle().await;
    if b.is_finished() {
        let b = ok(join(b).await);
        assert_ne!(
            b.id,
            1,
            "handed connection 1 while its health check was in flight (pings: {:?})",
            mock.pings()
        );
    }
    a.abort();
}

/// A getter that arrives while a shared connection is under its first
/// borrower's health check waits for the check, then joins it unpinged.
#[tokio::test(start_paused = true)]
async fn a_getter_waits_for_a_health_check_and_then_joins() {
    let mock = shared_mock(2);
    let pool = mock
        .core_pool(|b| b.health_check(HealthCheck::Always).max_open_per_key(1))
        .await;
    drop(ok(pool.get().await));
    settle().await;
    mock.delay_pings(Duration::from_secs(1));
    let t0 = Instant::now();
    let a = spawn_get(&pool, ());
    settle().await;
    let b = spawn_get(&pool, ());
    settle().await;
    assert!(
        !a.is_finished() && !b.is_finished(),
        "both wait for the check"
    );
    assert_eq!(pool.state().waiting, 1, "b waits; it did not join");
    support::at(t0 + Duration::from_secs(1)).await;
    let (a, b) = (ok(join(a).await), ok(join(b).await));
    assert_eq!((a.id, b.id), (1, 1));
    assert_eq!(mock.pings().len(), 1, "only the idle checkout was pinged");
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, borrowers: 2, ..ZERO }
    );
}

/// A pool whose one shared connection (up to 4 borrowers) is idle, pinged
/// before every lend; a ping takes 10 ms.
async fn idle_and_checked_in_10ms() -> (M, Pool<M>) {
    let mock = shared_mock(4);
    let pool = mock
        .core_pool(|b| b.health_check(HealthCheck::Always))
        .await;
    drop(ok(pool.get().await));
    settle().await;
    mock.delay_pings(Duration::from_millis(10));
    (mock, pool)
}

/// Getters that arrive while a shared connection is under its health check
/// dial nothing (the connection will serve them once the check passes):
/// a burst after an idle spell makes no second connection.
#[tokio::test(start_paused = true)]
async fn a_health_check_in_flight_covers_the_getters_behind_it() {
    let (mock, pool) = idle_and_checked_in_10ms().await;
    let getters: Vec<_> = (0..4).map(|_| spawn_get(&pool, ())).collect();
    settle().await;
    assert_eq!(
        pool.state().dialing,
        0,
        "nothing dialed while the check runs"
    );
    let mut held = Vec::new();
    for g in getters {
        held.push(ok(join(g).await));
    }
    assert!(held.iter().all(|c| c.id == 1), "{:?}", loads(&held));
    assert_eq!(mock.connects(), 1);
    assert_eq!(mock.pings().len(), 1);
    drop(held);
    settle().await;
    check_counts(&pool, &[()]);
}

/// A health check that fails under the getters it covered starts the dial
/// that serves them: none waits past the check.
#[tokio::test(start_paused = true)]
async fn a_failed_health_check_dials_for_the_getters_it_covered() {
    let (mock, pool) = idle_and_checked_in_10ms().await;
    mock.conn(1).kill();
    let t0 = Instant::now();
    let getters: Vec<_> = (0..3).map(|_| spawn_get(&pool, ())).collect();
    let mut held = Vec::new();
    for g in getters {
        held.push(ok(join(g).await));
    }
    assert!(held.iter().all(|c| c.id == 2), "{:?}", loads(&held));
    assert_eq!(
        t0.elapsed(),
        Duration::from_millis(10),
        "served after the check"
    );
    assert_eq!(mock.connects(), 2);
    drop(held);
    settle().await;
    check_counts(&pool, &[()]);
}

/// The manager is asked again when a handle comes back: a peer that lowers
/// its limit (a new SETTINGS) gets no more borrowers than it allows now, and
/// one that lowers it to 1 is lent exclusively once it is free.
#[tokio::test(start_paused = true)]
async fn a_limit_changed_by_the_peer_is_followed() {
    let mock = shared_mock(4);
    let pool = mock.core_pool(|b| b.max_connecting(1)).await;
    let mut held = get_n(&pool, 4).await;
    assert_eq!(loads(&held).len(), 1);
    mock.share(2);
    held.truncate(1); // three handles back: the limit is now 2
    settle().await;
    held.push(ok(pool.get().await)); // joins: 2 of 2
    held.push(ok(pool.get().await)); // no room: a new connection
    let l = loads(&held);
    assert_eq!((l[&1], l[&2]), (2, 1), "{l:?}");
    // Down to 1: connection 1 is lent exclusively once its borrowers left.
    mock.share(1);
    held.retain(|c| c.id != 1);
    settle().await;
    let c = ok(pool.get().await);
    assert_eq!(c.id, 1, "idle, least loaded");
    assert!(!Pooled::is_shared(&c), "lent exclusively now");
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 2, borrowers: 1, ..ZERO }
    );
    drop((c, held));
    settle().await;
    check_counts(&pool, &[()]);
    assert_eq!(pool.state().idle, 2);
}
