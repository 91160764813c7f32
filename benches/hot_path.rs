//! The hot path alone, for instruction counts: N get-then-drop on one idle
//! connection of a no-op manager, default config, current-thread runtime
//! (or, given a second number K, cycling over K keys of one connection each,
//! as `benches/checkout.rs` does; K = 0 is a pool whose key is `()`).
//! No criterion (its own work would drown the count): run it under
//! callgrind, which counts instructions repeatably whatever else the
//! machine is doing, and divide by N.
//!
//! ```text
//! cargo bench --bench hot_path -- 200000          # prints ns per get+return
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/deps/hot_path-* 100000       # instructions: total / N
//! ```
//!
//! (`cargo bench` passes `--bench`; the first number among the arguments is
//! N, the second K.) With many keys, the cost is in cache misses: callgrind's
//! `--cache-sim=yes` counts them as repeatably as it counts instructions.
//!
//! A third number T runs the loop on T threads at once, each with a
//! current-thread runtime of its own, on one pool of T connections per key
//! (N get+return each): the lock and the cache lines it guards move between
//! the cores on every operation, as in the multi-thread cells of
//! `benches/pools.rs`, but without the work-stealing scheduler deciding
//! whether the tasks share a worker (which makes those cells bimodal).
//! It prints wall time per get+return, all threads together.
//!
//! With `qp` among the arguments, the same loop runs on a `qp` pool
//! instead (`Key = ()`'s shape: N, then `qp`, then T threads, one
//! connection each): the lock-free pool `Key = ()` is measured
//! against, in the same harness (`... hot_path-* 100000 qp` under
//! callgrind; `... 1000000 qp 2` for two threads).
//!
//! Built with the `metrics` feature and run with `METRICS_RECORDER` set,
//! a recorder is installed first (`metrics-util`'s debugging recorder,
//! whose gauges and histograms are the atomics and lock-free buckets of the
//! usual exporters), so the pool's metrics cost what they cost in service.

mod support;

use std::sync::{Arc, Barrier};

use connpool::{Manager, Pool};
use support::{Noop, UnitNoop};

fn main() {
    #[cfg(feature = "metrics")]
    if std::env::var_os("METRICS_RECORDER").is_some() {
        metrics_util::debugging::DebuggingRecorder::new()
            .install()
            .expect("the first recorder");
    }
    if std::env::args().any(|a| a == "qp") {
        let mut numbers = std::env::args().filter_map(|a| a.parse::<u64>().ok());
        let n = numbers.next().unwrap_or(200_000);
        let threads = numbers.next().unwrap_or(1).max(1) as usize;
        return measure_qp(n, threads);
    }
    let mut numbers = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u64>().ok());
    let n = numbers.next().unwrap_or(200_000);
    let keys = numbers.next().unwrap_or(1) as u32;
    let threads = numbers.next().unwrap_or(1).max(1) as usize;
    if keys == 0 {
        measure(UnitNoop, &[()], n, threads);
    } else {
        measure(Noop, &(0..keys).collect::<Vec<_>>(), n, threads);
    }
}

/// Runs `n` get+return per thread on `threads` threads, cycling over `keys`,
/// and prints the wall time per get+return.
fn measure<M>(manager: M, keys: &[M::Key], n: u64, threads: usize)
where
    M: Manager<Connection = u64>,
{
    let per_key = threads;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = rt.block_on(async {
        let mut builder = Pool::builder(manager)
            .max_open(keys.len() * per_key)
            .max_open_per_key(per_key);
        for k in keys {
            builder = builder.initial_for(k.clone(), per_key);
        }
        builder.build().await.unwrap()
    });
    let keys: Arc<[M::Key]> = keys.into();
    let start_line = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (1..threads)
        .map(|_| {
            let pool = pool.clone();
            let keys = Arc::clone(&keys);
            let start_line = Arc::clone(&start_line);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                start_line.wait();
                rt.block_on(run(&pool, n, &keys))
            })
        })
        .collect();
    start_line.wait();
    let start = std::time::Instant::now();
    let mut sum = rt.block_on(run(&pool, n, &keys));
    for w in workers {
        sum += w.join().unwrap();
    }
    let per_op = start.elapsed().as_nanos() as f64 / (n as f64 * threads as f64);
    println!("{n} get+return x {threads} threads: {per_op:.1} ns each ({sum})");
}

/// `n` acquire-then-drop per thread on `threads` threads (each with a
/// current-thread runtime of its own) on one `qp` pool of `threads`
/// connections, as [`measure`] runs connpool.
fn measure_qp(n: u64, threads: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = rt.block_on(async {
        let pool = qp::Pool::new(support::peers::PeerNoop, threads);
        pool.reserve(threads).await.unwrap();
        pool
    });
    let start_line = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (1..threads)
        .map(|_| {
            let pool = pool.clone();
            let start_line = Arc::clone(&start_line);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                start_line.wait();
                rt.block_on(run_qp(&pool, n))
            })
        })
        .collect();
    start_line.wait();
    let start = std::time::Instant::now();
    let mut sum = rt.block_on(run_qp(&pool, n));
    for w in workers {
        sum += w.join().unwrap();
    }
    let per_op = start.elapsed().as_nanos() as f64 / (n as f64 * threads as f64);
    println!("{n} qp acquire+drop x {threads} threads: {per_op:.1} ns each ({sum})");
}

/// `n` acquire-then-drop.
async fn run_qp(pool: &qp::Pool<support::peers::PeerNoop>, n: u64) -> u64 {
    let mut sum = 0u64;
    for _ in 0..n {
        let conn = pool.acquire().await.unwrap();
        sum += *conn;
    }
    sum
}

/// `n` get-then-drop, cycling over `keys`.
async fn run<M: Manager<Connection = u64>>(pool: &Pool<M>, n: u64, keys: &[M::Key]) -> u64 {
    let mut sum = 0u64;
    let mut k = 0;
    for _ in 0..n {
        // Not `%`: a division per iteration would be timed with the pool.
        k += 1;
        if k == keys.len() {
            k = 0;
        }
        let conn = pool.get_for(&keys[k]).await.unwrap();
        sum += *conn;
    }
    sum
}
