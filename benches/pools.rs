//! Checkout + return against the other Rust pools: same workload, same run.
//!
//! Each pool gets a no-op manager (connections are `u64`s, dials and checks
//! succeed at once) and keeps its default checks on:
//!
//! | pool | check on every checkout | other defaults kept |
//! |---|---|---|
//! | `connpool` | health check after 500 ms idle, `health` | checkout deadline, idle timeout, lifetime, keepalive, backoff |
//! | `connpool_keyed` | the same, through a `u32`-keyed pool (`get_for(&0)`: the key hashed and looked up) | the same |
//! | `bb8` | `test_on_check_out` (`is_valid`), `has_broken` | 30 s connection timeout, reaper |
//! | `deadpool` | `recycle` | no timeouts (its default) |
//! | `mobc` | `test_on_check_out` (`check`), `validate` on return | 30 s get timeout, cleaner |
//! | `qp` | `validate` (`acquire`, not `acquire_unchecked`) | — |
//! | `r2d2` | `test_on_check_out` (`is_valid`), `has_broken` | 30 s timeout, reaper |
//!
//! Sizes: every pool is capped at `P` connections and pre-filled with `P`.
//! mobc also gets `max_idle(P)` (its default idle cap of 2 would close and
//! redial connections on every return beyond two, which is not this workload).
//!
//! Grid: runtime × `P` × `N`. `rt` is `mt` (multi-thread, 2 workers) or `ct`
//! (current_thread). r2d2 is synchronous: it runs on `N` OS threads of a crew
//! spawned once per benchmark; the runtime plays no part in it, so its `mt`
//! and `ct` rows are the same measurement taken twice.
//!
//! Method (the same for every pool). A sample asked to time `iters`
//! get-then-drop runs `N` workers (tasks, or r2d2's threads) that each do
//! `ops = max(ceil(iters / N), 256)` of them; they are held at a start gate
//! (a `watch` channel; a condvar broadcast for the crew) until all are
//! spawned, and each notes when it starts and ends its loop. The sample's
//! time is from the first worker starting to the last one ending, scaled by
//! `iters / (N × ops)`. So spawning, waking and joining the workers stay out
//! of the timing, every worker does real work in every sample (criterion
//! asks for as little as one operation while it warms up, and picks small
//! counts for slow pools), and what is reported is wall time per get+drop
//! with `N` workers at it. Sampling is flat (every sample the same size),
//! 10 samples over about 1 s per pool and cell; criterion's figure is the
//! mean time per operation. Left in: tasks start within microseconds of each
//! other, but a crew of 1024 threads on 2 cores takes several milliseconds
//! to wake, which at 256 operations per thread adds a few tens of ns per
//! operation to r2d2 at that `N` (measured: 256 and 1024 per thread give the
//! same figure within noise at `P` = 16).
//!
//! Why the gate and the floor of 256: with criterion's linear sampling and
//! `iters` split over the workers, criterion picks `iters` of 6 to 60 for
//! r2d2 at `N` = 1024 (a sample there costs ~20-60 ms of thread wake-ups,
//! whatever `iters`), so most threads do nothing; and a clock started by a
//! coordinating thread can start after most of the work is done. Both give
//! impossible figures (1-40 ns per operation).
//!
//! Ids: `pools/{rt}/P{P}/N{N}/{pool}`, so one group compares every pool in
//! one cell. Filter as usual: `cargo bench --bench pools -- 'pools/ct/P4/'`.

mod support;

use std::hint::black_box;
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, criterion_group, criterion_main, measurement::WallTime,
};
use support::peers::PeerNoop;
use support::{Noop, UnitNoop};
use tokio::runtime::Runtime;

const SIZES: [usize; 2] = [4, 16];
const TASKS: [usize; 6] = [1, 4, 16, 64, 256, 1024];

/// A runtime flavour: its name in the ids and how to build it.
type Flavour = (&'static str, fn() -> Runtime);

// connpool's managers: `UnitNoop` (`Key = ()`) and `Noop` (keyed by
// `u32`, `get_for(&0)`); the other pools'
// is `PeerNoop`.

/// The pools of one size, built and pre-filled on one runtime.
struct Pools {
    connpool: connpool::Pool<UnitNoop>,
    connpool_keyed: connpool::Pool<Noop>,
    bb8: bb8::Pool<PeerNoop>,
    deadpool: deadpool::managed::Pool<PeerNoop>,
    mobc: mobc::Pool<PeerNoop>,
    qp: qp::Pool<PeerNoop>,
    r2d2: r2d2::Pool<PeerNoop>,
}

impl Pools {
    fn build(rt: &Runtime, p: usize) -> Self {
        rt.block_on(async {
            let connpool = connpool::Pool::builder(UnitNoop)
                .max_open(p)
                .initial(p)
                .build()
                .await
                .unwrap();

            let connpool_keyed = connpool::Pool::builder(Noop)
                .max_open(p)
                .initial_for(0, p)
                .build()
                .await
                .unwrap();

            let bb8 = bb8::Pool::builder()
                .max_size(p as u32)
                .min_idle(Some(p as u32))
                .build(PeerNoop)
                .await
                .unwrap();
            {
                // Make sure all P are open (min_idle fills in the background).
                let mut held = Vec::with_capacity(p);
                for _ in 0..p {
                    held.push(bb8.get().await.unwrap());
                }
            }

            let deadpool = deadpool::managed::Pool::builder(PeerNoop)
                .max_size(p)
                .build()
                .unwrap();
            {
                let mut held = Vec::with_capacity(p);
                for _ in 0..p {
                    held.push(deadpool.get().await.unwrap());
                }
            }

            let mobc = mobc::Pool::builder()
                .max_open(p as u64)
                .max_idle(p as u64)
                .build(PeerNoop);
            {
                let mut held = Vec::with_capacity(p);
                for _ in 0..p {
                    held.push(mobc.get().await.unwrap());
                }
            }
            // mobc returns connections from a spawned task: let them land.
            tokio::time::sleep(Duration::from_millis(20)).await;

            let qp = qp::Pool::new(PeerNoop, p);
            qp.reserve(p).await.unwrap();

            let r2d2 = r2d2::Pool::builder()
                .max_size(p as u32)
                .min_idle(Some(p as u32))
                .build(PeerNoop)
                .unwrap();

            Pools {
                connpool,
                connpool_keyed,
                bb8,
                deadpool,
                mobc,
                qp,
                r2d2,
            }
        })
    }
}

/// The fewest get+drop every task (or thread) does in one sample.
const MIN_OPS_PER_WORKER: u64 = 256;

/// Get+drop each of `n` workers does in a sample asked to time `iters`:
/// the same for all, at least [`MIN_OPS_PER_WORKER`], and at least `iters`
/// in total.
fn ops_per_worker(iters: u64, n: usize) -> u64 {
    iters.div_ceil(n as u64).max(MIN_OPS_PER_WORKER)
}

/// The time one sample reports for `iters` operations: from the first worker
/// starting its loop to the last one finishing it (`spans` are each worker's
/// start and end), scaled from the `ran` operations actually run to `iters`.
fn sample_time(spans: &[(Instant, Instant)], iters: u64, ran: u64) -> Duration {
    let first = spans.iter().map(|s| s.0).min().unwrap();
    let last = spans.iter().map(|s| s.1).max().unwrap();
    let nanos = (last - first).as_nanos() * u128::from(iters) / u128::from(ran);
    Duration::from_nanos(u64::try_from(nanos).unwrap())
}

/// Benches one async pool: `$get` is an expression on `$pool` (a clone owned
/// by the task) that awaits one checkout.
macro_rules! bench_async {
    ($group:expr, $rt:expr, $name:literal, $n:expr, $pool:expr, |$p:ident| $get:expr) => {{
        let n: usize = $n;
        let pool = $pool.clone();
        $group.bench_function($name, |b| {
            b.to_async($rt).iter_custom(|iters| {
                let pool = pool.clone();
                async move {
                    let ops = ops_per_worker(iters, n);
                    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
                    let mut handles = Vec::with_capacity(n);
                    for _ in 0..n {
                        let $p = pool.clone();
                        let mut go = go_rx.clone();
                        handles.push(tokio::spawn(async move {
                            go.wait_for(|&go| go).await.unwrap();
                            let start = Instant::now();
                            for _ in 0..ops {
                                let conn = $get.unwrap();
                                black_box(*conn);
                                drop(conn);
                            }
                            (start, Instant::now())
                        }));
                    }
                    go_tx.send(true).unwrap();
                    let mut spans = Vec::with_capacity(n);
                    for h in handles {
                        spans.push(h.await.unwrap());
                    }
                    sample_time(&spans, iters, ops * n as u64)
                }
            })
        });
    }};
}

/// The order a [`Crew`] waits for: run `ops` get+drop each in round `round`.
struct Order {
    round: u64,
    ops: u64,
    quit: bool,
}

/// A crew of `n` OS threads for r2d2, spawned once per benchmark and woken
/// together (one condvar broadcast) for each sample.
struct Crew {
    n: usize,
    order: Arc<(Mutex<Order>, Condvar)>,
    done: mpsc::Receiver<(Instant, Instant)>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Crew {
    fn new(n: usize, pool: &r2d2::Pool<PeerNoop>) -> Self {
        let order = Arc::new((
            Mutex::new(Order {
                round: 0,
                ops: 0,
                quit: false,
            }),
            Condvar::new(),
        ));
        let (done_tx, done) = mpsc::channel();
        let mut threads = Vec::with_capacity(n);
        for _ in 0..n {
            let pool = pool.clone();
            let order = Arc::clone(&order);
            let done = done_tx.clone();
            let t = std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut seen = 0;
                    loop {
                        let ops = {
                            let (lock, cv) = &*order;
                            let guard = cv
                                .wait_while(lock.lock().unwrap(), |o| o.round == seen && !o.quit)
                                .unwrap();
                            if guard.quit {
                                return;
                            }
                            seen = guard.round;
                            guard.ops
                        };
                        let start = Instant::now();
                        for _ in 0..ops {
                            let conn = pool.get().unwrap();
                            black_box(*conn);
                            drop(conn);
                        }
                        done.send((start, Instant::now())).unwrap();
                    }
                })
                .unwrap();
            threads.push(t);
        }
        Crew {
            n,
            order,
            done,
            threads,
        }
    }

    fn run(&self, iters: u64) -> Duration {
        let ops = ops_per_worker(iters, self.n);
        {
            let (lock, cv) = &*self.order;
            let mut order = lock.lock().unwrap();
            order.round += 1;
            order.ops = ops;
            cv.notify_all();
        }
        let spans: Vec<_> = (0..self.n).map(|_| self.done.recv().unwrap()).collect();
        sample_time(&spans, iters, ops * self.n as u64)
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        let (lock, cv) = &*self.order;
        lock.lock().unwrap().quit = true;
        cv.notify_all();
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

fn cell(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, pools: &Pools, n: usize) {
    bench_async!(group, rt, "connpool", n, pools.connpool, |p| p.get().await);
    bench_async!(group, rt, "connpool_keyed", n, pools.connpool_keyed, |p| p
        .get_for(&0)
        .await);
    bench_async!(group, rt, "bb8", n, pools.bb8, |p| p.get().await);
    bench_async!(group, rt, "deadpool", n, pools.deadpool, |p| p.get().await);
    bench_async!(group, rt, "mobc", n, pools.mobc, |p| p.get().await);
    bench_async!(group, rt, "qp", n, pools.qp, |p| p.acquire().await);

    // The crew is only spawned when the filter selects r2d2 in this cell.
    let mut crew: Option<Crew> = None;
    group.bench_function("r2d2", |b| {
        let crew = crew.get_or_insert_with(|| Crew::new(n, &pools.r2d2));
        b.iter_custom(|iters| crew.run(iters))
    });
}

fn pools(c: &mut Criterion) {
    let runtimes: [Flavour; 2] = [
        ("mt", || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
        }),
        ("ct", || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        }),
    ];
    for (rt_name, make) in runtimes {
        let rt = make();
        for p in SIZES {
            let pools = Pools::build(&rt, p);
            for n in TASKS {
                let mut group = c.benchmark_group(format!("pools/{rt_name}/P{p}/N{n}"));
                group
                    .sampling_mode(SamplingMode::Flat)
                    .sample_size(10)
                    .measurement_time(Duration::from_secs(1))
                    .warm_up_time(Duration::from_millis(200));
                cell(&mut group, &rt, &pools, n);
                group.finish();
            }
            // Drop the pools inside the runtime (their background tasks live there).
            let _guard = rt.enter();
            drop(pools);
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = pools
}
criterion_main!(benches);
