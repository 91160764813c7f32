//! Gets during a backoff, and the getters queued when it starts.

use tokio::time::{Instant, advance};

use crate::support::*;

use super::{
    BASE, CAP, M, assert_in_band, backoff_counters, backoff_error, backoff_left, backoff_state,
    connect_error, delay, ms, ns,
};

// ---------------------------------------------------------------------------
// 2. A get during a backoff
// ---------------------------------------------------------------------------

/// During a backoff, a get of the key with no idle connection waits for the
/// pool's probe at the backoff's end (nothing dials before it) and fails
/// with the probe's error as `Error::Backoff`, with the time the next
/// backoff leaves; a get of another key dials as usual; a get of the key
/// that finds an idle connection is served with it at once.
#[tokio::test(start_paused = true)]
async fn during_backoff_a_get_waits_for_the_probe() {
    let (mock, pool) = M::pool(|b| b.backoff(BASE, CAP)).await;
    let a = ok(pool.get_for(&1).await);
    assert_eq!(a.id, 1);
    mock.push(1, Step::Fail("connection refused"));
    mock.push(1, Step::Fail("still refused"));
    assert_eq!(
        connect_error(&err(pool.get_for(&1).await)),
        "connection refused"
    );
    assert_eq!(mock.connects(), 2);

    // Another key is not affected.
    let b = ok(pool.get_for(&2).await);
    assert_eq!((b.key, b.id), (2, 2));
    assert_eq!(mock.connects(), 3);
    assert_eq!(backoff_state(&pool, &2), (false, 0));

    let left = backoff_left(&pool, &1);
    assert_in_band(left, BASE);
    let t = Instant::now();
    let g = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, lent: 1, waiting: 1, ..ZERO })
    );
    advance(left - ns(1)).await;
    settle().await;
    assert_eq!(mock.connects(), 3, "no dial before the probe");
    let e = err(join(g).await);
    let waited = Instant::now() - t;
    assert!(
        waited >= left && waited <= left + ms(1),
        "waited {waited:?} for a backoff of {left:?}"
    );
    let (retry_in, msg) = backoff_error(&e);
    assert_eq!(msg, "still refused");
    assert_in_band(retry_in, delay(2));
    assert!(
        e.to_string().contains("mock: still refused"),
        "display: {e}"
    );
    assert_eq!(mock.connects(), 4, "one dial: the probe");
    assert_eq!(pool.state().counters.probes, 1);
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, lent: 1, ..ZERO })
    );

    // An idle connection of the key in backoff is still lent, at once.
    drop(a);
    let t = Instant::now();
    let a = ok(pool.get_for(&1).await);
    assert_eq!((a.id, Instant::now()), (1, t));
    assert_eq!(mock.connects(), 4);
    assert_eq!(
        backoff_state(&pool, &1),
        (true, 2),
        "lending does not end it"
    );
    assert_eq!(backoff_counters(&pool), (2, 2, 1));
    let c = pool.key_state(&1).unwrap().counters;
    assert_eq!(
        (c.backoffs, c.dial_failures, c.backoff_rejections),
        (2, 2, 1)
    );
    assert_eq!(pool.key_state(&2).unwrap().counters.backoff_rejections, 0);
    check_counts(&pool, &[1, 2]);
    drop((a, b));
}

// ---------------------------------------------------------------------------
// 3. Queued getters when the backoff starts
// ---------------------------------------------------------------------------

/// `max_open_per_key(1)`: one getter's dial is in flight (gated), two more
/// wait for a dial slot. The dial fails: its own getter gets
/// `Error::Connect` with the manager's error, the two queued ones
/// `Error::Backoff` at once, with the same time left; nothing dials again.
#[tokio::test(start_paused = true)]
async fn getters_queued_for_a_dial_slot_fail_when_the_backoff_starts() {
    let (mock, pool) = M::pool(|b| b.backoff(BASE, CAP).max_open_per_key(1)).await;
    let gate = mock.gate(1);
    let g1 = spawn_get(&pool, 1);
    settle().await;
    let g2 = spawn_get(&pool, 1);
    let g3 = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, dialing: 1, waiting: 3, ..ZERO })
    );
    assert_eq!(mock.connects(), 1);
    check_counts(&pool, &[1]);

    let t = Instant::now();
    gate.fail("refused");
    settle().await;
    assert!(g1.is_finished() && g2.is_finished() && g3.is_finished());
    assert_eq!(Instant::now(), t);
    assert_eq!(connect_error(&err(join(g1).await)), "refused");
    let (r2, m2) = backoff_error(&err(join(g2).await));
    let (r3, m3) = backoff_error(&err(join(g3).await));
    assert_eq!((m2.as_str(), m3.as_str()), ("refused", "refused"));
    assert_eq!(r2, r3, "one backoff, one end");
    assert_in_band(r2, BASE);
    assert_eq!(mock.connects(), 1, "the queued getters did not dial");
    assert_eq!(backoff_counters(&pool), (1, 1, 2));
    assert_eq!(counts(&pool), ZERO);
    check_counts(&pool, &[1]);
}

/// `max_connecting(2)`: two getters have their own dial in flight, a third
/// waits for a dial slot. The first dial fails: its getter gets
/// `Error::Connect`, the third `Error::Backoff`, the second keeps waiting for
/// its own dial, which then succeeds, serves it and ends the backoff.
#[tokio::test(start_paused = true)]
async fn a_getter_whose_dial_is_in_flight_keeps_waiting_through_a_backoff() {
    let (mock, pool) = M::pool(|b| b.backoff(BASE, CAP).max_connecting(2)).await;
    let gate1 = mock.gate(1);
    let gate2 = mock.gate(1);
    let g1 = spawn_get(&pool, 1);
    let g2 = spawn_get(&pool, 1);
    let g3 = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 2, dialing: 2, waiting: 3, ..ZERO })
    );
    assert_eq!(mock.connects(), 2);

    gate1.fail("refused");
    settle().await;
    assert!(g1.is_finished() && g3.is_finished());
    assert!(!g2.is_finished(), "its own dial is still in flight");
    assert_eq!(connect_error(&err(join(g1).await)), "refused");
    let (r3, _) = backoff_error(&err(join(g3).await));
    assert_in_band(r3, BASE);
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, dialing: 1, waiting: 1, ..ZERO })
    );
    assert_eq!(backoff_state(&pool, &1), (true, 1));
    assert_eq!(backoff_counters(&pool), (1, 1, 1));

    gate2.succeed();
    let c2 = ok(join(g2).await);
    assert_eq!(c2.id, 1);
    assert_eq!(
        backoff_state(&pool, &1),
        (false, 0),
        "a successful dial ends the backoff"
    );
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, lent: 1, ..ZERO })
    );
    assert_eq!(mock.connects(), 2);
    check_counts(&pool, &[1]);
    drop(c2);
}
