//! Many tasks through a few connections: the cap holds as the server
//! counts connections, and every request gets its own reply.

use std::time::Duration;

use connpool::Pool;
use tokio::time::timeout;

use super::{echo_server, pinging, round_trip};

// (2) 64 tasks × 25 round trips with `max_open_per_key(4)`: the server never
// sees more than 4 connections, and every request gets its own reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tasks_share_at_most_four_connections() {
    const TASKS: usize = 64;
    const ROUNDS: usize = 25;
    let (server, dest) = echo_server().await;
    let pool = Pool::builder(pinging())
        .max_open_per_key(4)
        .build()
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let pool = pool.clone();
        let dest = dest.clone();
        tasks.spawn(async move {
            for r in 0..ROUNDS {
                let mut conn = pool.get_for(&dest).await.unwrap();
                round_trip(&mut conn, format!("task {t} round {r}\n").as_bytes()).await;
            }
        });
    }
    let all = timeout(Duration::from_secs(20), async {
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    });
    all.await.expect("all round trips within 20 s");
    let state = pool.state();
    assert_eq!(state.counters.gets, (TASKS * ROUNDS) as u64);
    assert!(server.max_concurrent() <= 4, "{}", server.max_concurrent());
    assert!(server.accepted() <= 4, "{}", server.accepted());
    assert!(state.open <= 4);
    pool.close().await;
}
