//! The end of a backoff, the reset by a successful dial, and `no_backoff()`.

use tokio::time::{Instant, advance};

use crate::support::*;

use super::{
    BASE, CAP, M, assert_in_band, backoff_counters, backoff_left, backoff_state, connect_error,
    delay,
};

// ---------------------------------------------------------------------------
// 4. The end of a backoff, and the reset
// ---------------------------------------------------------------------------

/// After a backoff ends a get dials again; a second failure backs off for
/// [100, 200] ms; a success resets the count (0, not in backoff) and the
/// next failure backs off for a base-sized [50, 100] ms again.
#[tokio::test(start_paused = true)]
async fn after_the_backoff_a_get_dials_again_and_a_success_resets_it() {
    let (mock, pool) = M::pool(|b| b.backoff(BASE, CAP)).await;
    let pin = ok(pool.get_for(&1).await);
    mock.push(1, Step::Fail("first"));
    mock.push(1, Step::Fail("second"));
    mock.push(1, Step::Ok);
    mock.push(1, Step::Fail("third"));

    assert_eq!(connect_error(&err(pool.get_for(&1).await)), "first");
    let r1 = backoff_left(&pool, &1);
    assert_in_band(r1, delay(1));
    advance(r1).await;
    assert_eq!(connect_error(&err(pool.get_for(&1).await)), "second");
    assert_eq!(mock.connects(), 3);
    let r2 = backoff_left(&pool, &1);
    assert_in_band(r2, delay(2));
    assert_eq!(backoff_state(&pool, &1), (true, 2));

    advance(r2).await;
    let c = ok(pool.get_for(&1).await);
    assert_eq!(c.id, 2);
    assert_eq!(mock.connects(), 4);
    assert_eq!(backoff_state(&pool, &1), (false, 0));

    // Both connections lent: the next get dials, fails, and backs off for a
    // base-sized time again.
    let t = Instant::now();
    assert_eq!(connect_error(&err(pool.get_for(&1).await)), "third");
    assert_in_band(backoff_left(&pool, &1), delay(1));
    assert_eq!(backoff_state(&pool, &1), (true, 1));
    assert_eq!(Instant::now(), t);
    assert_eq!(backoff_counters(&pool), (3, 3, 0));
    assert_eq!(pool.state().counters.dials, 5);
    check_counts(&pool, &[1]);
    drop((pin, c));
}

// ---------------------------------------------------------------------------
// 5. No backoff
// ---------------------------------------------------------------------------

/// `no_backoff()` (the core builder): each get after a failure dials again,
/// one after the other and when queued at the key's cap (the freed slot
/// dials for the next waiter); nothing is ever in backoff.
#[tokio::test(start_paused = true)]
async fn no_backoff_each_getter_dials_again() {
    let (mock, pool) = M::pool(|b| b.max_open_per_key(1)).await;
    for i in 1..=3 {
        mock.push(1, Step::Fail("down"));
        assert_eq!(connect_error(&err(pool.get_for(&1).await)), "down");
        assert_eq!(mock.connects(), i);
    }

    // Queued at the cap: each failure hands the slot to the next getter.
    let gate1 = mock.gate(1);
    let gate2 = mock.gate(1);
    let g1 = spawn_get(&pool, 1);
    settle().await;
    let g2 = spawn_get(&pool, 1);
    let g3 = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(mock.connects(), 4);
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, dialing: 1, waiting: 3, ..ZERO })
    );
    gate1.fail("down");
    settle().await;
    assert!(g1.is_finished() && !g2.is_finished() && !g3.is_finished());
    assert_eq!(mock.connects(), 5, "the second getter dials");
    // The failures in a row count on: the key was remembered between them.
    assert_eq!(backoff_state(&pool, &1), (false, 4));
    gate2.fail("down");
    settle().await;
    assert!(g2.is_finished());
    assert_eq!(connect_error(&err(join(g1).await)), "down");
    assert_eq!(connect_error(&err(join(g2).await)), "down");
    let c = ok(join(g3).await);
    assert_eq!(c.id, 1);
    assert_eq!(mock.connects(), 6);
    assert_eq!(backoff_state(&pool, &1), (false, 0));
    assert_eq!(backoff_counters(&pool), (0, 5, 0));
    check_counts(&pool, &[1]);
    drop(c);
}
