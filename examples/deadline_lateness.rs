//! How late a getter's checkout deadline error comes on a saturated
//! runtime: both cores busy with other tasks (each burns CPU for a while,
//! then yields), a pool whose one connection stays lent, and getters that
//! can only run into `checkout_timeout`. Each getter's lateness is the
//! time from its deadline to its error in hand; the p50, p99 and the
//! longest are printed.
//!
//! ```text
//! cargo run --release --example deadline_lateness
//! cargo run --release --example deadline_lateness -- --busy 64 --burn-us 500
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use connpool::{Error, Manager, Pool, async_trait};

/// Checkout deadlines on a saturated runtime.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Busy tasks beside the getters.
    #[arg(long, default_value_t = 32)]
    busy: usize,
    /// CPU each busy task burns between two yields, in microseconds.
    #[arg(long, default_value_t = 200)]
    burn_us: u64,
    /// Getters at once.
    #[arg(long, default_value_t = 16)]
    getters: usize,
    /// Gets per getter.
    #[arg(long, default_value_t = 40)]
    gets: usize,
    /// The pool's `checkout_timeout`, in milliseconds.
    #[arg(long, default_value_t = 50)]
    timeout_ms: u64,
}

/// Connections that cost nothing.
struct Free;

#[async_trait]
impl Manager for Free {
    type Key = ();
    type Connection = u64;
    type Error = std::io::Error;

    async fn connect(&self, _: &()) -> Result<u64, std::io::Error> {
        Ok(7)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let timeout = Duration::from_millis(args.timeout_ms);
    let pool = Pool::builder(Free)
        .max_open(1)
        .checkout_timeout(timeout)
        .build()
        .await?;
    let _held = pool.get().await?;

    let stop = Arc::new(AtomicBool::new(false));
    let burn = Duration::from_micros(args.burn_us);
    let busy: Vec<_> = (0..args.busy)
        .map(|_| {
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    while start.elapsed() < burn {
                        std::hint::spin_loop();
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();

    let getters: Vec<_> = (0..args.getters)
        .map(|_| {
            let pool = pool.clone();
            let gets = args.gets;
            tokio::spawn(async move {
                let mut late = Vec::with_capacity(gets);
                for _ in 0..gets {
                    let start = Instant::now();
                    match pool.get().await {
                        Err(Error::Timeout { .. }) => {
                            late.push(start.elapsed().saturating_sub(timeout))
                        }
                        other => panic!("expected a timeout, got {other:?}"),
                    }
                }
                late
            })
        })
        .collect();
    let mut late = Vec::new();
    for getter in getters {
        late.extend(getter.await?);
    }
    stop.store(true, Ordering::Relaxed);
    for task in busy {
        task.await?;
    }
    late.sort();
    let at = |p: f64| late[((late.len() as f64 * p) as usize).min(late.len() - 1)];
    println!(
        "{} busy tasks ({} µs between yields), {} getters × {} gets, checkout_timeout {:?}: \
         lateness p50 {:.2?}, p99 {:.2?}, longest {:.2?}",
        args.busy,
        args.burn_us,
        args.getters,
        args.gets,
        timeout,
        at(0.5),
        at(0.99),
        late[late.len() - 1],
    );
    Ok(())
}
