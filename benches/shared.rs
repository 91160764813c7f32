//! Shared lending's get + return with a no-op manager whose connection
//! another borrower holds throughout (the steady state of a multiplexed
//! connection under load: Redis, HTTP/2), on a multi-thread runtime of 1
//! and of 2 workers: 64 tasks, each doing 100 get + drop in a row, then
//! yielding, for 3 s. Prints the wall time per operation.
//!
//! `cargo bench --bench shared`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod support;

use connpool::Pool;
use support::SharedNoop;

const TASKS: usize = 64;
const WINDOW: Duration = Duration::from_secs(3);

fn run(workers: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = Pool::builder(SharedNoop).build().await.unwrap();
        let _holder = pool.get_for(&1).await.unwrap();
        let ops = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..TASKS {
            let (pool, ops) = (pool.clone(), Arc::clone(&ops));
            tasks.spawn(async move {
                let mut n = 0;
                while start.elapsed() < WINDOW {
                    for _ in 0..100 {
                        black_box(&*pool.get_for(&1).await.unwrap());
                    }
                    n += 100;
                    tokio::task::yield_now().await;
                }
                ops.fetch_add(n, Ordering::Relaxed);
            });
        }
        while tasks.join_next().await.is_some() {}
        assert_eq!(pool.state().open, 1, "one shared connection served all");
        start.elapsed().as_nanos() as f64 / ops.load(Ordering::Relaxed) as f64
    })
}

fn main() {
    println!("shared get + return, one connection held by another borrower, {TASKS} tasks:");
    for workers in [1, 2] {
        println!(
            "  {workers} worker(s): {:.0} ns per get + return (wall)",
            run(workers)
        );
    }
}
