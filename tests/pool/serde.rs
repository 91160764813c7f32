//! With the `serde` feature, `PoolState`, `KeyState` and `Counters`
//! serialize: a status route is one line (`Json(pool.state())` in axum),
//! its durations in seconds.

use std::time::Duration;

use tokio::time::{Instant, advance};

use crate::support::*;

type M = Mock<u32>;

#[tokio::test(start_paused = true)]
async fn the_pools_state_serializes_with_its_durations_in_seconds() {
    let (mock, pool) = M::pool(|b| {
        b.backoff(Duration::from_secs(4), Duration::from_secs(8))
            .max_open_per_key(1)
    })
    .await;
    let a = ok(pool.get_for(&1).await);
    mock.push(2, Step::Fail("down"));
    let _ = err(pool.get_for(&2).await);
    let t = Instant::now();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get_for(&1).await.map(drop) })
    };
    settle().await;
    advance(Duration::from_millis(1500)).await;
    drop(a);
    join(waiter).await.unwrap();
    assert_eq!(Instant::now() - t, Duration::from_millis(1500));

    let state = serde_json::to_value(pool.state()).unwrap();
    assert_eq!(state["open"], 1);
    assert_eq!(state["idle"], 1);
    assert_eq!(state["closed"], false);
    assert_eq!(state["counters"]["gets"], 3);
    assert_eq!(state["counters"]["dial_failures"], 1);
    assert_eq!(state["counters"]["wait_time_seconds"], 1.5);

    let down = serde_json::to_value(pool.key_state(&2).unwrap()).unwrap();
    let left = down["backoff_left_seconds"].as_f64().unwrap();
    assert!((0.5..=2.5).contains(&left), "{down}");
    assert_eq!(down["dial_failures_in_a_row"], 1);
    let up = serde_json::to_value(pool.key_state(&1).unwrap()).unwrap();
    assert!(up["backoff_left_seconds"].is_null(), "{up}");
}
