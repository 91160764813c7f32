//! Dial failures, timeouts and panics: who is told, and the slot released.

use std::time::Duration;

use connpool::{ConnectError, Error};
use tokio::time::Instant;

use crate::support::*;

use super::{M, U, manager_error, secs};

// ---------------------------------------------------------------------------
// 8. Dial failures, timeouts and panics
// ---------------------------------------------------------------------------

/// The failure goes to the getter the dial was for; the slot goes to the
/// next dial waiter, which dials and is served.
#[tokio::test(start_paused = true)]
async fn dial_failure_reaches_its_getter_and_the_next_waiter_dials() {
    let (mock, pool) = M::pool(|b| b.max_open(1)).await;
    let gate = mock.gate(1);
    let g1 = spawn_get(&pool, 1);
    settle().await;
    let g2 = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, dialing: 1, waiting: 2, ..ZERO }
    );
    check_counts(&pool, &[1]);

    gate.fail("refused");
    settle().await;
    check_counts(&pool, &[1]);
    let e = err(join(g1).await);
    assert_eq!(manager_error(&e), "refused");
    let c = ok(join(g2).await);
    assert_eq!(c.id, 1);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    assert_eq!(mock.connects(), 2);
    let s = pool.state();
    assert_eq!((s.counters.dials, s.counters.dial_failures), (2, 1));
}

/// A waiter with its own dial in flight is not told of another getter's
/// dial failure, and no extra dial is started for it.
#[tokio::test(start_paused = true)]
async fn dial_failure_is_not_told_to_other_waiters() {
    let (mock, pool) = M::pool(|b| b.max_open(2)).await;
    let gate_a = mock.gate(1);
    let gate_b = mock.gate(1);
    let g1 = spawn_get(&pool, 1);
    settle().await;
    let g2 = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, dialing: 2, waiting: 2, ..ZERO }
    );

    gate_a.fail("refused");
    settle().await;
    check_counts(&pool, &[1]);
    assert!(g1.is_finished());
    assert!(!g2.is_finished(), "the other waiter is not told");
    assert_eq!(manager_error(&err(join(g1).await)), "refused");
    assert_eq!(
        counts(&pool),
        Counts { open: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    assert_eq!(mock.connects(), 2);

    gate_b.succeed();
    let c = ok(join(g2).await);
    assert_eq!(c.id, 1);
    check_counts(&pool, &[1]);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
}

#[tokio::test(start_paused = true)]
async fn dial_timeout_gives_connect_timeout_and_releases_the_slot() {
    let (mock, pool) = M::pool(|b| b.max_open(1).connect_timeout(secs(1))).await;
    mock.push(1, Step::Hang);
    let start = Instant::now();
    let g1 = spawn_get(&pool, 1);
    settle().await;
    let g2 = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, dialing: 1, waiting: 2, ..ZERO }
    );

    tokio::time::advance(Duration::from_millis(999)).await;
    settle().await;
    assert!(!g1.is_finished());
    let e = err(join(g1).await);
    assert_eq!(start.elapsed(), secs(1));
    match e {
        Error::Connect(ConnectError::Timeout(d)) => assert_eq!(d, secs(1)),
        other => panic!("expected a dial timeout, got {other:?}"),
    }
    let c = ok(join(g2).await);
    assert_eq!(c.id, 1);
    check_counts(&pool, &[1]);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    assert_eq!(pool.state().counters.dial_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn dial_panic_gives_aborted_and_releases_the_slot() {
    let (mock, pool) = U::pool(|b| b.max_open(1)).await;
    mock.push((), Step::Panic);
    // Both check out before the dial task runs: g2 waits for the slot.
    let g1 = spawn_get(&pool, ());
    let g2 = spawn_get(&pool, ());
    settle().await;
    check_counts(&pool, &[()]);
    match err(join(g1).await) {
        Error::Connect(ConnectError::Panicked(m)) => assert_eq!(&*m, "scripted panic in connect"),
        other => panic!("expected ConnectError::Panicked, got {other:?}"),
    }
    let c = ok(join(g2).await);
    assert_eq!(c.id, 1);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
    let s = pool.state();
    assert_eq!((s.counters.dials, s.counters.dial_failures), (2, 1));
    drop(c);
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
}
