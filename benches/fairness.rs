//! Fairness under overload: many more tasks than connections, each holding
//! its connection a short while, and how long each checkout waits.
//!
//! `T` tasks (1,000) share a pool of `P` connections (50) of a no-op
//! manager on tokio's multi-thread runtime (2 workers). Each task loops:
//! get (timed), hold the connection for `HOLD` (a 1 ms sleep), drop. For a
//! window of `W` seconds per pool, every pool in the same run: connpool,
//! bb8, deadpool, mobc, qp, each with its defaults and pre-filled with `P`.
//!
//! Reported per pool: checkouts completed, acquire latency p50 / p99 /
//! p99.9 / p99.99 / max, the tasks that completed no checkout in the window
//! (starved), and p99.99 against the FIFO ideal: with every task served in
//! turn, a checkout waits for the `T − P` tasks ahead of it to hold a
//! connection each, `P` at a time, so `hold × (T − P) / P`, where `hold` is
//! the mean hold measured in that pool's run (a 1 ms sleep lasts a little
//! longer on tokio's timer).
//!
//! ```text
//! cargo bench --bench fairness                 # 5 s per pool
//! cargo bench --bench fairness -- --quick      # 1 s per pool
//! ```
//!
//! Each pool first runs a warm-up of a fifth of the window, unmeasured (the
//! runtime's first 1,000 tasks, the timer wheel's first slabs). A checkout
//! still waiting when the window closes is not counted (its task is
//! counted as starved if it completed none in the window).

mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::UnitNoop;
use support::peers::PeerNoop;

const TASKS: usize = 1000;
const POOL: usize = 50;
const HOLD: Duration = Duration::from_millis(1);

/// What one task saw: its checkouts' waits, and its total hold time.
struct TaskRun {
    waits: Vec<Duration>,
    held: Duration,
}

/// One pool's figures.
struct Figures {
    pool: &'static str,
    done: usize,
    quantiles: [Duration; 4],
    max: Duration,
    starved: usize,
    mean_hold: Duration,
}

impl Figures {
    fn ideal(&self) -> Duration {
        self.mean_hold * (TASKS - POOL) as u32 / POOL as u32
    }
}

/// Runs `TASKS` tasks for `window`, each looping over `checkout` (which
/// gets a connection, holds it for `HOLD` and drops it, and returns how
/// long the get waited and how long the connection was held).
async fn run<F, Fut>(pool: &'static str, window: Duration, checkout: F) -> Figures
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (Duration, Duration)> + Send,
{
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let start = Arc::new(std::sync::OnceLock::<tokio::time::Instant>::new());
    let mut tasks = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        let checkout = checkout.clone();
        let mut go = go_rx.clone();
        let start = Arc::clone(&start);
        tasks.push(tokio::spawn(async move {
            go.wait_for(|&go| go).await.unwrap();
            let measured = *start.get().unwrap() + window / 5;
            let end = measured + window;
            let mut run = TaskRun {
                waits: Vec::new(),
                held: Duration::ZERO,
            };
            loop {
                let began = tokio::time::Instant::now();
                let Ok((waited, held)) = tokio::time::timeout_at(end, checkout()).await else {
                    break;
                };
                if began >= measured {
                    run.waits.push(waited);
                    run.held += held;
                }
            }
            run
        }));
    }
    start.set(tokio::time::Instant::now()).unwrap();
    go_tx.send(true).unwrap();
    let mut waits = Vec::new();
    let (mut starved, mut held) = (0, Duration::ZERO);
    for task in tasks {
        let run = task.await.unwrap();
        starved += usize::from(run.waits.is_empty());
        held += run.held;
        waits.extend(run.waits);
    }
    waits.sort_unstable();
    let at = |q: f64| waits[((waits.len() as f64 * q) as usize).min(waits.len() - 1)];
    Figures {
        pool,
        done: waits.len(),
        quantiles: [at(0.5), at(0.99), at(0.999), at(0.9999)],
        max: *waits.last().unwrap(),
        starved,
        mean_hold: held / waits.len() as u32,
    }
}

/// Times a get, holds what it got for `HOLD`, drops it.
macro_rules! checkout {
    ($pool:expr, |$p:ident| $get:expr) => {{
        let pool = $pool;
        move || {
            let $p = pool.clone();
            async move {
                let t0 = Instant::now();
                let conn = $get.unwrap();
                let waited = t0.elapsed();
                let t1 = Instant::now();
                tokio::time::sleep(HOLD).await;
                drop(conn);
                (waited, t1.elapsed())
            }
        }
    }};
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let window = Duration::from_secs(if quick { 1 } else { 5 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let figures = rt.block_on(async {
        let mut figures = Vec::new();

        let connpool = connpool::Pool::builder(UnitNoop)
            .max_open(POOL)
            .initial(POOL)
            .build()
            .await
            .unwrap();
        figures.push(run("connpool", window, checkout!(connpool, |p| p.get().await)).await);

        let bb8 = bb8::Pool::builder()
            .max_size(POOL as u32)
            .min_idle(Some(POOL as u32))
            .build(PeerNoop)
            .await
            .unwrap();
        figures.push(run("bb8", window, checkout!(bb8, |p| p.get().await)).await);

        let deadpool: deadpool::managed::Pool<PeerNoop> =
            deadpool::managed::Pool::builder(PeerNoop)
                .max_size(POOL)
                .build()
                .unwrap();
        figures.push(run("deadpool", window, checkout!(deadpool, |p| p.get().await)).await);

        let mobc = mobc::Pool::builder()
            .max_open(POOL as u64)
            .max_idle(POOL as u64)
            .build(PeerNoop);
        figures.push(run("mobc", window, checkout!(mobc, |p| p.get().await)).await);

        let qp = qp::Pool::new(PeerNoop, POOL);
        qp.reserve(POOL).await.unwrap();
        figures.push(run("qp", window, checkout!(qp, |p| p.acquire().await)).await);
        figures
    });

    println!(
        "{TASKS} tasks, {POOL} connections, hold {HOLD:?}, {window:?} per pool, \
         multi-thread runtime (2 workers); acquire latency in ms"
    );
    println!(
        "{:<9} {:>9} {:>6} {:>6} {:>7} {:>8} {:>8} {:>8} {:>11} {:>13}",
        "pool",
        "checkouts",
        "p50",
        "p99",
        "p99.9",
        "p99.99",
        "max",
        "starved",
        "FIFO ideal",
        "p99.99/ideal"
    );
    for f in &figures {
        println!(
            "{:<9} {:>9} {:>6} {:>6} {:>7} {:>8} {:>8} {:>8} {:>11} {:>13.2}",
            f.pool,
            f.done,
            ms(f.quantiles[0]),
            ms(f.quantiles[1]),
            ms(f.quantiles[2]),
            ms(f.quantiles[3]),
            ms(f.max),
            f.starved,
            ms(f.ideal()),
            f.quantiles[3].as_secs_f64() / f.ideal().as_secs_f64(),
        );
    }
}
