//! A cell's measurement: its tasks' load, what it measured, and the
//! spread of the rounds' ratios.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Db, Workload};

/// What one cell measured (in one or more rounds).
#[derive(Default)]
pub(super) struct Cell {
    /// Requests completed within the windows.
    pub(super) done: usize,
    /// The windows' total length.
    pub(super) window: Duration,
    /// Of the requests begun in the windows (sorted by `summary`).
    pub(super) latencies: Vec<Duration>,
    /// Requests per second of each round.
    pub(super) rates: Vec<f64>,
    /// The 99th percentile latency of each round.
    pub(super) p99s: Vec<Duration>,
    /// Tasks that completed nothing, in the worst round.
    pub(super) starved: usize,
    pub(super) errors: usize,
    /// Session resets the pool ran (connpool's recycle counter).
    pub(super) resets: Option<u64>,
}

impl Cell {
    pub(super) fn per_second(&self) -> f64 {
        self.done as f64 / self.window.as_secs_f64()
    }

    /// Adds `round`'s measurements.
    pub(super) fn add(&mut self, round: Cell) {
        self.done += round.done;
        self.window += round.window;
        self.latencies.extend(round.latencies);
        self.rates.extend(round.rates);
        self.p99s.extend(round.p99s);
        self.starved = self.starved.max(round.starved);
        self.errors += round.errors;
        self.resets = match (self.resets, round.resets) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }

    /// The latency at quantile `q` (`latencies` sorted).
    pub(super) fn at(&self, q: f64) -> Duration {
        let l = &self.latencies;
        l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }
}

/// Runs `tasks` tasks of `workload` against `db`: warm-up, then the window.
pub(super) async fn measure(
    db: Arc<Db>,
    workload: Workload,
    tasks: usize,
    warmup: Duration,
    window: Duration,
) -> Cell {
    let start = Instant::now();
    let (from, until) = (start + warmup, start + warmup + window);
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let db = Arc::clone(&db);
            tokio::spawn(async move {
                // (latencies of requests begun in the window, done in it, errors)
                let (mut latencies, mut done, mut errors) = (Vec::new(), 0usize, 0usize);
                loop {
                    let began = Instant::now();
                    if began >= until {
                        break;
                    }
                    let ok = db.request(workload).await.is_ok();
                    let ended = Instant::now();
                    if !ok {
                        errors += 1;
                    }
                    if began >= from {
                        latencies.push(ended - began);
                        done += usize::from(ok && ended <= until);
                    }
                }
                (latencies, done, errors)
            })
        })
        .collect();
    let (mut latencies, mut done, mut starved, mut errors) = (Vec::new(), 0, 0, 0);
    for handle in handles {
        let (l, d, e) = handle.await.expect("a load task panicked");
        latencies.extend(l);
        done += d;
        errors += e;
        starved += usize::from(d == 0);
    }
    let mut cell = Cell {
        done,
        window,
        latencies,
        rates: vec![done as f64 / window.as_secs_f64()],
        starved,
        errors,
        ..Cell::default()
    };
    cell.latencies.sort_unstable();
    cell.p99s = vec![cell.at(0.99)];
    cell
}

/// The geometric mean of `ratios` and its interval of two standard errors
/// (the rounds' ratios are taken as independent samples), as the table
/// shows them: an interval that holds 1.00 says the pools did not differ
/// by more than the noise of this run.
pub(super) fn spread(ratios: Vec<f64>) -> String {
    let logs: Vec<f64> = ratios.iter().map(|r| r.ln()).collect();
    let n = logs.len() as f64;
    if logs.is_empty() {
        return String::new();
    }
    let mean = logs.iter().sum::<f64>() / n;
    if logs.len() < 2 {
        return format!("{:.2}", mean.exp());
    }
    let variance = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let error = 2.0 * (variance / n).sqrt();
    format!(
        "{:.2} ({:.2}–{:.2})",
        mean.exp(),
        (mean - error).exp(),
        (mean + error).exp()
    )
}
