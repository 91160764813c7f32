//! A proxy's upstream that closes every connection after one response,
//! `python3 -m http.server` (HTTP/1.0), served by connpool with the
//! defaults beside reqwest held to the same per-host cap by a semaphore.
//!
//! The job of a small service's proxy route: 1,000 GETs from 16 tasks, at
//! most 8 connections to the upstream, a 2 s deadline on each.
//!
//! - **connpool**: `HttpService` over a pool with `max_open_per_key(8)`
//!   and `timeout(2 s)`, everything else at its default (the README's
//!   settings);
//! - **reqwest**: a `Client` with a `timeout` of 2 s, each request holding
//!   one of 8 semaphore permits (reqwest caps no host).
//!
//! The clients take turns over several rounds (the order changing from
//! round to round); each one's median round is shown: the job's time,
//! requests per second, p50 / p99 latency, the connections it made, and
//! connpool's counters of closes (`closed_by_server`, `closed_broken`).
//!
//! ```text
//! cargo run --release --features http --example http_close_every_time
//! cargo run --release --features http --example http_close_every_time -- --quick
//! ```

#[path = "support/python_http.rs"]
mod python_http;
#[path = "support/turns.rs"]
mod turns;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use connpool::Pool;
use connpool::managers::http::HttpManager;
use connpool::managers::service::HttpService;
use tokio::sync::Semaphore;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An upstream that closes every connection: connpool beside reqwest.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Concurrent tasks.
    #[arg(long, default_value_t = 16)]
    tasks: usize,
    /// Requests per round and client.
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// Connections per host.
    #[arg(long, default_value_t = 8)]
    cap: usize,
    /// connpool's `max_connecting`, set [default: unset, the default].
    #[arg(long)]
    max_connecting: Option<usize>,
    /// Rounds [default: 5; with --quick: 1].
    #[arg(long)]
    rounds: Option<usize>,
    /// One round of 200 requests, checked: CI's run.
    #[arg(long)]
    quick: bool,
}

/// One round of one client: the job's time, every request's latency, the
/// requests that failed, and (connpool) its counters.
struct Round {
    took: Duration,
    latencies: Vec<Duration>,
    failed: usize,
    dials: u64,
    closes: Option<(u64, u64)>,
}

impl Round {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.took.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
    }
}

const CLIENTS: [&str; 2] = ["connpool", "reqwest"];
const DEADLINE: Duration = Duration::from_secs(2);

async fn connpool_round(url: &str, args: &Args) -> Result<Round, BoxError> {
    let mut builder = Pool::builder(HttpManager::new()).max_open_per_key(args.cap);
    if let Some(n) = args.max_connecting {
        builder = builder.max_connecting(n);
    }
    let pool = builder.build().await?;
    let client = HttpService::by_authority(pool.clone()).timeout(DEADLINE);
    let start = Instant::now();
    let (latencies, failed) = run_tasks(args, url, move |url| {
        let client = client.clone();
        async move {
            let response = client.get(&url).await?;
            response.into_body().bytes().await?;
            Ok(())
        }
    })
    .await;
    let took = start.elapsed();
    let counters = pool.state().counters;
    pool.close().await;
    Ok(Round {
        took,
        latencies,
        failed,
        dials: counters.dials,
        closes: Some((counters.closed_by_server, counters.closed_broken)),
    })
}

async fn reqwest_round(url: &str, args: &Args) -> Result<Round, BoxError> {
    let client = reqwest::Client::builder().timeout(DEADLINE).build()?;
    let permits = Arc::new(Semaphore::new(args.cap));
    let start = Instant::now();
    let (latencies, failed) = run_tasks(args, url, move |url| {
        let (client, permits) = (client.clone(), Arc::clone(&permits));
        async move {
            let _permit = permits.acquire().await?;
            client.get(&url).send().await?.bytes().await?;
            Ok(())
        }
    })
    .await;
    let took = start.elapsed();
    // HTTP/1.0: one connection per request.
    let dials = latencies.len() as u64;
    Ok(Round {
        took,
        latencies,
        failed,
        dials,
        closes: None,
    })
}

/// `args.requests` calls of `one`, spread over `args.tasks` tasks: each
/// successful one's latency, and how many failed.
async fn run_tasks<F, Fut>(args: &Args, url: &str, one: F) -> (Vec<Duration>, usize)
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send,
{
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..args.tasks {
        let n = args.requests / args.tasks + usize::from(t < args.requests % args.tasks);
        let (one, url) = (one.clone(), url.to_owned());
        tasks.spawn(async move {
            let (mut latencies, mut failed) = (Vec::with_capacity(n), 0);
            for _ in 0..n {
                let start = Instant::now();
                match one(url.clone()).await {
                    Ok(()) => latencies.push(start.elapsed()),
                    Err(e) => {
                        eprintln!("failed: {e}");
                        failed += 1;
                    }
                }
            }
            (latencies, failed)
        });
    }
    let (mut all, mut failed) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        let (latencies, f) = done.expect("a task panicked");
        all.extend(latencies);
        failed += f;
    }
    (all, failed)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = Args::parse();
    if args.quick {
        args.requests = args.requests.min(200);
    }
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 5 });
    // reqwest is built without a TLS provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream =
        python_http::PythonHttp::start(&[("item.json", br#"{"id": 7, "name": "widget"}"#)])?;
    let url = format!("http://{}/item.json", upstream.addr);
    println!(
        "python3 -m http.server (HTTP/1.0: one request per connection); {} GETs from {} tasks, \
         at most {} connections, a {:?} deadline; {rounds} rounds",
        args.requests, args.tasks, args.cap, DEADLINE
    );
    let mut results: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for client in turns::turns(CLIENTS.len(), round) {
            let done = match client {
                0 => connpool_round(&url, &args).await?,
                _ => reqwest_round(&url, &args).await?,
            };
            results[client].push(done);
        }
    }
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>16}",
        "client", "job", "req/s", "p50", "p99", "failed", "conns", "closed by server"
    );
    let mut medians = Vec::new();
    for (name, mut rounds) in CLIENTS.into_iter().zip(results) {
        rounds.sort_by_key(|r| r.took);
        let median = rounds.swap_remove(rounds.len() / 2);
        let closes = match median.closes {
            Some((by_server, broken)) => format!("{by_server} (broken {broken})"),
            None => "-".to_owned(),
        };
        println!(
            "{name:<10} {:>9.2?} {:>9.0} {:>9.2?} {:>9.2?} {:>7} {:>7} {:>16}",
            median.took,
            median.rate(),
            median.percentile(0.5),
            median.percentile(0.99),
            median.failed,
            median.dials,
            closes
        );
        medians.push(median);
    }
    let (connpool, reqwest) = (&medians[0], &medians[1]);
    println!(
        "connpool ÷ reqwest: throughput {:.2}×, p99 {:.2}×",
        connpool.rate() / reqwest.rate(),
        connpool.percentile(0.99).as_secs_f64() / reqwest.percentile(0.99).as_secs_f64()
    );
    // (The upstream's listen backlog is 5: a connection refused by it is
    // dialed again a second later by the kernel, so a request may now and
    // then run out of its deadline, closing its connection as broken.)
    let (by_server, broken) = connpool.closes.unwrap_or_default();
    assert!(by_server > 0, "the server's closes are counted as its own");
    assert!(
        broken as usize <= connpool.failed,
        "a connection the server closed after its response is not broken"
    );
    Ok(())
}
