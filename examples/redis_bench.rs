//! Redis clients and pools side by side, in the same run: tasks doing
//! `GET` of a 64-byte value against a throwaway `redis-server` on
//! 127.0.0.1 (`apt-get install redis-server`), for a fixed time each, in
//! rounds (the clients taking turns, each round starting with the next
//! client, in an order that changes from round to round: see
//! `support/turns.rs`).
//!
//! - **connpool, shared**: `RedisManager`, default configuration: one
//!   multiplexed connection lent to many borrowers at once.
//! - **connpool, exclusive**: the same, an exclusive key
//!   (`RedisKey::exclusive`), `max_open_per_key` 16: one borrower per
//!   connection, `RESET` on return.
//! - **one `MultiplexedConnection`**, cloned by every task (no pool).
//! - **redis-rs `ConnectionManager`**, cloned by every task.
//! - **deadpool-redis** and **bb8-redis**, pools of 16, default otherwise.
//!
//! Every client dials with `TCP_NODELAY` on: connpool's default, and that
//! of the major Redis clients (redis-rs's from its 2.0 on). `--nagle` dials
//! them all with Nagle's algorithm on instead (redis-rs 1.x's default,
//! as in the redis 1.8.1 used here), which on loopback batches a
//! multiplexed connection's commands and lifts every shared client alike;
//! on a real network it holds commands back for the server's ACKs.
//!
//! Prints, per client: requests per second, p99 and longest request
//! latency, the connections the server saw (`CLIENT LIST`), and errors.
//!
//! ```text
//! cargo run --release --features redis --example redis_bench
//! cargo run --release --features redis --example redis_bench -- --tasks 64 --seconds 3 --rounds 3
//! cargo run --release --features redis --example redis_bench -- --quick
//! ```

#[path = "support/redis_server.rs"]
mod redis_support;
#[path = "support/turns.rs"]
mod turns;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use connpool::Pool;
use connpool::managers::redis::{RedisKey, RedisManager};
use connpool::managers::tcp::TcpManager;
use redis::IntoConnectionInfo;
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::io::tcp::TcpSettings;
use redis_support::{RedisServer, clients};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Redis clients and pools side by side: GET 64 B from many tasks.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Concurrent tasks [default: 64; with --quick: 16].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    tasks: Option<u32>,
    /// Seconds per client and round [default: 3; with --quick: 0.5].
    #[arg(long)]
    seconds: Option<f64>,
    /// Rounds: each runs every client once, in turn, so that a busy
    /// machine weighs on all of them alike [default: 3; with --quick: 1].
    #[arg(long)]
    rounds: Option<u32>,
    /// Connections of the exclusive pools (connpool exclusive,
    /// deadpool-redis, bb8-redis).
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
    /// A CI-sized run.
    #[arg(long)]
    quick: bool,
    /// Only the clients whose name contains this (`shared`, `deadpool`, …).
    #[arg(long)]
    only: Option<String>,
    /// Dial every client with Nagle's algorithm on (`TCP_NODELAY` off).
    #[arg(long)]
    nagle: bool,
}

/// One client's run.
struct Measured {
    name: &'static str,
    elapsed: Duration,
    /// Of the successful requests, sorted.
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    connections: usize,
    /// Requests per second of each round.
    rates: Vec<f64>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((self.latencies.len() as f64 * q).ceil() as usize).max(1);
        self.latencies[rank.min(self.latencies.len()) - 1]
    }
}

/// Runs `one` in a loop from `tasks` tasks for `time`, timing each
/// request; each request is bounded at 5 s (a hung one counts as an
/// error).
async fn drive<F, Fut>(name: &'static str, tasks: u32, time: Duration, one: F) -> Measured
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send,
{
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let one = one.clone();
        set.spawn(async move {
            let mut latencies = Vec::new();
            let (mut errors, mut first_error) = (0, None);
            while start.elapsed() < time {
                let t = Instant::now();
                match tokio::time::timeout(Duration::from_secs(5), one()).await {
                    Ok(Ok(())) => latencies.push(t.elapsed()),
                    Ok(Err(e)) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                    Err(_) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| "no answer in 5 s".to_owned());
                    }
                }
            }
            (latencies, errors, first_error)
        });
    }
    let mut m = Measured {
        name,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        errors: 0,
        first_error: None,
        connections: 0,
        rates: Vec::new(),
    };
    while let Some(done) = set.join_next().await {
        let (latencies, errors, first_error) = done.expect("a request task panicked");
        m.latencies.extend(latencies);
        m.errors += errors;
        m.first_error = m.first_error.or(first_error);
    }
    m.elapsed = start.elapsed();
    m.latencies.sort_unstable();
    m.rates.push(m.rate());
    m
}

/// `GET k` on any redis-rs connection, checking the value's size.
async fn get<C: ConnectionLike>(conn: &mut C) -> Result<(), BoxError> {
    let value: Vec<u8> = redis::cmd("GET").arg("k").query_async(conn).await?;
    if value.len() != 64 {
        return Err(format!("{} bytes back", value.len()).into());
    }
    Ok(())
}

/// The connections a client holds open, as it counts them.
type Count = Box<dyn Fn() -> usize>;

/// One request of one client.
type Request = Arc<dyn Fn() -> BoxFuture + Send + Sync>;
type BoxFuture = std::pin::Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

fn request<F, Fut>(f: F) -> Request
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    Arc::new(move || Box::pin(f()) as BoxFuture)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let tasks = args.tasks.unwrap_or(if args.quick { 16 } else { 64 });
    let time = Duration::from_secs_f64(args.seconds.unwrap_or(if args.quick { 0.5 } else { 3.0 }));
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 });
    let size = args.pool_size;
    let server = tokio::task::spawn_blocking(RedisServer::new)
        .await?
        .ok_or("redis-server is missing (`apt-get install redis-server`)")?;
    let version = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!(
        "{version}\n{tasks} tasks, GET of 64 B, {rounds} rounds of {time:?} per client (interleaved), exclusive pools of {size}"
    );
    let url = server.url("");
    let mut setup = server.observer().await;
    redis::cmd("SET")
        .arg("k")
        .arg([b'x'; 64].as_slice())
        .exec_async(&mut setup)
        .await?;
    drop(setup);

    let nodelay = !args.nagle;
    let manager: RedisManager = url.parse()?;
    let manager = manager.with_tcp(TcpManager::new().nodelay(nodelay));
    // Kept by the caller for the whole run, as an application keeps its
    // keys: a get borrows one, and a request clones only its client (the
    // pool), as every other client's request clones its own.
    let shared: &'static RedisKey = Box::leak(Box::new(manager.key()));
    let exclusive: &'static RedisKey = Box::leak(Box::new(shared.clone().exclusive()));
    let info = url
        .as_str()
        .into_connection_info()?
        .set_tcp_settings(TcpSettings::default().set_nodelay(nodelay));
    let pool = Pool::builder(manager)
        .max_open_per_key(size as usize)
        .build()
        .await?;
    let client = redis::Client::open(info.clone())?;
    let one: MultiplexedConnection = client.get_multiplexed_async_connection().await?;
    let manager = ConnectionManager::new(client.clone()).await?;
    let deadpool = deadpool_redis::Pool::builder(deadpool_redis::Manager::new(info.clone())?)
        .max_size(size as usize)
        .runtime(deadpool_redis::Runtime::Tokio1)
        .build()?;
    let bb8 = bb8_redis::bb8::Pool::builder()
        .max_size(size)
        .build(bb8_redis::RedisConnectionManager::new(info)?)
        .await?;
    // The two connpool clients are keys of one pool: each key has its own
    // connections (the server's count is per client, so they run apart).
    let counts: Vec<Count> = vec![
        Box::new({
            let pool = pool.clone();
            move || pool.key_state(shared).map_or(0, |k| k.open)
        }),
        Box::new({
            let pool = pool.clone();
            move || pool.key_state(exclusive).map_or(0, |k| k.open)
        }),
        Box::new(|| 1),
        Box::new(|| 1),
        Box::new({
            let pool = deadpool.clone();
            move || pool.status().size
        }),
        Box::new({
            let pool = bb8.clone();
            move || pool.state().connections as usize
        }),
    ];
    let clients_: Vec<(&'static str, Request)> = vec![
        ("connpool, shared", {
            let pool = pool.clone();
            request(move || {
                let pool = pool.clone();
                async move { get(&mut *pool.get_for(shared).await?).await }
            })
        }),
        ("connpool, exclusive", {
            let pool = pool.clone();
            request(move || {
                let pool = pool.clone();
                async move { get(&mut *pool.get_for(exclusive).await?).await }
            })
        }),
        ("one MultiplexedConnection", {
            request(move || {
                let mut conn = one.clone();
                async move { get(&mut conn).await }
            })
        }),
        ("redis-rs ConnectionManager", {
            request(move || {
                let mut conn = manager.clone();
                async move { get(&mut conn).await }
            })
        }),
        ("deadpool-redis", {
            request(move || {
                let pool = deadpool.clone();
                async move { get(&mut pool.get().await?).await }
            })
        }),
        ("bb8-redis", {
            request(move || {
                let pool = bb8.clone();
                async move { get(&mut *pool.get().await?).await }
            })
        }),
    ];
    let mut rows: Vec<Option<Measured>> = clients_.iter().map(|_| None).collect();
    for round in 0..rounds {
        for i in turns::turns(clients_.len(), round as usize) {
            let (name, one) = &clients_[i];
            if args
                .only
                .as_ref()
                .is_some_and(|only| !name.contains(only.as_str()))
            {
                continue;
            }
            let one = Arc::clone(one);
            let mut m = drive(name, tasks, time, move || one()).await;
            m.connections = counts[i]();
            if let Some(row) = &mut rows[i] {
                row.rates.extend(m.rates);
                row.elapsed += m.elapsed;
                row.latencies.extend(m.latencies);
                row.errors += m.errors;
                row.first_error = row.first_error.take().or(m.first_error);
                row.connections = row.connections.max(m.connections);
            } else {
                rows[i] = Some(m);
            }
        }
    }
    for row in rows.iter_mut().flatten() {
        row.latencies.sort_unstable();
    }
    let mut observer = server.observer().await;
    println!(
        "the server's connections at the end, all clients together: {}",
        clients(&mut observer).await.len()
    );

    println!(
        "\n{:<28} {:>10} {:>19} {:>9} {:>9} {:>11} {:>7}",
        "client", "req/s", "rounds' req/s", "p99", "longest", "connections", "errors"
    );
    for m in rows.iter().flatten() {
        let lo = m.rates.iter().copied().fold(f64::MAX, f64::min);
        let hi = m.rates.iter().copied().fold(0.0, f64::max);
        println!(
            "{:<28} {:>10.0} {:>19} {:>9} {:>9} {:>11} {:>7}",
            m.name,
            m.rate(),
            format!("{:.0}k–{:.0}k", lo / 1e3, hi / 1e3),
            format!("{:.2?}", m.quantile(0.99)),
            format!("{:.2?}", m.latencies.last().copied().unwrap_or_default()),
            m.connections,
            m.errors
        );
    }
    let rate = |i: usize| rows[i].as_ref().map(Measured::rate);
    if let (Some(shared), Some(exclusive), Some(one), Some(deadpool)) =
        (rate(0), rate(1), rate(2), rate(4))
    {
        println!(
            "\nconnpool shared: {:.2}× one MultiplexedConnection, {:.1}× deadpool-redis; connpool exclusive: {:.2}× deadpool-redis",
            shared / one,
            shared / deadpool,
            exclusive / deadpool
        );
    }
    if args.quick {
        println!("(quick run: too short for figures to quote)");
    }
    // Only connpool's failures fail the run (CI runs it): the other
    // clients' are theirs to answer for, and printed.
    let failed: u64 = rows[..2].iter().flatten().map(|m| m.errors).sum();
    for m in rows.iter().flatten().filter(|m| m.errors > 0) {
        println!(
            "{}: {} errors, first: {}",
            m.name,
            m.errors,
            m.first_error.as_deref().unwrap_or("?")
        );
    }
    drop(clients_);
    pool.close().await;
    tokio::task::spawn_blocking(move || drop(server)).await?;
    if failed > 0 {
        return Err(format!("{failed} requests failed").into());
    }
    Ok(())
}
