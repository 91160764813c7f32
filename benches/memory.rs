//! Memory: heap bytes the pool holds per idle connection and per waiter,
//! measured with dhat's heap statistics at 100,000 of each.
//!
//! `cargo bench --bench memory`. The figures include the slack of the
//! pool's growable buffers (slab and vectors double when full), so they are
//! what a process really pays, not a struct's `size_of`. An idle connection
//! is measured in its steady state: in the idle set and, after the
//! maintenance task's turn, with its entry in the deadline heap.

use std::time::Duration;

mod support;

use connpool::Pool;
use support::UnitNoop as Noop;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const N: usize = 100_000;

fn heap() -> usize {
    dhat::HeapStats::get().curr_bytes
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    // A paused clock, so the maintenance task's turns happen when this
    // bench says (the pool follows tokio's clock).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        // The pre-warm spawns N dial tasks: the runtime's run queue grows to
        // hold them, and keeps that capacity. Grow it first, so that what is
        // measured below is the pool's.
        let tasks: Vec<_> = (0..N).map(|_| tokio::spawn(async {})).collect();
        for t in tasks {
            t.await.unwrap();
        }
        // Idle connections: a pool pre-warmed with N, minus no pool.
        let empty = heap();
        let pool = Pool::builder(Noop)
            .max_open(N)
            .initial(N)
            .build()
            .await
            .unwrap();
        let built = heap();
        // Lend them all, and let the maintenance task drop the pre-warm's
        // deadlines (their connections are lent).
        let conns: Vec<_> = futures_take(&pool, N).await;
        tokio::time::advance(Duration::from_secs(60)).await;
        settle().await;
        let lent = heap();
        // Return them all at once: they are idle and fresh (the first return
        // wakes the maintenance task; none pushes anything). The task's next
        // turn moves them into the deadline heap: the steady state of an
        // idle connection.
        drop(conns);
        settle().await;
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
            let _ = w.await;
        }
        pool.close().await;

        println!("heap bytes held by the pool, at {N} of each (dhat, including buffer slack):");
        println!("  per idle connection: {per_idle:.0} B (beyond the 8-byte connection)");
        println!("  per waiter:          {per_waiter:.0} B (beyond the getter's own task)");
        println!(
            "  (stages, bytes per connection: built {:.0}, all lent {:.0})",
            (built - empty) as f64 / N as f64,
            (lent - empty) as f64 / N as f64
        );
    });
}

/// Lets the maintenance task take its turn.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// Takes `n` connections at once (all idle ones), to return them together.
async fn futures_take(pool: &Pool<Noop>, n: usize) -> Vec<connpool::Pooled<'_, Noop>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(pool.get().await.unwrap());
    }
    v
}
