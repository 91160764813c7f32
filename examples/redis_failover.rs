//! A Redis Sentinel failover under 16 writers, as each client lives it:
//! connpool (`RedisManager::through_sentinels` under a `RedisService`),
//! deadpool-redis's Sentinel pool and redis-rs's `SentinelClient` (one
//! multiplexed connection from it, shared by the writers), each with a
//! master, a replica and three Sentinels of its own. `SENTINEL FAILOVER`
//! promotes the replica; the old master keeps acknowledging writes until
//! Sentinel turns it into a replica of the new one, and those writes are
//! lost.
//!
//! Each writer sets the next key under a 1 s deadline, 10 ms of pause
//! after a failure; the load runs 3 s past `+switch-master`. The table:
//! writes acknowledged, failed, how long after `+switch-master` the first
//! write reached the new master, and the acknowledged writes the new
//! master does not have (lost), in all and after `+switch-master`.
//!
//! ```text
//! cargo run --release --features redis --example redis_failover
//! ```

#[path = "support/redis_server.rs"]
mod redis_support;
#[path = "support/writers.rs"]
mod writers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use connpool::Pool;
use connpool::managers::redis::{RedisManager, RedisService};
use deadpool_redis::redis::AsyncCommands;
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis_support::Fleet;
use writers::{BoxError, DEADLINE, WRITERS, Write, Writers};

const MASTER: &str = "mymaster";
const CLIENTS: [&str; 3] = [
    "connpool",
    "deadpool-redis Sentinel pool",
    "redis-rs SentinelClient",
];

fn main() -> Result<(), BoxError> {
    writers::main(run())
}

async fn run() -> Result<(), BoxError> {
    println!(
        "Redis Sentinel failover ({WRITERS} writers, each SET under a {DEADLINE:?} deadline, 3 s \
         past +switch-master)\n"
    );
    println!(
        "| client | acknowledged | failed | first write on the new master after +switch-master | acknowledged writes lost | of which after +switch-master |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for name in CLIENTS {
        let fleet = Fleet::start(MASTER)
            .await
            .ok_or("no redis-server (`apt-get install redis-server`)")?;
        let row = failover(name, &fleet).await?;
        println!("| {name} | {row} |");
    }
    Ok(())
}

/// One client's run, as its table row.
async fn failover(name: &str, fleet: &Fleet) -> Result<String, BoxError> {
    let set = client(name, fleet).await?;
    let writers = Writers::start(&set);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let switched = fleet.fail_over().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (acked, failed) = writers.stop().await;
    let mut on_new = fleet.replica.observer().await;
    let (mut first, mut lost, mut lost_after) = (None, 0, 0);
    for chunk in acked.chunks(1000) {
        let mut exists = redis::pipe();
        for (id, _) in chunk {
            exists.exists(key(*id));
        }
        let there: Vec<bool> = exists.query_async(&mut on_new).await?;
        for (&(_, at), there) in chunk.iter().zip(there) {
            let after = at > switched;
            if there && after {
                first = Some(first.map_or(at, |f: Instant| f.min(at)));
            }
            lost += usize::from(!there);
            lost_after += usize::from(!there && after);
        }
    }
    let first = first.map_or("never".to_owned(), |at| format!("{:.1?}", at - switched));
    Ok(format!(
        "{} | {} | {first} | {lost} | {lost_after}",
        acked.len(),
        failed
    ))
}

/// The key write `id` sets.
fn key(id: u64) -> String {
    format!("w:{id}")
}

/// The client `name`'s `SET w:<id> 1`.
async fn client(name: &str, fleet: &Fleet) -> Result<Write, BoxError> {
    let sentinels = fleet.sentinel_addrs();
    let urls: Vec<String> = sentinels.iter().map(|s| format!("redis://{s}")).collect();
    Ok(match name {
        "connpool" => {
            let manager = RedisManager::from_url("redis://127.0.0.1/0")?
                .through_sentinels(MASTER, &sentinels)?;
            let master = manager.key();
            let pool = Pool::builder(manager).build().await?;
            let service = RedisService::new(pool, master);
            Arc::new(move |id| {
                let mut redis = service.clone();
                Box::pin(async move {
                    redis.set::<_, _, ()>(key(id), 1).await?;
                    Ok(())
                })
            })
        }
        "deadpool-redis Sentinel pool" => {
            let config = deadpool_redis::sentinel::Config::from_urls(
                urls,
                MASTER.to_owned(),
                deadpool_redis::sentinel::SentinelServerType::Master,
            );
            let pool = config.create_pool(Some(deadpool_redis::Runtime::Tokio1))?;
            Arc::new(move |id| {
                let pool = pool.clone();
                Box::pin(async move {
                    pool.get().await?.set::<_, _, ()>(key(id), 1).await?;
                    Ok(())
                })
            })
        }
        _ => {
            let mut sentinel =
                SentinelClient::build(urls, MASTER.to_owned(), None, SentinelServerType::Master)?;
            let conn = sentinel.get_async_connection().await?;
            Arc::new(move |id| {
                let mut conn = conn.clone();
                Box::pin(async move {
                    conn.set::<_, _, ()>(key(id), 1).await?;
                    Ok(())
                })
            })
        }
    })
}
