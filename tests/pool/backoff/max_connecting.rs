//! `max_connecting`: dials in flight per key, and pre-warm not limited by it.

use crate::support;
use crate::support::*;

use connpool::Pool;

use super::{BASE, CAP, M, U};

// ---------------------------------------------------------------------------
// 6. max_connecting
// ---------------------------------------------------------------------------

/// `max_connecting(2)`, 10 getters of a cold key, gated dials: exactly 2
/// dials in flight; each one that completes serves its getter and starts the
/// next; never more than 2 at any observed point; all 10 served with 10
/// dials (each getter keeps its connection). Another key dials meanwhile.
#[tokio::test(start_paused = true)]
async fn max_connecting_caps_dials_in_flight_per_key() {
    const N: usize = 10;
    let (mock, pool) = M::pool(|b| b.max_connecting(2)).await;
    let gates: Vec<_> = (0..N).map(|_| mock.gate(1)).collect();
    let getters: Vec<_> = (0..N).map(|_| spawn_get(&pool, 1)).collect();
    settle().await;
    assert_eq!(pool.state().dialing, 2);
    assert_eq!(mock.connects(), 2);
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 2, dialing: 2, waiting: N, ..ZERO })
    );
    check_counts(&pool, &[1]);

    // Per key: another key is not held back.
    let other = ok(pool.get_for(&2).await);
    assert_eq!(other.key, 2);
    assert_eq!(mock.connects(), 3);
    assert_eq!(pool.state().dialing, 2);

    for (i, gate) in gates.into_iter().enumerate() {
        gate.succeed();
        settle().await;
        let served = i + 1;
        for (j, g) in getters.iter().enumerate() {
            assert_eq!(
                g.is_finished(),
                j < served,
                "getter {j} after {served} dials"
            );
        }
        let s = pool.state();
        assert!(s.dialing <= 2, "{s:?}");
        assert_eq!(s.dialing, 2.min(N - served));
        assert_eq!(mock.connects(), 1 + (served + 2).min(N));
        assert_eq!(
            key_counts(&pool, &1),
            Some(Counts {
                open: served + s.dialing,
                lent: served,
                dialing: s.dialing,
                waiting: N - served,
                ..ZERO
            })
        );
        check_counts(&pool, &[1, 2]);
    }
    let mut ids = Vec::new();
    for g in getters {
        ids.push(ok(join(g).await).id);
    }
    // Dials complete in order; `other` took id 1.
    assert_eq!(ids, (2..=11).collect::<Vec<u64>>());
    assert_eq!(pool.key_state(&1).unwrap().counters.dials, N as u64);
    assert_eq!(mock.connects(), N + 1);
    drop(other);
}

/// `max_connecting(1)`: a getter queued for a dial slot is served by a
/// connection returned meanwhile; the dial started for it later serves the
/// next getter. Three getters, two dials.
#[tokio::test(start_paused = true)]
async fn a_getter_queued_for_a_dial_slot_takes_a_returned_connection() {
    let (mock, pool) = U::pool(|b| b.max_connecting(1)).await;
    let gate1 = mock.gate(());
    let gate2 = mock.gate(());
    let g1 = spawn_get(&pool, ());
    let g2 = spawn_get(&pool, ());
    let g3 = spawn_get(&pool, ());
    settle().await;
    assert_eq!((pool.state().dialing, mock.connects()), (1, 1));

    gate1.succeed();
    settle().await;
    assert!(g1.is_finished() && !g2.is_finished() && !g3.is_finished());
    assert_eq!((pool.state().dialing, mock.connects()), (1, 2));
    let c1 = ok(join(g1).await);
    assert_eq!(c1.id, 1);

    drop(c1);
    settle().await;
    assert!(g2.is_finished() && !g3.is_finished());
    let c2 = ok(join(g2).await);
    assert_eq!(c2.id, 1, "handed over the returned connection");
    assert_eq!((pool.state().dialing, mock.connects()), (1, 2));

    gate2.succeed();
    let c3 = ok(join(g3).await);
    assert_eq!(c3.id, 2);
    assert_eq!(mock.connects(), 2);
    assert_eq!(counts(&pool), Counts { open: 2, lent: 2, ..ZERO });
    check_counts(&pool, &[()]);
    drop((c2, c3));
}

/// Pre-warming `initial(5)` is not limited by `max_connecting(2)`: the five
/// dials run at once.
#[tokio::test(start_paused = true)]
async fn prewarm_is_not_limited_by_max_connecting() {
    let mock = U::new();
    let gates: Vec<_> = (0..5).map(|_| mock.gate(())).collect();
    let build = tokio::spawn(
        support::core_builder(mock.clone())
            .max_connecting(2)
            .initial(5)
            .build(),
    );
    settle().await;
    assert_eq!(mock.connects(), 5, "all five pre-warm dials at once");
    assert!(!build.is_finished());
    for g in gates {
        g.succeed();
    }
    let pool = join(build).await.unwrap();
    let s = pool.state();
    assert_eq!(Counts::from(&s), Counts { open: 5, idle: 5, ..ZERO });
    assert_eq!(s.counters.dials, 5);
    assert_eq!(mock.connects(), 5);
    check_counts(&pool, &[()]);
}

/// Unset (the default), `max_connecting` does not hold a healthy key
/// back: once a key has made a connection, a burst of 10 getters with
/// `max_open_per_key(8)` starts 7 dials at once, as Go's `Transport` does.
/// A key that has made none yet dials 2 at a time
/// (its documented default while unset), and so does a key whose dial failed once
/// it is back, for its failure memory (the backoff cap); then as many as
/// its cap again.
#[tokio::test(start_paused = true)]
async fn unset_it_holds_only_a_key_untried_or_recovering() {
    let mock = M::new();
    let pool = Pool::builder(mock.clone())
        .max_open_per_key(8)
        .backoff(BASE, CAP)
        .build()
        .await
        .unwrap();
    let burst = |key: u32| {
        let gates: Vec<_> = (0..8).map(|_| mock.gate(key)).collect();
        let getters: Vec<_> = (0..10).map(|_| spawn_get(&pool, key)).collect();
        (gates, getters)
    };
    let serve = async |(gates, getters): (Vec<Gate>, Vec<_>)| {
        for gate in gates {
            gate.succeed();
        }
        for getter in getters {
            drop(ok(join(getter).await));
        }
    };

    let untried = burst(3);
    settle().await;
    assert_eq!(pool.key_state(&3).unwrap().dialing, 2, "an untried key");
    serve(untried).await;

    let first = ok(pool.get_for(&1).await);
    let healthy = burst(1);
    settle().await;
    assert_eq!(pool.key_state(&1).unwrap().dialing, 7, "a healthy key");
    serve(healthy).await;
    drop(first);

    mock.push(2, Step::Fail("refused"));
    assert!(pool.get_for(&2).await.is_err());
    tokio::time::advance(BASE).await; // past the backoff: the key may dial
    let recovering = burst(2);
    settle().await;
    // A trial first (one dial, the key being down), then two at a time.
    assert_eq!(pool.key_state(&2).unwrap().dialing, 1, "on trial");
    let (mut gates, getters) = recovering;
    gates.remove(0).succeed();
    settle().await;
    assert_eq!(pool.key_state(&2).unwrap().dialing, 2, "recovering");
    serve((gates, getters)).await;

    // Past the failure memory the key is healthy again.
    tokio::time::advance(CAP).await;
    let held = ok(pool.get_for(&2).await);
    pool.close_idle();
    let again = burst(2);
    settle().await;
    assert_eq!(pool.key_state(&2).unwrap().dialing, 7, "recovered");
    serve(again).await;
    drop(held);
}
