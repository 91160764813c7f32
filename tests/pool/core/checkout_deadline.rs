//! The checkout deadline: its default, exact firing, the key's last dial
//! error, `None`.

use std::time::Duration;

use connpool::{ConnectError, Error};
use tokio::time::Instant;

use crate::support::*;

use super::{M, U, manager_error, secs};

// ---------------------------------------------------------------------------
// 10. Checkout deadline
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn checkout_deadline_defaults_to_30s_and_fires_exactly() {
    let (_, pool) = U::pool(|b| b.max_open(1)).await;
    let c = ok(pool.get().await);
    let start = Instant::now();
    let g = spawn_get(&pool, ());
    settle().await;
    tokio::time::advance(secs(30) - Duration::from_millis(1)).await;
    settle().await;
    assert!(!g.is_finished());
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    settle().await;
    assert!(g.is_finished());
    assert_eq!(start.elapsed(), secs(30));
    match err(join(g).await) {
        Error::Timeout { waited, last_connect_error, foreign_runtime: false, .. } => {
            assert_eq!(waited, secs(30));
            assert!(last_connect_error.is_none(), "{last_connect_error:?}");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    check_counts(&pool, &[()]);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    let s = pool.state();
    assert_eq!(s.counters.timeouts, 1);
    assert_eq!(s.counters.wait_time, secs(30));
    assert_eq!(pool.key_state(&()).unwrap().counters.timeouts, 1);
    drop(c);
}

#[tokio::test(start_paused = true)]
async fn checkout_timeout_carries_the_keys_last_dial_error() {
    let (mock, pool) = M::pool(|b| {
        b.max_open(2)
            .checkout_timeout(secs(10))
            .connect_timeout(secs(60))
    })
    .await;
    let c = ok(pool.get_for(&1).await);
    mock.push(1, Step::Fail("refused"));
    assert_eq!(manager_error(&err(pool.get_for(&1).await)), "refused");
    check_counts(&pool, &[1]);
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, lent: 1, ..ZERO })
    );

    mock.push(1, Step::Hang);
    let start = Instant::now();
    let e = err(pool.get_for(&1).await);
    assert_eq!(start.elapsed(), secs(10));
    match e {
        Error::Timeout {
            waited,
            last_connect_error: Some(ConnectError::Manager(m)),
            foreign_runtime: false,
            ..
        } => {
            assert_eq!(waited, secs(10));
            assert_eq!(m.0, "refused");
        }
        other => panic!("expected Timeout with the last dial error, got {other:?}"),
    }
    // The hung dial carries on.
    check_counts(&pool, &[1]);
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 1, dialing: 1, ..ZERO }
    );
    drop(c);
}

#[tokio::test(start_paused = true)]
async fn checkout_timeout_none_waits_past_an_hour() {
    let (_, pool) = U::pool(|b| b.max_open(1).checkout_timeout(None)).await;
    let c = ok(pool.get().await);
    let g = spawn_get(&pool, ());
    settle().await;
    tokio::time::advance(secs(3601)).await;
    settle().await;
    assert!(!g.is_finished());
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );
    assert_eq!(pool.state().counters.timeouts, 0);
    drop(c);
    let got = ok(join(g).await);
    assert_eq!(got.id, 1);
    check_counts(&pool, &[()]);
    assert_eq!(pool.state().counters.wait_time, secs(3601));
}
