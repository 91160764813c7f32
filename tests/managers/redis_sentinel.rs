//! Redis behind Sentinel: a master, a replica and three Sentinels
//! (throwaway servers), `SENTINEL FAILOVER` under 16 writers through a
//! `RedisService` over a pool of `RedisManager::through_sentinels`. Once
//! the pool hears `+switch-master`, no write goes to the old master (only
//! the writes then in flight may be acknowledged by it, a few dozen at
//! most, against tens of thousands without), and writes reach the new
//! master within 1 s.
//!
//! `CI=true` makes a missing `redis-server` a failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use connpool::Pool;
use connpool::managers::redis::redis::{self, AsyncCommands};
use connpool::managers::redis::{RedisManager, RedisService};
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout};

use crate::support::redis::RedisServer;
use crate::support::until;

const WRITERS: usize = 16;
const MASTER: &str = "mymaster";

/// A direct connection to `server`.
async fn direct(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    server.observer().await
}

/// Polls `check` every 50 ms for at most 30 s (servers syncing, Sentinels
/// finding each other).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < Duration::from_secs(30), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_follow_the_master_through_a_failover() {
    let Some(master) = RedisServer::new() else {
        return;
    };
    let port = master.port().to_string();
    let replica = RedisServer::with_args(&["--replicaof", "127.0.0.1", &port]).unwrap();
    let sentinels: Vec<RedisServer> = (0..3)
        .map(|_| RedisServer::sentinel(&master, MASTER).unwrap())
        .collect();
    let on_replica = direct(&replica).await;
    eventually("the replica in sync", || {
        let mut c = on_replica.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut c)
                .await
                .unwrap();
            info.contains("master_link_status:up")
        }
    })
    .await;
    for sentinel in &sentinels {
        let c = direct(sentinel).await;
        eventually("the Sentinels know the replica and each other", || {
            let mut c = c.clone();
            async move {
                let replicas: Vec<redis::Value> = redis::cmd("SENTINEL")
                    .arg("replicas")
                    .arg(MASTER)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                let others: Vec<redis::Value> = redis::cmd("SENTINEL")
                    .arg("sentinels")
                    .arg(MASTER)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                !replicas.is_empty() && others.len() == 2
            }
        })
        .await;
    }

    let manager = RedisManager::from_url("redis://127.0.0.1/0")
        .unwrap()
        .through_sentinels(
            MASTER,
            sentinels.iter().map(|s| format!("127.0.0.1:{}", s.port())),
        )
        .unwrap();
    let key = manager.key();
    let pool = Pool::builder(manager).build().await.unwrap();
    let service = RedisService::new(pool.clone(), key).timeout(Duration::from_secs(1));

    // The announcement, as the pool's watcher hears it (the first Sentinel).
    let client = redis::Client::open(format!("redis://127.0.0.1:{}", sentinels[0].port())).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe("+switch-master").await.unwrap();

    let acked: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let mut writers = JoinSet::new();
    for _ in 0..WRITERS {
        let (mut redis, acked, stop, next) =
            (service.clone(), acked.clone(), stop.clone(), next.clone());
        writers.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let id = next.fetch_add(1, Ordering::SeqCst);
                match redis.set::<_, _, ()>(format!("w:{id}"), 1).await {
                    Ok(()) => acked.lock().push((id, Instant::now())),
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
    }
    until("writes flowing", || acked.lock().len() > 100).await;

    let mut on_sentinel = direct(&sentinels[0]).await;
    let _: () = redis::cmd("SENTINEL")
        .arg("failover")
        .arg(MASTER)
        .query_async(&mut on_sentinel)
        .await
        .unwrap();
    let switched = {
        let mut messages = pubsub.on_message();
        let message = timeout(Duration::from_secs(30), messages.next())
            .await
            .expect("+switch-master within 30 s")
            .unwrap();
        let payload: String = message.get_payload().unwrap();
        assert!(payload.contains(&replica.port().to_string()), "{payload}");
        Instant::now()
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    writers.join_all().await;

    let acked = std::mem::take(&mut *acked.lock());
    let mut on_new = direct(&replica).await;
    let mut after = Vec::new();
    let mut lost_after = 0;
    for &(id, at) in acked.iter().filter(|&&(_, at)| at > switched) {
        let there: bool = on_new.exists(format!("w:{id}")).await.unwrap();
        if there {
            after.push(at);
        } else {
            lost_after += 1;
        }
    }
    let first = after.iter().min().map(|&at| at - switched);
    let counters = pool.state().counters;
    println!(
        "Sentinel failover: {} writes acknowledged, the first on the new master {first:?} after \
         +switch-master, {lost_after} acknowledged after it by the old master (in flight at the \
         announcement), {} key clears",
        acked.len(),
        counters.key_clears
    );
    let first = first.expect("writes reached the new master after the switch");
    assert!(first < Duration::from_secs(1), "{first:?}");
    // The writes in flight when the pool heard the announcement (one per
    // writer, and those sent while the announcement was on its way to the
    // pool's watcher) may still be acknowledged by the old master.
    assert!(
        lost_after <= 4 * WRITERS,
        "{lost_after} writes went to the old master after the switch"
    );
    assert!(counters.key_clears >= 1);
    drop(master);
    pool.close().await;
}
