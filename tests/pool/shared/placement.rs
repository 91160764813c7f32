//! Which connection a borrower gets: a burst opens only the connections it
//! needs, the least loaded (or, with `fill_first`, the fullest) connection
//! with room is chosen, the limit is clamped by `max_borrowers` and
//! followed when the peer changes it, waiters at the key cap are served
//! in order, and a busy connection takes a new borrower only when no other
//! can come.

use connpool::Pooled;

use crate::support::{Counts, ZERO, check_counts, counts, join, ok, settle, spawn_get};

use super::{get_n, loads, shared_mock};

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

/// A busy shared connection (a borrower's transaction on it) takes no new
/// borrower while the key may dial: the getter gets a new connection. With
/// every connection busy and the key at its cap, a getter joins the least
/// loaded busy one rather than wait; a borrower's return gives its place
/// to a waiter only on a connection that is not busy, or when nothing else
/// can come.
#[tokio::test(start_paused = true)]
async fn a_busy_connection_takes_a_new_borrower_only_when_no_other_can_come() {
    use std::sync::atomic::Ordering::SeqCst;

    let mock = shared_mock(4);
    let pool = mock.core_pool(|b| b.max_open(2)).await;
    let a = ok(pool.get().await);
    a.busy.store(true, SeqCst);
    let b = ok(pool.get().await);
    assert_ne!(b.id, a.id, "a new connection, not the busy one");
    let c = ok(pool.get().await);
    assert_eq!(c.id, b.id, "the connection that is not busy");
    b.busy.store(true, SeqCst);
    let d = ok(pool.get().await);
    assert_eq!(d.id, a.id, "at the cap: the least loaded busy one");
    assert_eq!(mock.connects(), 2);
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 2, borrowers: 4, ..ZERO }
    );
    drop((a, b, c, d));
    settle().await;
    check_counts(&pool, &[()]);
}
