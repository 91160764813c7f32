//! `Pool::settled`: waits for dials, keepalive pings, recycles and closes
//! to end, under tokio's paused clock, and for nothing else.

use std::time::Duration;

use crate::support::*;

type M = Mock<u32>;

/// The dial of a get, a recycle of a return (an `after_return` hook that
/// takes a second) and the close of a broken connection: `settled` waits
/// for each, and the counts then read as a borrower expects.
#[tokio::test(start_paused = true)]
async fn waits_for_dials_recycles_and_closes() {
    let (mock, pool) = M::pool(|b| {
        b.after_return(|_, _| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(())
            })
        })
    })
    .await;
    pool.settled().await; // nothing to wait for

    mock.set_dial_time(Duration::from_millis(300));
    let getter = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    let t0 = tokio::time::Instant::now();
    pool.settled().await;
    assert_eq!(
        t0.elapsed(),
        Duration::from_millis(300),
        "until the dial ended"
    );
    let conn = ok(join(getter).await);

    drop(conn);
    assert_eq!(counts(&pool), Counts { open: 1, recycling: 1, ..ZERO });
    let t0 = tokio::time::Instant::now();
    pool.settled().await;
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(1),
        "until the recycle ended"
    );
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });

    let conn = ok(pool.get_for(&1).await);
    conn.break_it();
    drop(conn);
    pool.settled().await;
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(mock.closed().len(), 1);
    pool.close().await;
}

/// A getter waiting for a connection that nothing is dialing (its key at
/// its cap) does not keep the pool from settling; a `settled` future
/// dropped before it resolved leaves nothing behind.
#[tokio::test(start_paused = true)]
async fn a_waiting_getter_is_not_a_task() {
    let (mock, pool) = M::pool(|b| b.max_open(2).max_open_per_key(1)).await;
    let held = ok(pool.get_for(&1).await);
    let waiter = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );
    pool.settled().await;
    drop(held);
    drop(ok(join(waiter).await));

    // Given up while a dial runs (dropped unfinished), then awaited again.
    mock.set_dial_time(Duration::from_secs(1));
    let getter = spawn_get(&pool, 2);
    settle().await;
    assert_eq!(counts(&pool).dialing, 1);
    let gave_up = tokio::time::timeout(Duration::from_millis(10), pool.settled()).await;
    assert!(gave_up.is_err(), "not settled while the dial runs");
    pool.settled().await;
    assert_eq!(counts(&pool).dialing, 0);
    drop(ok(join(getter).await));
    pool.close().await;
}
