//! Pooled connections against a new connection per request,
//! for three protocols, each request a real round trip on loopback:
//!
//! - **TCP echo**: 64 bytes out, the same 64 back (an in-process echo
//!   server). Naive: `TcpStream::connect`, one round trip, close. Pooled:
//!   the crate's `TcpManager`.
//! - **PostgreSQL `SELECT 1`**: the server of `DATABASE_URL`, else a
//!   throwaway PostgreSQL started for the run (`examples/support/pg_server.rs`: needs the
//!   server binaries, `apt-get install postgresql`); skipped, with the
//!   reason, if neither is there. Naive: `tokio_postgres::connect`, one
//!   query, close. Pooled: `PostgresManager`.
//! - **gRPC unary**: `grpc.health.v1.Health/Check` against an in-process
//!   tonic server. Naive: `Endpoint::connect` (a fresh `Channel`), one call,
//!   drop. Pooled: `GrpcManager` (one HTTP/2 connection lent shared). Then,
//!   for reference, the same calls without a pool on one tonic `Channel`
//!   made beforehand and shared by all tasks: the most pooling could give.
//!
//! - **WebSocket echo**: 64 bytes out in a binary message, the same back
//!   (an in-process tokio-tungstenite server). Naive: `WsManager::connect`
//!   (TCP dial and the opening handshake), one round trip, drop. Pooled:
//!   `WsManager`.
//! - **HTTP/1.1 GET** against a throwaway nginx (`return 200`; needs
//!   `apt-get install nginx`, else the row is skipped with the reason).
//!   Naive: `HttpManager::connect` for every request, one GET, drop.
//!   Pooled: `HttpManager` (keep-alive, one request at a time per
//!   connection).
//! - **Redis `GET`** of 64 bytes: a throwaway `redis-server` started for
//!   the run (`apt-get install redis-server`; skipped, with the reason, if
//!   it is missing). Naive: `RedisManager::connect` for every command (TCP
//!   dial and redis-rs's setup), one `GET`, drop. Pooled: `RedisManager`
//!   (one multiplexed connection lent shared).
//!
//! - **Over TLS** (rustls, a certificate made at start-up for localhost):
//!   TCP echo, an HTTP/1.1 GET (an in-process hyper server), an HTTP/2 GET, the gRPC `Check`, PostgreSQL `SELECT 1`
//!   (a throwaway server with `ssl = on`) and the WebSocket echo (`wss`). Naive: the same manager's
//!   `connect` for every request (TCP dial and TLS handshake), one request,
//!   drop. Pooled: `TcpManager::tls`, `HttpManager::tls`, `HttpManager::tls`, `GrpcManager::tls`,
//!   `PostgresManager::with_tls`, `WsManager::tls`.
//!
//! Both sides run the same number of requests from the same number of
//! concurrent tasks; the pools have the default configuration. Prints
//! throughput, p50 / p99 latency (every request timed) and connections
//! opened, the pooled/naive ratios, and writes an SVG chart.
//!
//! ```text
//! cargo run --release --all-features --example pooled_vs_naive
//! cargo run --release --all-features --example pooled_vs_naive -- --quick --quiet
//! cargo run --release --all-features --example pooled_vs_naive -- --only tcp,grpc --tasks 64 --requests 20000
//! ```

#[path = "pooled_vs_naive/protocols.rs"]
mod protocols;
#[path = "pooled_vs_naive/report.rs"]
mod report;
#[path = "support/mod.rs"]
mod support;

use protocols::*;
use report::*;

use support::tls;

use std::future::Future;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use connpool::Pool;
use connpool::managers::Origin;
use connpool::managers::grpc::GrpcManager;
use connpool::managers::http::{HttpConn, HttpManager};

/// A pooled gRPC connection: HTTP/2 for tonic's body.
type GrpcConn = HttpConn<tonic::body::Body>;
use connpool::managers::postgres::{PostgresManager, tls_connector};
use connpool::managers::redis::{RedisConn, RedisManager};
use connpool::managers::tcp::{Destination, TcpConn, TcpManager};
use connpool::managers::tls::TlsConfig;
use connpool::managers::websocket::{WsConn, WsManager, WsUrl};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use support::BoxError;
use tokio::net::TcpStream;
use tokio_postgres::NoTls;

/// Pooled connections vs a new connection per request: TCP echo (64 B),
/// PostgreSQL `SELECT 1`, gRPC health `Check` and Redis `GET`, on loopback.
///
/// Starts its own servers (PostgreSQL: `DATABASE_URL`, else a throwaway
/// server if its binaries are installed, else that row is skipped), runs
/// each protocol naive then pooled with the same requests and concurrency,
/// prints a table and writes an SVG chart.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Concurrent tasks, the same in both modes [default: 32; with --quick: 8].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    tasks: Option<u32>,
    /// Requests per protocol and mode [default: TCP 60000, PostgreSQL 4000,
    /// gRPC 20000, WebSocket 20000, Redis 20000, over TLS 8000 (PostgreSQL
    /// 2000); with --quick: 2000, 200, 1000, 1000, 1000, over TLS 400 (100)].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,
    /// A CI-sized run (seconds): fewer requests and tasks.
    #[arg(long)]
    quick: bool,
    /// Where to write the SVG chart [default: pooled_vs_naive.svg in the
    /// cargo target directory].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Protocols to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "tcp,pg,grpc,http1,ws,redis,tcp-tls,http1-tls,http2-tls,grpc-tls,pg-tls,wss"
    )]
    only: Vec<Proto>,
    /// No progress bars (they are hidden anyway when stdout is not a terminal).
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Proto {
    /// TCP echo, 64 bytes.
    Tcp,
    /// PostgreSQL `SELECT 1`.
    #[value(alias = "postgres")]
    Pg,
    /// gRPC health `Check`.
    Grpc,
    /// HTTP/1.1 GET against nginx.
    Http1,
    /// Redis `GET`, 64 bytes.
    Redis,
    /// TCP echo, 64 bytes, over TLS.
    TcpTls,
    /// HTTP/1.1 GET over TLS.
    Http1Tls,
    /// HTTP/2 GET over TLS.
    Http2Tls,
    /// gRPC health `Check` over TLS.
    GrpcTls,
    /// PostgreSQL `SELECT 1` over TLS (a throwaway server only).
    PgTls,
    /// WebSocket echo, 64 bytes.
    Ws,
    /// WebSocket echo, 64 bytes, over TLS.
    Wss,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP echo 64 B",
            Proto::Pg => "PostgreSQL SELECT 1",
            Proto::Grpc => "gRPC health Check",
            Proto::Http1 => "HTTP/1.1 GET (nginx)",
            Proto::Redis => "Redis GET 64 B",
            Proto::TcpTls => "TLS: TCP echo 64 B",
            Proto::Http1Tls => "TLS: HTTP/1.1 GET",
            Proto::Http2Tls => "TLS: HTTP/2 GET",
            Proto::GrpcTls => "TLS: gRPC Check",
            Proto::PgTls => "TLS: PostgreSQL",
            Proto::Ws => "WebSocket echo 64 B",
            Proto::Wss => "TLS: WebSocket echo",
        }
    }

    /// Requests per mode: (full run, quick run).
    fn requests(self) -> (u64, u64) {
        match self {
            Proto::Tcp => (60_000, 2_000),
            Proto::Pg => (4_000, 200),
            Proto::Grpc | Proto::Http1 => (20_000, 1_000),
            Proto::Redis => (20_000, 1_000),
            Proto::TcpTls | Proto::Http1Tls | Proto::Http2Tls | Proto::GrpcTls => (8_000, 400),
            Proto::PgTls => (2_000, 100),
            Proto::Ws => (20_000, 1_000),
            Proto::Wss => (8_000, 400),
        }
    }
}

/// One mode's run.
struct Measured {
    requests: u64,
    elapsed: Duration,
    /// Of the successful requests, sorted.
    latencies: Vec<Duration>,
    connections: u64,
    errors: u64,
    first_error: Option<String>,
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

/// One protocol: naive and pooled.
struct Row {
    proto: Proto,
    naive: Measured,
    pooled: Measured,
}

impl Row {
    fn throughput_ratio(&self) -> f64 {
        self.pooled.rate() / self.naive.rate()
    }

    fn p99_ratio(&self) -> f64 {
        self.naive.quantile(0.99).as_secs_f64() / self.pooled.quantile(0.99).as_secs_f64()
    }
}

/// A progress bar on stderr, or a hidden one.
fn progress_bar(show: bool, requests: u64, label: &'static str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{msg:<18} [{bar:30}] {pos:>6}/{len:<6} {elapsed:>4}")
        .expect("a valid template")
        .progress_chars("=> ");
    ProgressBar::with_draw_target(Some(requests), ProgressDrawTarget::stderr())
        .with_style(style)
        .with_message(label)
}

/// Runs `requests` calls of `one` from `tasks` concurrent tasks, timing each.
async fn drive<F, Fut>(
    label: &'static str,
    tasks: u32,
    requests: u64,
    show: bool,
    one: F,
) -> Measured
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send,
{
    let bar = progress_bar(show, requests, label);
    let tasks = u64::from(tasks).min(requests);
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..tasks {
        let n = requests / tasks + u64::from(i < requests % tasks);
        let one = one.clone();
        let bar = bar.clone();
        set.spawn(async move {
            let mut latencies = Vec::with_capacity(n as usize);
            let (mut errors, mut first_error) = (0, None);
            for _ in 0..n {
                let t = Instant::now();
                match one().await {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                }
                bar.inc(1);
            }
            (latencies, errors, first_error)
        });
    }
    let mut m = Measured {
        requests,
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(requests as usize),
        connections: 0,
        errors: 0,
        first_error: None,
    };
    while let Some(done) = set.join_next().await {
        let (latencies, errors, first_error) = done.expect("a request task panicked");
        m.latencies.extend(latencies);
        m.errors += errors;
        m.first_error = m.first_error.or(first_error);
    }
    m.elapsed = start.elapsed();
    m.latencies.sort_unstable();
    bar.finish_and_clear();
    m
}

/// One request on a connection.
type OneFut<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + 'a>>;

/// Naive: `connect` of the same manager for every request (TCP dial, TLS
/// handshake, then one round trip), dropped after it. Pooled: the pool of
/// that manager, default configuration.
async fn naive_and_pooled<M, F>(
    labels: (&'static str, &'static str),
    manager: M,
    key: M::Key,
    (tasks, requests, show): (u32, u64, bool),
    one: F,
) -> Result<(Measured, Measured), BoxError>
where
    M: connpool::Manager + Clone,
    F: for<'a> Fn(&'a mut M::Connection) -> OneFut<'a> + Clone + Send + Sync + 'static,
{
    let mut naive = drive(labels.0, tasks, requests, show, {
        let (manager, key, one) = (manager.clone(), key.clone(), one.clone());
        move || {
            let (manager, key, one) = (manager.clone(), key.clone(), one.clone());
            async move {
                let mut conn = manager.connect(&key).await?;
                one(&mut conn).await
            }
        }
    })
    .await;
    naive.connections = naive.requests;
    let pool = Pool::builder(manager).build().await?;
    let mut pooled = drive(labels.1, tasks, requests, show, {
        let pool = pool.clone();
        move || {
            let (pool, key, one) = (pool.clone(), key.clone(), one.clone());
            async move {
                let mut conn = pool.get_for(&key).await?;
                one(&mut conn).await
            }
        }
    })
    .await;
    pooled.connections = pool.state().counters.dials;
    pool.close().await;
    Ok((naive, pooled))
}

/// `<target dir>/pooled_vs_naive.svg`: the example runs from
/// `<target dir>/<profile>/examples/`.
fn default_out() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("pooled_vs_naive.svg")
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let tasks = args.tasks.unwrap_or(if args.quick { 8 } else { 32 });
    let out = args.out.clone().unwrap_or_else(default_out);
    let show = !args.quiet && std::io::stdout().is_terminal();
    println!(
        "pooled vs naive dialing: {tasks} concurrent tasks, servers on 127.0.0.1{}",
        if args.quick { " (quick run)" } else { "" }
    );

    let mut rows = Vec::new();
    let pki = tls::Pki::new()?;
    let all = [
        Proto::Tcp,
        Proto::Pg,
        Proto::Grpc,
        Proto::Http1,
        Proto::Ws,
        Proto::Redis,
        Proto::TcpTls,
        Proto::Http1Tls,
        Proto::Http2Tls,
        Proto::GrpcTls,
        Proto::PgTls,
        Proto::Wss,
    ];
    for proto in all {
        if !args.only.contains(&proto) {
            continue;
        }
        let (full, quick) = proto.requests();
        let requests = args
            .requests
            .unwrap_or(if args.quick { quick } else { full });
        let row = match proto {
            Proto::Tcp => tcp(tasks, requests, show).await,
            Proto::Pg => postgres(tasks, requests, show).await,
            Proto::Grpc => grpc(tasks, requests, show).await,
            Proto::Http1 => http1(tasks, requests, show).await,
            Proto::Http1Tls => http1_tls(&pki, tasks, requests, show).await,
            Proto::Redis => redis_get(tasks, requests, show).await,
            Proto::TcpTls => tcp_tls(&pki, tasks, requests, show).await,
            Proto::Http2Tls => http2_tls(&pki, tasks, requests, show).await,
            Proto::GrpcTls => grpc_tls(&pki, tasks, requests, show).await,
            Proto::PgTls => postgres_tls(&pki, tasks, requests, show).await,
            Proto::Ws => ws(tasks, requests, show).await,
            Proto::Wss => wss(&pki, tasks, requests, show).await,
        };
        match row {
            Ok(row) => rows.push(row),
            Err(e) => println!("{}: skipped: {e}", proto.name()),
        }
    }
    if rows.is_empty() {
        println!("nothing measured");
        return Ok(());
    }
    print_table(&rows);
    if args.quick {
        println!("(quick run: too few requests for figures to quote; run without --quick)");
    }
    chart(&rows, tasks, &out)?;
    println!("\nchart: {}", out.display());
    let failed: u64 = rows.iter().map(|r| r.naive.errors + r.pooled.errors).sum();
    if failed > 0 {
        return Err(format!("{failed} requests failed").into());
    }
    Ok(())
}
