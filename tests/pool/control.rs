//! Runtime control under tokio's paused clock: `resize` (growing serves
//! the getters waiting for a dial slot; shrinking closes idle connections
//! first and lent ones as they come back; invalid caps are refused with the
//! setting named and change nothing), `close_key` and `retain` (idle now,
//! lent on return, dials in flight on arrival, waiters served by new
//! dials, `min_idle` refilled), `close_idle`, and `min_idle` per key.

use connpool::Error;

use crate::support::*;

type M = Mock<u32>;

/// Growing `max_open` gives the getter waiting at the old cap its dial.
#[tokio::test(start_paused = true)]
async fn growing_the_cap_dials_for_a_getter_waiting_at_it() {
    let (mock, pool) = M::pool(|b| b.max_open(1)).await;
    let a = ok(pool.get_for(&1).await);
    let w = spawn_get(&pool, 2);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );
    let limits = pool
        .limits()
        .max_open(2)
        .max_open_per_key(2)
        .max_idle(2)
        .max_idle_per_key(2);
    pool.resize(limits).unwrap();
    settle().await;
    let b = ok(join(w).await);
    assert_eq!((mock.connects(), b.id), (2, 2));
    assert_eq!(counts(&pool), Counts { open: 2, lent: 2, ..ZERO });
    assert_eq!(pool.limits(), limits);
    drop((a, b));
}

/// Shrinking closes the idle connections over the new caps at once, and
/// lent ones over the open cap as they come back, even with a getter
/// waiting; the getter is served once the pool is under the cap.
#[tokio::test(start_paused = true)]
async fn shrinking_closes_idle_first_and_lent_ones_on_return() {
    let (mock, pool) = M::pool(|b| b.max_open(4)).await;
    let c: Vec<_> = [
        pool.get_for(&1).await,
        pool.get_for(&1).await,
        pool.get_for(&1).await,
        pool.get_for(&1).await,
    ]
    .into_iter()
    .map(ok)
    .collect();
    let mut c = c.into_iter();
    let (a, b) = (c.next().unwrap(), c.next().unwrap());
    drop(c); // two back: idle
    assert_eq!(counts(&pool), Counts { open: 4, idle: 2, lent: 2, ..ZERO });

    let one = pool
        .limits()
        .max_open(1)
        .max_open_per_key(1)
        .max_idle(1)
        .max_idle_per_key(1)
        .min_idle(0);
    pool.resize(one).unwrap();
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 2, lent: 2, ..ZERO });
    assert_eq!(pool.state().counters.closed_retired, 2);

    let w = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 2, waiting: 1, ..ZERO }
    );
    assert_eq!(mock.connects(), 4, "no dial over the cap");
    drop(a); // over the cap: closed, not handed over
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );
    assert_eq!(pool.state().counters.closed_retired, 3);
    let b_id = b.id;
    drop(b); // at the cap: handed to the getter
    settle().await;
    let got = ok(join(w).await);
    assert_eq!(got.id, b_id);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    drop(got);
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    assert_eq!(mock.connects(), 4);
}

/// Shrinking an idle cap alone closes the oldest idle connections over it.
#[tokio::test(start_paused = true)]
async fn shrinking_the_idle_caps_closes_the_oldest_idle_connections() {
    let (mock, pool) = M::pool(|b| b.max_open(4)).await;
    let (a, b, c) = (
        ok(pool.get_for(&1).await),
        ok(pool.get_for(&1).await),
        ok(pool.get_for(&2).await),
    );
    let (a_id, b_id) = (a.id, b.id);
    drop(a);
    drop(b);
    drop(c);
    pool.resize(pool.limits().max_idle_per_key(1).max_idle(2))
        .unwrap();
    settle().await;
    assert_eq!(mock.closed(), vec![a_id], "the oldest of key 1 goes");
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );
    assert_eq!(ok(pool.get_for(&1).await).id, b_id);
    pool.resize(pool.limits().max_idle(1)).unwrap();
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    assert_eq!(pool.state().counters.closed_retired, 2);
}

/// Caps the builder would refuse are refused with the setting named, and
/// the pool keeps its caps.
#[tokio::test(start_paused = true)]
async fn invalid_caps_are_refused_and_change_nothing() {
    let (_mock, pool) = M::pool(|b| b.max_open(4).min_idle_for(1, 2)).await;
    let before = pool.limits();
    let cases = [
        (before.max_open(0), "max_open"),
        (before.max_idle(5), "max_idle"),
        (before.max_open_per_key(5), "max_open_per_key"),
        (before.max_idle_per_key(0), "max_idle_per_key"),
        (before.min_idle(5), "min_idle"),
        (before.max_idle_per_key(1), "min_idle_for"),
    ];
    for (limits, field) in cases {
        let e = pool.resize(limits).expect_err(field);
        assert!(
            matches!(e, Error::Config { field: f, .. } if f == field),
            "{e}"
        );
        assert!(e.to_string().contains(field), "{e}");
        assert_eq!(pool.limits(), before);
    }
    let e = pool
        .set_min_idle_for(&2, 5)
        .expect_err("over max_idle_per_key");
    assert!(
        matches!(e, Error::Config { field: "min_idle_for", .. }),
        "{e}"
    );
    assert_eq!(pool.key_state(&2), None, "nothing tracked");
}

/// Closing a key: its lent connection closes on return (it does not serve
/// the key's waiter), its dial in flight on arrival, and the getter that
/// dial was for is served by a new dial; another key is untouched.
#[tokio::test(start_paused = true)]
async fn closing_a_key_closes_lent_on_return_and_dials_on_arrival() {
    let (mock, pool) = M::pool(|b| b.max_open(8)).await;
    let lent = ok(pool.get_for(&1).await);
    let other = ok(pool.get_for(&2).await);
    let (lent_id, other_id) = (lent.id, other.id);
    drop(other);
    let gate = mock.gate(1);
    let w = spawn_get(&pool, 1);
    settle().await;
    let before = Counts { open: 2, lent: 1, dialing: 1, waiting: 1, ..ZERO };
    assert_eq!(key_counts(&pool, &1), Some(before));

    pool.close_key(&1);
    settle().await;
    assert_eq!(
        key_counts(&pool, &1),
        Some(before),
        "nothing idle to close now"
    );
    assert_eq!(
        key_counts(&pool, &2),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );

    drop(lent);
    settle().await;
    assert_eq!(mock.closed(), vec![lent_id]);
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, dialing: 1, waiting: 1, ..ZERO })
    );
    gate.succeed();
    settle().await;
    let got = ok(join(w).await);
    assert_eq!(
        mock.closed().len(),
        2,
        "the dial's connection closed on arrival"
    );
    assert!(!mock.closed().contains(&got.id));
    assert_eq!(mock.connects(), 4, "a new dial served the getter");
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, lent: 1, ..ZERO })
    );
    assert_eq!(pool.state().counters.closed_retired, 2);
    assert!(!mock.closed().contains(&other_id));
    drop(got);
    check_counts(&pool, &[1, 2]);
}

/// A connection out for a keepalive ping when its key is closed is closed
/// when the ping ends.
#[tokio::test(start_paused = true)]
async fn closing_a_key_closes_a_connection_out_for_a_ping_when_it_ends() {
    let (mock, pool) = M::pool(|b| {
        b.keepalive_interval(std::time::Duration::from_secs(10))
            .jitter(0.0)
    })
    .await;
    mock.delay_pings(std::time::Duration::from_secs(1));
    drop(ok(pool.get_for(&1).await));
    tokio::time::advance(std::time::Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, pinging: 1, ..ZERO })
    );
    pool.close_key(&1);
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed_retired, 1);
    assert_eq!(key_counts(&pool, &1), None);
}

/// `retain` closes the keys its predicate refuses, and sees each key's state.
#[tokio::test(start_paused = true)]
async fn retain_closes_the_keys_refused() {
    let (mock, pool) = M::pool(|b| b.max_open(8)).await;
    for k in 1..=3 {
        drop(ok(pool.get_for(&k).await));
    }
    let lent = ok(pool.get_for(&3).await);
    let mut seen = Vec::new();
    pool.retain(|k, state| {
        seen.push((*k, Counts::from(state)));
        k % 2 == 1
    });
    seen.sort_by_key(|(k, _)| *k);
    assert_eq!(
        seen,
        vec![
            (1, Counts { open: 1, idle: 1, ..ZERO }),
            (2, Counts { open: 1, idle: 1, ..ZERO }),
            (3, Counts { open: 1, lent: 1, ..ZERO }),
        ]
    );
    settle().await;
    assert_eq!(mock.closed(), vec![2]);
    assert_eq!(key_counts(&pool, &2), None, "forgotten once empty");
    assert_eq!(counts(&pool), Counts { open: 2, idle: 1, lent: 1, ..ZERO });
    drop(lent);
    assert_eq!(counts(&pool), Counts { open: 2, idle: 2, ..ZERO });
}

/// `close_idle` closes idle connections only; keys with `min_idle` refill.
#[tokio::test(start_paused = true)]
async fn close_idle_closes_idle_connections_and_min_idle_refills() {
    let (mock, pool) = M::pool(|b| b.max_open(8).min_idle_for(1, 1)).await;
    settle().await;
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );
    let lent = ok(pool.get_for(&2).await);
    drop(ok(pool.get_for(&3).await));
    settle().await;
    let before = mock.connects();
    pool.close_idle();
    settle().await;
    assert_eq!(
        pool.state().counters.closed_retired,
        2,
        "key 1's and key 3's"
    );
    assert_eq!(mock.connects(), before + 1, "key 1 refilled");
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );
    assert_eq!(
        key_counts(&pool, &2),
        Some(Counts { open: 1, lent: 1, ..ZERO })
    );
    assert_eq!(key_counts(&pool, &3), None);
    drop(lent);
}

/// `min_idle_for` keeps one key warm and not the others; changed at run
/// time it refills at once, and set to 0 it lets the key be forgotten.
#[tokio::test(start_paused = true)]
async fn min_idle_per_key_keeps_that_key_warm() {
    let (mock, pool) = M::pool(|b| b.max_open(8).min_idle_for(1, 2)).await;
    settle().await;
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 2, idle: 2, ..ZERO })
    );
    drop(ok(pool.get_for(&2).await));
    settle().await;
    assert_eq!(
        key_counts(&pool, &2),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );
    assert_eq!(mock.connects(), 3, "key 2 is not refilled");

    pool.set_min_idle_for(&2, 2).unwrap();
    settle().await;
    assert_eq!(
        key_counts(&pool, &2),
        Some(Counts { open: 2, idle: 2, ..ZERO })
    );
    pool.set_min_idle_for(&3, 1).unwrap();
    settle().await;
    assert_eq!(
        key_counts(&pool, &3),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );

    // Closed on demand, key 1 is refilled; at 0, key 3 is let go.
    pool.close_key(&1);
    settle().await;
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 2, idle: 2, ..ZERO })
    );
    pool.set_min_idle_for(&3, 0).unwrap();
    pool.close_key(&3);
    settle().await;
    assert_eq!(key_counts(&pool, &3), None);
    assert_eq!(pool.limits().min_idle, 0);
}

/// A pool-wide `min_idle` raised by `resize` refills every key tracked.
#[tokio::test(start_paused = true)]
async fn raising_min_idle_refills_every_key() {
    let (_mock, pool) = M::pool(|b| b.max_open(8)).await;
    let lent = ok(pool.get_for(&1).await);
    pool.resize(pool.limits().min_idle(1)).unwrap();
    settle().await;
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 2, idle: 1, lent: 1, ..ZERO })
    );
    drop(lent);
}

/// A single-key pool shrinks the same way: the returned connections are
/// parked, then shed.
#[tokio::test(start_paused = true)]
async fn a_single_key_pool_shrinks_too() {
    let (_mock, pool) = Mock::<()>::pool(|b| b.max_open(3)).await;
    let (a, b, c) = (
        ok(pool.get().await),
        ok(pool.get().await),
        ok(pool.get().await),
    );
    drop((a, b));
    assert_eq!(counts(&pool), Counts { open: 3, idle: 2, lent: 1, ..ZERO });
    pool.resize(pool.limits().max_idle(1).max_idle_per_key(1))
        .unwrap();
    assert_eq!(counts(&pool), Counts { open: 2, idle: 1, lent: 1, ..ZERO });
    drop(c); // over the idle cap now
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    assert_eq!(pool.state().counters.closed_retired, 1);
    assert_eq!(pool.state().counters.closed_max_idle_per_key, 1);
}

/// The builder refuses a key's `min_idle` over `max_idle_per_key`, naming
/// the setting, the key and the cap it came from.
#[tokio::test(start_paused = true)]
async fn the_builder_refuses_a_min_idle_for_over_the_idle_cap() {
    let mock = M::new();
    let refused = core_builder(mock.clone())
        .max_open(4)
        .min_idle_for(7, 5)
        .build()
        .await
        .map(|_| ())
        .expect_err("over max_idle_per_key");
    let Error::Config { field, .. } = &refused else {
        panic!("expected a config error, got {refused}");
    };
    assert_eq!(*field, "min_idle_for");
    let shown = refused.to_string();
    assert!(
        shown.contains("for key 7") && shown.contains("`max_open` (4)"),
        "{shown}"
    );
    assert_eq!(mock.connects(), 0);
}
