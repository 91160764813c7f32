//! A Redis server killed (`SIGKILL`) under load and started again on its
//! port a second later, as each client lives it, all at the same instant:
//! connpool (`RedisManager`, shared lending, its defaults), redis-rs's
//! `ConnectionManager` (one multiplexed connection that reconnects itself)
//! and deadpool-redis (a pool of 16, its defaults). Each client has a
//! throwaway `redis-server` of its own behind a proxy of its own that
//! counts the connections it is asked for (the attempts, those refused
//! while the server is down included); the servers are killed together
//! and started together.
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
//! cargo run --release --features redis --example redis_restart -- --quick
//! ```

#[path = "support/redis_server.rs"]
mod redis_support;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use connpool::Pool;
use connpool::managers::redis::RedisManager;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis_support::RedisServer;
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Request =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> + Send + Sync>;

/// Every request's deadline.
const DEADLINE: Duration = Duration::from_secs(1);
/// Tasks per client.
const TASKS: usize = 8;

/// A Redis server restart under load, connpool beside its peers.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// A CI-sized run (the server down 0.5 s, 1 s after).
    #[arg(long)]
    quick: bool,
}

/// A TCP proxy that counts the connections clients ask it for, and passes
/// each to the server (closing it at once if the server is down).
struct Proxy {
    addr: SocketAddr,
    asked: Arc<AtomicUsize>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Result<Proxy, BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let asked = Arc::new(AtomicUsize::new(0));
        let count = asked.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = outbound.set_nodelay(true);
                        let _ = inbound.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Ok(Proxy { addr, asked })
    }
}

/// One request's outcome: when it began and ended, and whether it worked.
struct Outcome {
    began: Instant,
    ended: Instant,
    ok: bool,
}

/// Runs `request` from [`TASKS`] tasks until `stop`, each request under
/// [`DEADLINE`].
fn load(request: Request, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<Vec<Outcome>>> {
    (0..TASKS)
        .map(|_| {
            let (request, stop) = (request.clone(), stop.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    let ok = matches!(tokio::time::timeout(DEADLINE, request()).await, Ok(Ok(())));
                    outcomes.push(Outcome {
                        began,
                        ended: Instant::now(),
                        ok,
                    });
                    if !ok {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                outcomes
            })
        })
        .collect()
}

async fn get<C: ConnectionLike>(conn: &mut C) -> Result<(), BoxError> {
    let _: Option<Vec<u8>> = redis::cmd("GET").arg("k").query_async(conn).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let (warm, down, after) = if args.quick {
        (
            Duration::from_millis(500),
            Duration::from_millis(500),
            Duration::from_secs(1),
        )
    } else {
        (
            Duration::from_secs(1),
            Duration::from_secs(1),
            Duration::from_secs(3),
        )
    };
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

    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| load(request, stop.clone()))
        .collect();
    tokio::time::sleep(warm).await;
    let asked_before: Vec<usize> = proxies
        .iter()
        .map(|p| p.asked.load(Ordering::SeqCst))
        .collect();
    let (mut servers, killed) = tokio::task::spawn_blocking(move || {
        let killed = Instant::now();
        for server in &mut servers {
            server.kill();
        }
        (servers, killed)
    })
    .await?;
    tokio::time::sleep(down).await;
    let (servers, back) = tokio::task::spawn_blocking(move || {
        for server in &mut servers {
            server.start();
        }
        // Each start returns once its server is ready: the last is back
        // when all are.
        (servers, Instant::now())
    })
    .await?;
    tokio::time::sleep(after).await;
    stop.store(true, Ordering::Relaxed);

    println!(
        "Redis killed under load ({TASKS} tasks per client, each GET under a {DEADLINE:?} deadline), \
         down {down:?}, then {after:?} more"
    );
    println!(
        "\n| client | in flight at the kill | failed while down | failed after back | first success after back | longest request | connections asked for |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut connpool_failed_after = 0;
    for (i, handles) in tasks.into_iter().enumerate() {
        let mut outcomes = Vec::new();
        for handle in handles {
            outcomes.extend(handle.await?);
        }
        let in_flight = outcomes
            .iter()
            .filter(|o| o.began < killed && o.ended > killed)
            .count();
        let failed_down = outcomes
            .iter()
            .filter(|o| !o.ok && o.began >= killed && o.began < back)
            .count();
        let failed_after = outcomes.iter().filter(|o| !o.ok && o.began >= back).count();
        let first = outcomes
            .iter()
            .filter(|o| o.ok && o.ended >= back)
            .map(|o| o.ended - back)
            .min();
        let longest = outcomes
            .iter()
            .map(|o| o.ended - o.began)
            .max()
            .unwrap_or_default();
        let asked = proxies[i].asked.load(Ordering::SeqCst) - asked_before[i];
        println!(
            "| {} | {in_flight} | {failed_down} | {failed_after} | {} | {longest:.0?} | {asked} |",
            names[i],
            first.map_or("none".to_owned(), |d| format!("{d:.0?}")),
        );
        if i == 0 {
            connpool_failed_after = failed_after;
            assert!(first.is_some(), "connpool served nothing after the restart");
            assert!(
                longest < DEADLINE + Duration::from_millis(100),
                "a connpool request outlived its deadline: {longest:?}"
            );
        }
    }
    if args.quick {
        println!("(quick run: too short for figures to quote)");
    }
    drop(servers);
    println!("\nconnpool: {connpool_failed_after} requests failed after the server was back");
    Ok(())
}
