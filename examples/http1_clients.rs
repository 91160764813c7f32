//! HTTP/1.1 keep-alive clients side by side, against one throwaway nginx
//! (`return 200`, `apt-get install nginx`) in the same run:
//!
//! - **connpool**: `HttpService` over a pool of `HttpManager` connections;
//! - **hyper-util**: its legacy `Client` with an `HttpConnector`
//!   (`TCP_NODELAY` on, as connpool and reqwest set it);
//! - **reqwest**: a `Client` without default features (rustls, no HTTP/2).
//!
//! Each with its defaults otherwise (all three keep every idle connection
//! for 90 s and cap none per host).
//!
//! 1. **Throughput**: one client shared by all tasks, each task sending GETs
//!    one after another; requests per second, p50 / p99 latency (every
//!    request timed) and the connections nginx accepted (its `stub_status`;
//!    nginx closes a connection after 1,000 requests, its default
//!    `keepalive_requests`). The clients take turns, for several rounds
//!    (each round starting with the next client, in an order that changes
//!    from round to round), so that a busy machine slows each of them
//!    alike; each one's median round is shown, with the CPU time the
//!    client used per request (the process's user and system time: nginx
//!    runs in processes of its own), which the machine's load moves less
//!    than the rate: nginx and the kernel take most of the two cores.
//! 2. **The keep-alive race**: a second nginx with `keepalive_timeout
//!    200ms`; each task has a client of its own and pauses 150–260 ms
//!    between GETs (the same pauses for every client: one seed per task), so
//!    nginx closes about half of the idle connections, some just as a
//!    request goes out. The three clients run at once; failures are counted
//!    (connpool's retries too).
//!
//! Every GET has a deadline of 10 s (none of the clients has one by
//! default); a GET past it counts as failed, so a stuck request shows as a
//! failure instead of stalling the run.
//!
//! ```text
//! cargo run --release --features http --example http1_clients
//! cargo run --release --features http --example http1_clients -- --quick
//! # one client alone, e.g. under valgrind's instruction count:
//! cargo build --release --features http --example http1_clients
//! valgrind --tool=callgrind target/release/examples/http1_clients --only connpool --rounds 1 --requests 20000 --tasks 8
//! ```

#[path = "support/nginx_server.rs"]
mod nginx;
#[path = "support/turns.rs"]
mod turns;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use connpool::Pool;
use connpool::managers::http::HttpManager;
use connpool::managers::service::HttpService;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use nginx::Nginx;
use tower::{Service, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// HTTP/1.1 clients against one nginx: throughput, and the keep-alive race.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Concurrent tasks.
    #[arg(long, default_value_t = 32)]
    tasks: usize,
    /// Requests per client in the throughput part [default: 100000; with
    /// --quick: 5000].
    #[arg(long)]
    requests: Option<usize>,
    /// Requests per client in the race [default: 3000; with --quick: 320].
    #[arg(long)]
    race_requests: Option<usize>,
    /// Rounds of the throughput part: the clients take turns, round after
    /// round, and each one's median round (by req/s) is shown [default: 3;
    /// with --quick: 1].
    #[arg(long)]
    rounds: Option<usize>,
    /// A CI-sized run.
    #[arg(long)]
    quick: bool,
    /// Only this client's throughput (`connpool`, `hyper-util` or
    /// `reqwest`), no race: for a profiler or an instruction count.
    #[arg(long)]
    only: Option<String>,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Connpool,
    HyperUtil,
    Reqwest,
}

const KINDS: [Kind; 3] = [Kind::Connpool, Kind::HyperUtil, Kind::Reqwest];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Connpool => "connpool",
            Kind::HyperUtil => "hyper-util legacy",
            Kind::Reqwest => "reqwest",
        }
    }
}

/// One client of a kind; cheap to clone (a clone shares its pool).
#[derive(Clone)]
enum Client {
    Connpool(HttpService<HttpManager>),
    HyperUtil(Box<HyperClient<HttpConnector, Full<Bytes>>>),
    Reqwest(reqwest::Client),
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// How long one GET (its response read to the end) may take.
const DEADLINE: Duration = Duration::from_secs(10);

impl Client {
    async fn new(kind: Kind) -> Result<Client, BoxError> {
        Ok(match kind {
            Kind::Connpool => {
                let pool = Pool::builder(HttpManager::http1()).build().await?;
                Client::Connpool(HttpService::by_authority(pool))
            }
            Kind::HyperUtil => {
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                Client::HyperUtil(Box::new(
                    HyperClient::builder(TokioExecutor::new()).build(connector),
                ))
            }
            Kind::Reqwest => Client::Reqwest(reqwest::Client::builder().build()?),
        })
    }

    /// A GET of `uri`, its body read to the end, within [`DEADLINE`].
    async fn get(&self, uri: &str) -> Result<(), BoxError> {
        match tokio::time::timeout(DEADLINE, self.send(uri)).await {
            Ok(done) => done,
            Err(_) => Err(format!("no response within {DEADLINE:?}").into()),
        }
    }

    fn send(&self, uri: &str) -> BoxFut<Result<(), BoxError>> {
        let request = || http::Request::get(uri).body(Full::new(Bytes::new()));
        match self.clone() {
            Client::Connpool(mut svc) => {
                let request = request();
                Box::pin(async move {
                    let response = svc.ready().await?.call(request?).await?;
                    response.into_body().collect().await?;
                    Ok(())
                })
            }
            Client::HyperUtil(client) => {
                let request = request();
                Box::pin(async move {
                    let response = client.request(request?).await?;
                    response.into_body().collect().await?;
                    Ok(())
                })
            }
            Client::Reqwest(client) => {
                let sent = client.get(uri).send();
                Box::pin(async move {
                    sent.await?.error_for_status()?.bytes().await?;
                    Ok(())
                })
            }
        }
    }

    fn retries(&self) -> Option<u64> {
        match self {
            Client::Connpool(svc) => Some(svc.retries()),
            _ => None,
        }
    }
}

struct Throughput {
    rate: f64,
    p50: Duration,
    p99: Duration,
    connections: u64,
    failures: usize,
    /// The client's CPU time per request.
    cpu: Duration,
}

/// The CPU time (user and system) this process has used so far, in ticks
/// of 10 ms (Linux's `USER_HZ`); `None` where there is no `/proc`.
fn cpu_used() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name: utime and stime are the 12th and
    // 13th (the 14th and 15th of the line).
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace().skip(11);
    let ticks: u64 = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

async fn throughput(
    kind: Kind,
    nginx: &Nginx,
    tasks: usize,
    requests: usize,
) -> Result<Throughput, BoxError> {
    let client = Client::new(kind).await?;
    let uri = format!("http://{}/", nginx.addr);
    let before = nginx.accepted();
    let cpu_before = cpu_used();
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let n = requests / tasks + usize::from(t < requests % tasks);
        let (client, uri) = (client.clone(), uri.clone());
        set.spawn(async move {
            let (mut latencies, mut failures) = (Vec::with_capacity(n), 0);
            for _ in 0..n {
                let t = Instant::now();
                match client.get(&uri).await {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(_) => failures += 1,
                }
            }
            (latencies, failures)
        });
    }
    let (mut latencies, mut failures) = (Vec::with_capacity(requests), 0);
    while let Some(done) = set.join_next().await {
        let (l, f) = done?;
        latencies.extend(l);
        failures += f;
    }
    let elapsed = start.elapsed();
    let cpu = match (cpu_before, cpu_used()) {
        (Some(a), Some(b)) => b.saturating_sub(a) / requests.max(1) as u32,
        _ => Duration::ZERO,
    };
    latencies.sort_unstable();
    let q = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Ok(Throughput {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: q(0.5),
        p99: q(0.99),
        connections: nginx.accepted() - before,
        failures,
        cpu,
    })
}

struct Race {
    requests: usize,
    failures: usize,
    first_error: Option<String>,
    retries: Option<u64>,
}

/// `tasks` tasks, each with a client of `kind` of its own, pausing 150–260
/// ms between GETs (seeded per task: the same pauses for every kind).
async fn race(kind: Kind, uri: String, tasks: usize, requests: usize) -> Result<Race, BoxError> {
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let n = requests / tasks + usize::from(t < requests % tasks);
        let client = Client::new(kind).await?;
        let uri = uri.clone();
        set.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(t as u64);
            let (mut failures, mut first) = (0, None);
            for _ in 0..n {
                if let Err(e) = client.get(&uri).await {
                    failures += 1;
                    first.get_or_insert_with(|| error_chain(&*e));
                }
                tokio::time::sleep(Duration::from_millis(rng.u64(150..=260))).await;
            }
            (failures, first, client.retries())
        });
    }
    let mut race = Race {
        requests,
        failures: 0,
        first_error: None,
        retries: None,
    };
    while let Some(done) = set.join_next().await {
        let (failures, first, retries) = done?;
        race.failures += failures;
        race.first_error = race.first_error.or(first);
        race.retries = match (race.retries, retries) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }
    Ok(race)
}

/// An error and its causes, on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    // reqwest without a TLS provider of its own: the crate's (ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let requests = args
        .requests
        .unwrap_or(if args.quick { 5_000 } else { 100_000 });
    let race_requests = args
        .race_requests
        .unwrap_or(if args.quick { 320 } else { 3_000 });
    let tasks = args.tasks;
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 });

    let nginx = tokio::task::spawn_blocking(|| Nginx::start(""))
        .await?
        .ok_or("nginx is not installed (apt-get install nginx)")?;
    println!(
        "1. throughput: {tasks} tasks, {requests} GETs per client and round, {rounds} rounds (each client's median round), nginx on {}",
        nginx.addr
    );
    println!(
        "{:<18} {:>10} {:>10} {:>10} {:>12} {:>9} {:>12}",
        "client", "req/s", "p50", "p99", "connections", "failures", "CPU per req"
    );
    if let Some(only) = &args.only {
        let kind = KINDS
            .into_iter()
            .find(|k| k.name().starts_with(only.as_str()))
            .ok_or_else(|| format!("--only {only}: not connpool, hyper-util or reqwest"))?;
        throughput(kind, &nginx, tasks, requests / 20).await?;
        for _ in 0..rounds {
            let t = throughput(kind, &nginx, tasks, requests).await?;
            println!(
                "{:<18} {:>10.0} {:>10} {:>10}",
                kind.name(),
                t.rate,
                ms(t.p50),
                ms(t.p99)
            );
        }
        return Ok(());
    }
    // A short warm-up of each client, then the measured runs.
    for kind in KINDS {
        throughput(kind, &nginx, tasks, requests / 20).await?;
    }
    let mut results: Vec<Vec<Throughput>> = KINDS.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for i in turns::turns(KINDS.len(), round) {
            results[i].push(throughput(KINDS[i], &nginx, tasks, requests).await?);
        }
    }
    let mut failed = 0;
    let mut medians = Vec::new();
    for (kind, mut runs) in KINDS.into_iter().zip(results) {
        failed += runs.iter().map(|t| t.failures).sum::<usize>();
        let mut cpu: Vec<Duration> = runs.iter().map(|t| t.cpu).collect();
        cpu.sort_unstable();
        runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let t = &runs[runs.len() / 2];
        let cpu = cpu[cpu.len() / 2];
        println!(
            "{:<18} {:>10.0} {:>10} {:>10} {:>12} {:>9} {:>9.1} µs",
            kind.name(),
            t.rate,
            ms(t.p50),
            ms(t.p99),
            t.connections,
            t.failures,
            cpu.as_secs_f64() * 1e6
        );
        medians.push((t.rate, cpu.as_secs_f64()));
    }
    let (connpool, hyper) = (medians[0], medians[1]);
    println!(
        "connpool ÷ hyper-util legacy: {:.2}× the requests per second, {:.2}× the CPU per request",
        connpool.0 / hyper.0,
        connpool.1 / hyper.1
    );
    drop(nginx);

    let nginx = tokio::task::spawn_blocking(|| Nginx::start("keepalive_timeout 200ms;"))
        .await?
        .ok_or("nginx is not installed")?;
    let uri = format!("http://{}/", nginx.addr);
    println!(
        "\n2. keep-alive race: nginx keepalive_timeout 200ms, {tasks} tasks per client each with its own client, pauses 150-260 ms, {race_requests} GETs per client, the three at once"
    );
    let runs = KINDS.map(|kind| tokio::spawn(race(kind, uri.clone(), tasks, race_requests)));
    let mut connpool_failures = 0;
    for (kind, run) in KINDS.into_iter().zip(runs) {
        let r = run.await??;
        if let Kind::Connpool = kind {
            connpool_failures = r.failures;
        }
        println!(
            "{:<18} {} of {} GETs failed{}{}",
            kind.name(),
            r.failures,
            r.requests,
            r.retries
                .map(|n| format!(", {n} sent again after meeting a closed connection"))
                .unwrap_or_default(),
            r.first_error
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
    }
    println!(
        "(nginx accepted {} connections in the race)",
        nginx.accepted()
    );
    if failed > 0 || connpool_failures > 0 {
        return Err(format!("{} requests failed", failed + connpool_failures).into());
    }
    Ok(())
}
