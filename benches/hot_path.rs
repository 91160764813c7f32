//! The hot path alone, for instruction counts: N get-then-drop on one idle
//! connection of a no-op manager, default config, current-thread runtime.
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
//! (`cargo bench` passes `--bench`; the first number among the arguments is N.)

mod support;

use connpool::Pool;
use support::Noop;

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = Pool::builder(Noop)
            .max_open(1)
            .initial_for(0, 1)
            .build()
            .await
            .unwrap();
        let start = std::time::Instant::now();
        let mut sum = 0u64;
        for _ in 0..n {
            let conn = pool.get_for(&0).await.unwrap();
            sum += *conn;
        }
        let per_op = start.elapsed().as_nanos() as f64 / n as f64;
        println!("{n} get+return: {per_op:.1} ns each ({sum})");
    });
}
