//! Redis behind Sentinel: a master, a replica and three Sentinels
//! (throwaway servers), `SENTINEL FAILOVER` under 16 writers through a
//! `RedisService` over a pool of `RedisManager::through_sentinels`. Once
//! the pool hears `+switch-master`, no write goes to the old master and
//! no reply of the old master counts as an acknowledgement (a write lost
//! after the announcement is one acknowledged while it was on its way to
//! the pool: a few at most, against tens of thousands without), and writes
//! reach the new master within 1 s.
//!
//! `CI=true` makes a missing `redis-server` a failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use connpool::Pool;
use connpool::managers::redis::redis::AsyncCommands;
use connpool::managers::redis::{RedisManager, RedisService};
use parking_lot::Mutex;
use std::time::Instant;
use tokio::task::JoinSet;

use crate::support::redis::Fleet;
use crate::support::until;

const WRITERS: usize = 16;
const MASTER: &str = "mymaster";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_follow_the_master_through_a_failover() {
    let Some(fleet) = Fleet::start(MASTER).await else {
        return;
    };
    let manager = RedisManager::from_url("redis://127.0.0.1/0")
        .unwrap()
        .through_sentinels(MASTER, fleet.sentinel_addrs())
        .unwrap();
    let key = manager.key();
    let pool = Pool::builder(manager).build().await.unwrap();
    let service = RedisService::new(pool.clone(), key).timeout(Duration::from_secs(1));

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

    let switched = fleet.fail_over().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    writers.join_all().await;

    let acked = std::mem::take(&mut *acked.lock());
    let mut on_new = fleet.replica.observer().await;
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
         +switch-master, {lost_after} acknowledged after it by the old master, {} key clears",
        acked.len(),
        counters.key_clears
    );
    let first = first.expect("writes reached the new master after the switch");
    assert!(first < Duration::from_secs(1), "{first:?}");
    // Those acknowledged while the announcement was on its way from the
    // test's subscription to the pool's watcher may be lost.
    assert!(
        lost_after <= 4 * WRITERS,
        "{lost_after} writes went to the old master after the switch"
    );
    assert!(counters.key_clears >= 1);
    pool.close().await;
}
