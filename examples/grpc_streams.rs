//! gRPC calls against a server that limits streams: the pool's per-call
//! service against one tonic `Channel` and against round-robin over a
//! fixed set of `Channel`s (what one writes by hand), on one in-process
//! tonic server on 127.0.0.1.
//!
//! ```text
//! cargo run --release --all-features --example grpc_streams            # full run (~1 min)
//! cargo run --release --all-features --example grpc_streams -- --quick # seconds
//! ```
//!
//! `--instructions CLIENT CALLS` runs the CPU-bound workload alone, with
//! one client (`one`, `round-robin` or `pooled`) and `CALLS` calls, for a
//! count of instructions per call under callgrind (the difference of two
//! runs with different `CALLS`, divided by the difference of calls; the
//! server in the same process counts in both).
//!
//! Three workloads:
//!
//! - **stream limit, CPU-bound**: the server allows 100 concurrent streams
//!   per connection; 1,000 tasks call at once; a call's handler takes 1 ms,
//!   and every tenth call's 50 ms. One `Channel` queues calls beyond 100 in
//!   flight; round-robin spreads them blindly over 8 connections, so a
//!   call can wait behind slow ones on a full connection while another has
//!   room; the pool lends the least-loaded connection with room and dials
//!   another (up to 16) when all are full. On a small machine client and
//!   server together use every core here.
//! - **stream limit, stream-bound**: the same with handlers of 20 ms and
//!   200 ms, so that the connections' streams are what limits the calls,
//!   not the CPU; the pool also runs capped at round-robin's 8
//!   connections.
//! - **no limit**: 32 tasks, handlers that answer at once: what the pool
//!   costs over one shared `Channel` when one connection is enough.
//!
//! Prints calls per second, p50 and p99 latency and connections per
//! client, and the ratios.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use connpool::Pool;
use connpool::managers::grpc::GrpcManager;
use connpool::managers::service::HttpService;
use tokio::net::TcpListener;
use tokio_stream::Stream;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The service name that asks the server for its slow answer.
const SLOW: &str = "slow";

/// A health service whose `Check` takes as long as the request asks:
/// `SLOW` takes `slow`, anything else `fast` (both may be zero).
#[derive(Clone, Copy)]
struct Timed {
    fast: Duration,
    slow: Duration,
}

#[tonic::async_trait]
impl Health for Timed {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let took = if request.get_ref().service == SLOW {
            self.slow
        } else {
            self.fast
        };
        if !took.is_zero() {
            tokio::time::sleep(took).await;
        }
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving.into(),
        }))
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send + 'static>>;

    async fn watch(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("not here"))
    }
}

/// Starts the server; returns its address and its count of accepted
/// connections.
async fn server(
    max_streams: Option<u32>,
    timed: Timed,
) -> Result<(SocketAddr, Arc<AtomicUsize>), BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let incoming = tokio_stream::StreamExt::map(TcpListenerStream::new(listener), move |conn| {
        let conn = conn?;
        counter.fetch_add(1, Ordering::Relaxed);
        conn.set_nodelay(true)?;
        Ok::<_, std::io::Error>(conn)
    });
    tokio::spawn(
        Server::builder()
            .max_concurrent_streams(max_streams)
            .add_service(HealthServer::new(timed))
            .serve_with_incoming(incoming),
    );
    Ok((addr, accepted))
}

/// The clients compared.
#[derive(Clone)]
enum Client {
    /// One `Channel` (one connection), shared by every task.
    One(HealthClient<Channel>),
    /// A fixed set of `Channel`s, taken in turn.
    RoundRobin(Arc<[HealthClient<Channel>]>, Arc<AtomicUsize>),
    /// The pool's per-call service.
    Pooled(HealthClient<HttpService<GrpcManager>>),
}

impl Client {
    async fn check(&self, service: &str) -> Result<(), BoxError> {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        let reply = match self {
            Client::One(client) => client.clone().check(request).await?,
            Client::RoundRobin(clients, next) => {
                let i = next.fetch_add(1, Ordering::Relaxed) % clients.len();
                clients[i].clone().check(request).await?
            }
            Client::Pooled(client) => client.clone().check(request).await?,
        };
        if reply.get_ref().status() != ServingStatus::Serving {
            return Err("not SERVING".into());
        }
        Ok(())
    }
}

async fn channel(addr: SocketAddr) -> Result<Channel, BoxError> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await?)
}

/// What one client did in one workload.
struct Run {
    calls: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    connections: usize,
}

/// `tasks` tasks share `calls` calls; every tenth is `SLOW` if `slow`.
async fn drive(client: Client, tasks: usize, calls: usize, slow: bool) -> Result<Run, BoxError> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (client, next) = (client.clone(), Arc::clone(&next));
        set.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= calls {
                    return Ok::<_, BoxError>(latencies);
                }
                let service = if slow && n % 10 == 0 { SLOW } else { "" };
                let start = Instant::now();
                client.check(service).await?;
                latencies.push(start.elapsed());
            }
        });
    }
    let mut latencies = Vec::with_capacity(calls);
    while let Some(done) = set.join_next().await {
        latencies.extend(done??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Ok(Run {
        calls,
        per_second: calls as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        connections: 0,
    })
}

/// One workload: the server's stream limit and handlers, the load, and
/// the clients that run it.
struct Workload {
    name: &'static str,
    max_streams: Option<u32>,
    timed: Timed,
    tasks: usize,
    calls: usize,
    clients: &'static [&'static str],
}

const ALL: &[&str] = &["one Channel", "round-robin, 8 Channels", "pooled service"];

impl Workload {
    /// The CPU-bound workload (a limit of 100 streams, 1,000 tasks, calls
    /// of 1 ms and every tenth of 50 ms): `calls` of each of `clients`.
    fn cpu_bound(calls: usize, clients: &'static [&'static str]) -> Workload {
        Workload {
            name: "stream limit 100, 1,000 tasks, 1 ms / 50 ms",
            max_streams: Some(100),
            timed: Timed {
                fast: Duration::from_millis(1),
                slow: Duration::from_millis(50),
            },
            tasks: 1000,
            calls,
            clients,
        }
    }
}

/// Round-robin and the pool, also with round-robin's 8 connections at most.
const STREAM_BOUND: &[&str] = &[
    "round-robin, 8 Channels",
    "pooled service",
    "pooled service, 8 connections at most",
];

/// Runs one workload with each of its clients, each against a server of
/// its own.
async fn workload(w: Workload) -> Result<Vec<(&'static str, Run)>, BoxError> {
    let Workload {
        name,
        max_streams,
        timed,
        tasks,
        calls,
        clients,
    } = w;
    let slow = !timed.slow.is_zero();
    let mut runs = Vec::new();
    for &which in clients {
        let (addr, accepted) = server(max_streams, timed).await?;
        let client = match which {
            "one Channel" => Client::One(HealthClient::new(channel(addr).await?)),
            "round-robin, 8 Channels" => {
                let mut clients = Vec::new();
                for _ in 0..8 {
                    clients.push(HealthClient::new(channel(addr).await?));
                }
                Client::RoundRobin(clients.into(), Arc::default())
            }
            _ => {
                // The pool dials a connection when every one it has is
                // full, up to 16; capped at 8 it has round-robin's.
                let cap = if which.ends_with("at most") { 8 } else { 16 };
                let pool = Pool::builder(GrpcManager::new())
                    .max_open_per_key(cap)
                    .build()
                    .await?;
                Client::Pooled(HealthClient::new(HttpService::new(pool, addr)))
            }
        };
        // Warm up: connections made, then the measured run.
        drive(client.clone(), tasks, tasks, false).await?;
        let mut run = drive(client, tasks, calls, slow).await?;
        run.connections = accepted.load(Ordering::Relaxed);
        println!(
            "| {name} | {which} | {} | {:.0} | {:.2} ms | {:.2} ms | {} |",
            run.calls,
            run.per_second,
            run.p50.as_secs_f64() * 1e3,
            run.p99.as_secs_f64() * 1e3,
            run.connections
        );
        runs.push((which, run));
    }
    Ok(runs)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let ms = Duration::from_millis;
    if let Some(at) = args.iter().position(|a| a == "--instructions") {
        let (Some(which), Some(calls)) = (args.get(at + 1), args.get(at + 2)) else {
            return Err("--instructions takes a client and a count of calls".into());
        };
        let client = ALL
            .iter()
            .find(|name| name.starts_with(which.as_str()))
            .ok_or("the client is one of one, round-robin, pooled")?;
        workload(Workload::cpu_bound(
            calls.parse()?,
            std::slice::from_ref(client),
        ))
        .await?;
        return Ok(());
    }

    println!("| workload | client | calls | calls/s | p50 | p99 | connections |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let limited = workload(Workload::cpu_bound(200_000 / scale, ALL)).await?;
    let bound = workload(Workload {
        name: "stream limit 100, 1,000 tasks, 20 ms / 200 ms",
        max_streams: Some(100),
        timed: Timed {
            fast: ms(20),
            slow: ms(200),
        },
        tasks: 1000,
        calls: 100_000 / scale,
        clients: STREAM_BOUND,
    })
    .await?;
    let open = workload(Workload {
        name: "no limit, 32 tasks, no delay",
        max_streams: None,
        timed: Timed {
            fast: Duration::ZERO,
            slow: Duration::ZERO,
        },
        tasks: 32,
        calls: 200_000 / scale,
        clients: ALL,
    })
    .await?;

    let (one, rr, pooled) = (&limited[0].1, &limited[1].1, &limited[2].1);
    println!();
    println!(
        "stream limit, CPU-bound: pooled ÷ one Channel throughput {:.2}×; pooled ÷ round-robin throughput {:.2}×, p99 {:.2} vs {:.2} ms",
        pooled.per_second / one.per_second,
        pooled.per_second / rr.per_second,
        pooled.p99.as_secs_f64() * 1e3,
        rr.p99.as_secs_f64() * 1e3,
    );
    let (rr, pooled, capped) = (&bound[0].1, &bound[1].1, &bound[2].1);
    println!(
        "stream limit, stream-bound: pooled ÷ round-robin throughput {:.2}×, p99 {:.2} vs {:.2} ms; with 8 connections at most {:.2}×, p99 {:.2} ms",
        pooled.per_second / rr.per_second,
        pooled.p99.as_secs_f64() * 1e3,
        rr.p99.as_secs_f64() * 1e3,
        capped.per_second / rr.per_second,
        capped.p99.as_secs_f64() * 1e3,
    );
    println!(
        "no limit: pooled ÷ one Channel throughput {:.2}×",
        open[2].1.per_second / open[0].1.per_second
    );
    Ok(())
}
