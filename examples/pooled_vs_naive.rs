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
//!   Naive: `Http1Manager::connect` for every request, one GET, drop.
//!   Pooled: `Http1Manager` (keep-alive, one request at a time per
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
//!   drop. Pooled: `TlsManager`, `Http1Manager::tls`, `Http2Manager::tls`, `GrpcManager::tls`,
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

#[path = "support/mod.rs"]
mod support;

use support::tls;

use std::future::Future;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use connpool::Pool;
use connpool::managers::grpc::GrpcConn;
use connpool::managers::grpc::GrpcManager;
use connpool::managers::http1::{Http1Conn, Http1Manager};
use connpool::managers::http2::{Http2Conn, Http2Manager};
use connpool::managers::postgres::PostgresManager;
use connpool::managers::redis::{RedisConn, RedisManager};
use connpool::managers::tcp::{Destination, TcpManager};
use connpool::managers::tls::{TlsConfig, TlsConn, TlsManager};
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

async fn tcp(tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let (addr, accepted) = support::echo_server().await?;

    let before = accepted.get();
    let mut naive = drive(
        "TCP echo, naive",
        tasks,
        requests,
        show,
        move || async move {
            let mut stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            support::echo_round_trip(&mut stream).await?;
            Ok(())
        },
    )
    .await;
    naive.connections = (accepted.get() - before) as u64;

    let pool = Pool::builder(TcpManager::new()).build().await?;
    let dest = Destination::from(addr);
    let mut pooled = drive("TCP echo, pooled", tasks, requests, show, {
        let pool = pool.clone();
        move || {
            let (pool, dest) = (pool.clone(), dest.clone());
            async move {
                let mut conn = pool.get_for(&dest).await?;
                support::echo_round_trip(&mut conn).await?;
                Ok(())
            }
        }
    })
    .await;
    pooled.connections = pool.state().counters.dials;
    pool.close().await;
    Ok(Row {
        proto: Proto::Tcp,
        naive,
        pooled,
    })
}

async fn postgres(tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let server = tokio::task::spawn_blocking(support::postgres).await??;
    let mut config = server.config();
    config.application_name("connpool-pooled-vs-naive");
    println!("PostgreSQL: {}", server.describe());
    // A server that is there but refuses us is a skip too, not 2 × N failures.
    let probe = tokio::time::timeout(Duration::from_secs(10), config.connect(NoTls)).await;
    match probe {
        Ok(Ok((client, connection))) => {
            let io = tokio::spawn(connection);
            drop(client);
            let _ = io.await;
        }
        Ok(Err(e)) => return Err(format!("cannot connect to {}: {e}", server.describe()).into()),
        Err(_) => return Err(format!("{} did not answer in 10 s", server.describe()).into()),
    }

    let shared = Arc::new(config.clone());
    let naive = drive("PostgreSQL, naive", tasks, requests, show, move || {
        let config = Arc::clone(&shared);
        async move {
            let (client, connection) = config.connect(NoTls).await?;
            let io = tokio::spawn(connection);
            support::select_1(&client).await?;
            drop(client); // sends Terminate; the I/O task then ends
            let _ = io.await;
            Ok(())
        }
    })
    .await;
    let naive = Measured {
        connections: naive.requests,
        ..naive
    };

    let pool = Pool::builder(PostgresManager::new(config).single())
        .build()
        .await?;
    let mut pooled = drive("PostgreSQL, pooled", tasks, requests, show, {
        let pool = pool.clone();
        move || {
            let pool = pool.clone();
            async move {
                let conn = pool.get().await?;
                support::select_1(&conn).await?;
                Ok(())
            }
        }
    })
    .await;
    pooled.connections = pool.state().counters.dials;
    pool.close().await;
    tokio::task::spawn_blocking(move || drop(server)).await?; // stops a throwaway server
    Ok(Row {
        proto: Proto::Pg,
        naive,
        pooled,
    })
}

async fn grpc(tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let (addr, accepted) = support::grpc_server(None).await?;

    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?;
    let before = accepted.get();
    let mut naive = drive("gRPC, naive", tasks, requests, show, move || {
        let endpoint = endpoint.clone();
        async move {
            let channel = endpoint.connect().await?;
            support::health_check(channel).await
        }
    })
    .await;
    naive.connections = (accepted.get() - before) as u64;

    let pool = Pool::builder(GrpcManager::new()).build().await?;
    let dest = Destination::from(addr);
    let mut pooled = drive("gRPC, pooled", tasks, requests, show, {
        let pool = pool.clone();
        move || {
            let (pool, dest) = (pool.clone(), dest.clone());
            async move {
                let conn = pool.get_for(&dest).await?;
                support::health_check(conn.channel().clone()).await
            }
        }
    })
    .await;
    pooled.connections = pool.state().counters.dials;
    pool.close().await;

    // The ceiling for pooled: no pool, one tonic Channel made before the run
    // and shared by every task. Pooled near it means the pool adds nothing
    // that matters; what is left is the cost of a call in tonic and h2.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let shared = drive("gRPC, one channel", tasks, requests, show, move || {
        let channel = channel.clone();
        async move { support::health_check(channel).await }
    })
    .await;
    println!(
        "gRPC without a pool (one tonic Channel shared by all {tasks} tasks): {} calls/s, p99 {}; pooled is {:.2}× that",
        rate(shared.rate()),
        latency(shared.quantile(0.99)),
        pooled.rate() / shared.rate()
    );
    if shared.errors > 0 {
        let first = shared.first_error.as_deref().unwrap_or("?");
        println!("  {} of those calls failed, first: {first}", shared.errors);
    }
    Ok(Row {
        proto: Proto::Grpc,
        naive,
        pooled,
    })
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

async fn redis_get(tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let server = tokio::task::spawn_blocking(support::redis_support::RedisServer::new)
        .await?
        .ok_or("redis-server is missing (`apt-get install redis-server`)")?;
    let mut setup = server.observer().await;
    redis::cmd("SET")
        .arg("k")
        .arg([b'x'; 64].as_slice())
        .exec_async(&mut setup)
        .await?;
    let manager: RedisManager = server.url("").parse()?;
    let key = manager.key();
    let (naive, pooled) = naive_and_pooled(
        ("Redis, naive", "Redis, pooled"),
        manager,
        key,
        (tasks, requests, show),
        |conn: &mut RedisConn| {
            Box::pin(async move {
                let value: Vec<u8> = redis::cmd("GET").arg("k").query_async(conn).await?;
                assert_eq!(value.len(), 64);
                Ok(())
            })
        },
    )
    .await?;
    tokio::task::spawn_blocking(move || drop(server)).await?;
    Ok(Row {
        proto: Proto::Redis,
        naive,
        pooled,
    })
}

async fn tcp_tls(pki: &tls::Pki, tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let (addr, _) = pki.echo_server().await?;
    let manager = TlsManager::new(
        TcpManager::new(),
        TlsConfig::from_client_config(pki.client()),
    );
    let (naive, pooled) = naive_and_pooled(
        ("TLS TCP, naive", "TLS TCP, pooled"),
        manager,
        Destination::from(("localhost", addr.port())),
        (tasks, requests, show),
        |conn: &mut TlsConn| Box::pin(async move { Ok(support::echo_round_trip(conn).await?) }),
    )
    .await?;
    Ok(Row {
        proto: Proto::TcpTls,
        naive,
        pooled,
    })
}

async fn ws(tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let (addr, _) = support::ws::ws_server(None).await?;
    let (naive, pooled) = naive_and_pooled(
        ("WebSocket, naive", "WebSocket, pooled"),
        WsManager::new(),
        WsUrl::parse(&format!("ws://{addr}/"))?,
        (tasks, requests, show),
        |conn: &mut WsConn| Box::pin(support::ws::ws_round_trip(conn)),
    )
    .await?;
    Ok(Row {
        proto: Proto::Ws,
        naive,
        pooled,
    })
}

async fn wss(pki: &tls::Pki, tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let (addr, _) = support::ws::ws_server(Some(pki.acceptor(&[])?)).await?;
    let (naive, pooled) = naive_and_pooled(
        ("TLS WebSocket, naive", "TLS WebSocket, pooled"),
        WsManager::new().tls(TlsConfig::from_client_config(pki.client())),
        WsUrl::parse(&format!("wss://localhost:{}/", addr.port()))?,
        (tasks, requests, show),
        |conn: &mut WsConn| Box::pin(support::ws::ws_round_trip(conn)),
    )
    .await?;
    Ok(Row {
        proto: Proto::Wss,
        naive,
        pooled,
    })
}

/// One GET of `/` on an HTTP/1.1 connection, its body read to the end.
fn http1_get(conn: &mut Http1Conn) -> OneFut<'_> {
    Box::pin(async move {
        let request = http::Request::get("/").body(http_body_util::Full::default())?;
        let body = conn.send_request(request).await?.into_body();
        http_body_util::BodyExt::collect(body).await?;
        Ok(())
    })
}

async fn http1(tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let nginx = tokio::task::spawn_blocking(|| support::nginx::Nginx::start(""))
        .await?
        .ok_or("nginx is not installed (apt-get install nginx)")?;
    let (naive, pooled) = naive_and_pooled(
        ("HTTP/1.1, naive", "HTTP/1.1, pooled"),
        Http1Manager::new(),
        Destination::from(nginx.addr),
        (tasks, requests, show),
        http1_get,
    )
    .await?;
    Ok(Row {
        proto: Proto::Http1,
        naive,
        pooled,
    })
}

async fn http1_tls(pki: &tls::Pki, tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let (addr, _) = pki.http1_server().await?;
    let manager = Http1Manager::new().tls(TlsConfig::from_client_config(pki.client()));
    let (naive, pooled) = naive_and_pooled(
        ("TLS HTTP/1.1, naive", "TLS HTTP/1.1, pooled"),
        manager,
        Destination::from(("localhost", addr.port())),
        (tasks, requests, show),
        http1_get,
    )
    .await?;
    Ok(Row {
        proto: Proto::Http1Tls,
        naive,
        pooled,
    })
}

async fn http2_tls(pki: &tls::Pki, tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let (addr, _) = pki.http2_server().await?;
    let manager = Http2Manager::new().tls(TlsConfig::from_client_config(pki.client()));
    let (naive, pooled) = naive_and_pooled(
        ("TLS HTTP/2, naive", "TLS HTTP/2, pooled"),
        manager,
        Destination::from(("localhost", addr.port())),
        (tasks, requests, show),
        |conn: &mut Http2Conn| {
            Box::pin(async move {
                let request = http::Request::get("/").body(http_body_util::Full::default())?;
                let body = conn.send_request(request).await?.into_body();
                http_body_util::BodyExt::collect(body).await?;
                Ok(())
            })
        },
    )
    .await?;
    Ok(Row {
        proto: Proto::Http2Tls,
        naive,
        pooled,
    })
}

async fn grpc_tls(pki: &tls::Pki, tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let (addr, _) = pki.grpc_server().await?;
    // A naive dial makes no health check of its own: one call per request.
    let manager = GrpcManager::new()
        .check_on_connect(false)
        .tls(TlsConfig::from_client_config(pki.client()));
    let (naive, pooled) = naive_and_pooled(
        ("TLS gRPC, naive", "TLS gRPC, pooled"),
        manager,
        Destination::from(("localhost", addr.port())),
        (tasks, requests, show),
        |conn: &mut GrpcConn| {
            let channel = conn.channel().clone();
            Box::pin(async move { support::health_check(channel).await })
        },
    )
    .await?;
    Ok(Row {
        proto: Proto::GrpcTls,
        naive,
        pooled,
    })
}

async fn postgres_tls(
    pki: &tls::Pki,
    tasks: u32,
    requests: u64,
    show: bool,
) -> Result<Row, BoxError> {
    let server = tokio::task::spawn_blocking(support::postgres).await??;
    if !server.is_throwaway() {
        return Err("TLS needs a throwaway server (DATABASE_URL is set)".into());
    }
    server.enable_ssl(&pki.cert_pem, &pki.key_pem).await;
    let mut config = server.config();
    config
        .application_name("connpool-pooled-vs-naive")
        .host("localhost")
        .ssl_mode(tokio_postgres::config::SslMode::Require);
    let tls = TlsConfig::from_client_config(pki.client()).postgres();
    let manager = PostgresManager::with_tls(config, tls);
    let key = manager.key();
    let (naive, pooled) = naive_and_pooled(
        ("TLS PostgreSQL, naive", "TLS PostgreSQL, pooled"),
        manager,
        key,
        (tasks, requests, show),
        |conn: &mut connpool::managers::postgres::PgConnection| {
            Box::pin(async move { Ok(support::select_1(conn).await?) })
        },
    )
    .await?;
    tokio::task::spawn_blocking(move || drop(server)).await?;
    Ok(Row {
        proto: Proto::PgTls,
        naive,
        pooled,
    })
}

fn rate(r: f64) -> String {
    let n = r.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn latency(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "\n{:<20} {:<7} {:>9} {:>12} {:>10} {:>10} {:>12}",
        "protocol", "mode", "requests", "req/s", "p50", "p99", "connections"
    );
    for row in rows {
        for (mode, m) in [("naive", &row.naive), ("pooled", &row.pooled)] {
            println!(
                "{:<20} {:<7} {:>9} {:>12} {:>10} {:>10} {:>12}",
                row.proto.name(),
                mode,
                m.requests,
                rate(m.rate()),
                latency(m.quantile(0.5)),
                latency(m.quantile(0.99)),
                m.connections
            );
            if m.errors > 0 {
                println!(
                    "{:<20} {mode:<7} {} requests failed, first: {}",
                    "",
                    m.errors,
                    m.first_error.as_deref().unwrap_or("?")
                );
            }
        }
    }
    println!("\npooled / naive (throughput, and how much lower the p99):");
    for row in rows {
        let (t, p) = (row.throughput_ratio(), row.p99_ratio());
        println!(
            "  {:<20} {:>6.1}× throughput, p99 {:>5.1}× lower, {:>6} vs {} connections",
            row.proto.name(),
            t,
            p,
            row.naive.connections,
            row.pooled.connections,
        );
    }
}

/// Two panels side by side (throughput, p99), each a horizontal bar pair
/// (naive, pooled) per protocol on a log scale, protocols top to bottom
/// with their names and ratios in the left margin: the chart grows in
/// height with the rows, so no label ever meets another. Text is SVG
/// `<text>`: no font files are needed to write it.
fn chart(rows: &[Row], tasks: u32, path: &Path) -> Result<(), BoxError> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};

    const NAIVE: RGBColor = RGBColor(214, 96, 77);
    const POOLED: RGBColor = RGBColor(67, 147, 195);
    const ROW_PX: u32 = 46;
    let n = rows.len();
    let height = 160 + ROW_PX * n as u32;
    let base = SVGBackend::new(path, (1400, height)).into_drawing_area();
    base.fill(&WHITE)?;
    // Title and legend on top, drawn in backend pixels on the whole area.
    let centered = Pos::new(HPos::Center, VPos::Top);
    base.draw(&Text::new(
        format!(
            "connpool: pooled vs a new connection per request ({tasks} concurrent tasks, loopback)"
        ),
        (700, 10),
        ("sans-serif", 22).into_font().color(&BLACK).pos(centered),
    ))?;
    for (i, (color, label)) in [
        (NAIVE, "naive: a new connection per request"),
        (POOLED, "pooled (connpool, default config)"),
    ]
    .into_iter()
    .enumerate()
    {
        let x = 380 + 340 * i as i32;
        base.draw(&Rectangle::new([(x, 46), (x + 14, 58)], color.filled()))?;
        base.draw(&Text::new(
            label,
            (x + 22, 52),
            ("sans-serif", 14)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    let panels = base.margin(70, 0, 0, 0).split_evenly((1, 2));

    /// What one panel shows.
    struct Panel {
        caption: &'static str,
        /// (naive, pooled)
        pick: fn(&Row) -> (f64, f64),
        /// A bar's value.
        fmt: fn(f64) -> String,
        /// An axis label.
        axis: fn(f64) -> String,
        ratio: fn(&Row) -> String,
    }
    let specs = [
        Panel {
            caption: "throughput, requests/s (log scale, longer is better)",
            pick: |r| (r.naive.rate(), r.pooled.rate()),
            fmt: rate,
            axis: rate,
            ratio: |r| format!("{:.1}× the throughput", r.throughput_ratio()),
        },
        Panel {
            caption: "p99 latency (log scale, shorter is better)",
            pick: |r| {
                (
                    r.naive.quantile(0.99).as_secs_f64(),
                    r.pooled.quantile(0.99).as_secs_f64(),
                )
            },
            fmt: |v| latency(Duration::from_secs_f64(v)),
            axis: |v| match v {
                v if v >= 1.0 => format!("{v} s"),
                v if v >= 1e-3 => format!("{} ms", (v * 1e3).round()),
                v => format!("{} µs", (v * 1e6).round()),
            },
            ratio: |r| format!("p99 {:.1}× lower", r.p99_ratio()),
        },
    ];
    for (panel, spec) in panels.iter().zip(specs) {
        let Panel {
            caption,
            pick,
            fmt,
            axis,
            ratio,
        } = spec;
        let values: Vec<(f64, f64)> = rows.iter().map(pick).collect();
        let all = values.iter().flat_map(|&(a, b)| [a, b]);
        let lo = all.clone().fold(f64::INFINITY, f64::min).max(1e-9);
        let hi = all.fold(0.0, f64::max).max(lo * 10.0);
        // Room on the right of the longest bar for its value.
        let (lo, hi) = (
            10f64.powf(lo.log10().floor()),
            10f64.powf((hi * 30.0).log10().ceil()),
        );
        let mut chart = ChartBuilder::on(panel)
            .caption(caption, ("sans-serif", 17))
            .margin(15)
            .x_label_area_size(30)
            .y_label_area_size(190)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .y_label_formatter(&|_| String::new())
            .x_label_formatter(&|v| axis(*v))
            .x_label_style(("sans-serif", 13))
            .draw()?;
        // Row `i` from the top: its band is [n - i - 1, n - i).
        let band = move |i: usize| (n - i - 1) as f64;
        for (which, color) in [(0, NAIVE), (1, POOLED)] {
            let bar = move |i: usize, v: f64| {
                let y = band(i) + 0.52 - 0.38 * which as f64;
                (y, v.max(lo))
            };
            let bars = values.iter().enumerate().map(move |(i, &(a, b))| {
                let (y, v) = bar(i, if which == 0 { a } else { b });
                Rectangle::new([(lo, y), (v, y + 0.34)], color.filled())
            });
            chart.draw_series(bars)?;
            let tags = values.iter().enumerate().map(move |(i, &(a, b))| {
                let v = if which == 0 { a } else { b };
                let (y, end) = bar(i, v);
                Text::new(
                    format!(" {}", fmt(v)),
                    (end, y + 0.17),
                    ("sans-serif", 12)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )
            });
            chart.draw_series(tags)?;
        }
        // Protocol names and ratios in the left margin, in backend pixels.
        for (i, row) in rows.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(lo, band(i) + 0.5));
            let right = Pos::new(HPos::Right, VPos::Bottom);
            base.draw(&Text::new(
                row.proto.name(),
                (x - 10, y),
                ("sans-serif", 14).into_font().color(&BLACK).pos(right),
            ))?;
            base.draw(&Text::new(
                ratio(row),
                (x - 10, y + 2),
                ("sans-serif", 13)
                    .into_font()
                    .style(FontStyle::Bold)
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Right, VPos::Top)),
            ))?;
        }
    }
    base.present()?;
    Ok(())
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
