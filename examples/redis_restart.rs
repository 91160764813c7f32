//! A Redis server killed (`SIGKILL`) under load and started again on its
//! port a second later (or, with `--fault freeze`, frozen with `SIGSTOP`
//! and thawed a second later), as each client lives it, all at the same
//! instant:
//! connpool (`RedisManager`, shared lending, its defaults), redis-rs's
//! `ConnectionManager` (one multiplexed connection that reconnects itself)
//! and deadpool-redis (a pool of 16, its defaults). Each client has a
//! throwaway `redis-server` of its own behind a proxy of its own that
//! counts the connections it is asked for (the attempts, those refused
//! while the server is down included); the servers are killed (frozen)
//! together and started (thawed) together.
//!
//! Each client runs 8 tasks in a loop: a `GET` under a 1 s deadline
//! (`tokio::time::timeout`, which every client honours alike), and 10 ms
//! of pause after a failure (a client that retries, not one that spins).
//! Prints, per client: the requests in flight at the kill, the requests
//! that failed while the server was down and after it was back, the time
//! from its return to the first success, the longest request (against the
//! deadline), and the connections asked for from the kill to the end.
//!
//! ```text
//! cargo run --release --features redis --example redis_restart
//! cargo run --release --features redis --example redis_restart -- --fault freeze
//! cargo run --release --features redis --example redis_restart -- --quick
//! ```

#[path = "support/redis_server.rs"]
mod redis_support;
#[path = "support/restart_load.rs"]
mod restart_load;

use std::sync::Arc;

use connpool::Pool;
use connpool::managers::redis::RedisManager;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis_support::RedisServer;
use restart_load::{BoxError, Proxy, Request, Server};

impl Server for RedisServer {
    fn kill(&mut self) {
        RedisServer::kill(self);
    }
    fn start(&mut self) {
        RedisServer::start(self);
    }
    fn signal(&self, signal: &str) {
        RedisServer::signal(self, signal);
    }
}

async fn get<C: ConnectionLike>(conn: &mut C) -> Result<(), BoxError> {
    let _: Option<Vec<u8>> = redis::cmd("GET").arg("k").query_async(conn).await?;
    Ok(())
}

fn main() -> Result<(), BoxError> {
    restart_load::main(|args, ns| async move {
        let names = [
            "connpool (shared)",
            "redis-rs ConnectionManager",
            "deadpool-redis",
        ];
        let mut servers = Vec::new();
        let mut proxies = Vec::new();
        for _ in names {
            let server = tokio::task::spawn_blocking(RedisServer::new)
                .await?
                .ok_or("redis-server is missing (`apt-get install redis-server`)")?;
            proxies.push(Proxy::start(server.addr()).await?);
            servers.push(server);
        }
        let url = |i: usize| format!("redis://{}/", proxies[i].addr);

        let manager: RedisManager = url(0).parse()?;
        let key = manager.key();
        let pool = Pool::builder(manager).build().await?;
        let cm = ConnectionManager::new(redis::Client::open(url(1))?).await?;
        let deadpool = deadpool_redis::Config::from_url(url(2))
            .builder()?
            .max_size(16)
            .runtime(deadpool_redis::Runtime::Tokio1)
            .build()?;
        let requests: Vec<Request> = vec![
            Arc::new(move || {
                let (pool, key) = (pool.clone(), key.clone());
                Box::pin(async move { get(&mut *pool.get_for(&key).await?).await })
            }),
            Arc::new(move || {
                let mut cm = cm.clone();
                Box::pin(async move { get(&mut cm).await })
            }),
            Arc::new(move || {
                let pool = deadpool.clone();
                Box::pin(async move { get(&mut pool.get().await?).await })
            }),
        ];

        restart_load::run(
            &args,
            ns,
            "Redis, a GET",
            &names,
            servers,
            &proxies,
            requests,
        )
        .await
    })
}
