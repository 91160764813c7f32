//! Memory: heap bytes the pool holds per idle connection and per waiter,
//! measured with dhat's heap statistics at 100,000 of each.
//!
//! `cargo bench --bench memory`. The figures include the slack of the
//! pool's growable buffers (slab and vectors double when full), so they are
//! what a process really pays, not a struct's `size_of`.

use std::time::Duration;

use connpool::{Manager, Pool, async_trait};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const N: usize = 100_000;

/// Connections are 8-byte numbers: everything above 8 bytes is the pool's.
struct Noop;

#[derive(Debug)]
struct Never;
impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
    }
}
impl std::error::Error for Never {}

#[async_trait]
impl Manager for Noop {
    type Key = ();
    type Connection = u64;
    type Error = Never;

    async fn connect(&self, _: &()) -> Result<u64, Never> {
        Ok(7)
    }
}

fn heap() -> usize {
    dhat::HeapStats::get().curr_bytes
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Idle connections: a pool pre-warmed with N, minus the same pool empty.
        let empty = heap();
        let pool = Pool::builder(Noop)
            .max_open(N)
            .initial(N)
            .build()
            .await
            .unwrap();
        // Every connection returned once, so each has its deadline entry.
        let conns: Vec<_> = futures_take(&pool, N).await;
        drop(conns);
        tokio::task::yield_now().await;
        let per_idle = (heap() - empty) as f64 / N as f64 - 8.0;
        assert_eq!(pool.state().idle, N);
        pool.close().await;
        drop(pool);

        // Waiters: a pool of one lent connection and N getters waiting. The
        // getters' tasks are allocated at spawn, before they first run; what
        // the heap grows by once they all wait is the pool's share.
        let pool = Pool::builder(Noop).max_open(1).build().await.unwrap();
        let held = pool.get().await.unwrap();
        let mut waiting = Vec::with_capacity(N);
        for _ in 0..N {
            let p = pool.clone();
            waiting.push(tokio::spawn(async move { p.get().await.map(|_| ()) }));
        }
        let spawned = heap();
        while pool.state().waiting < N {
            tokio::task::yield_now().await;
        }
        let per_waiter = (heap() - spawned) as f64 / N as f64;
        drop(held);
        for w in waiting {
            let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
        }
        pool.close().await;

        println!("heap bytes held by the pool, at {N} of each (dhat, including buffer slack):");
        println!("  per idle connection: {per_idle:.0} B (beyond the 8-byte connection)");
        println!("  per waiter:          {per_waiter:.0} B (beyond the getter's own task)");
    });
}

/// Takes `n` connections at once (all idle ones), to return them together.
async fn futures_take(pool: &Pool<Noop>, n: usize) -> Vec<connpool::Pooled<Noop>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(pool.get().await.unwrap());
    }
    v
}
