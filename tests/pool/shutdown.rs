//! Shutdown is normal: a runtime may stop with a great many getters queued,
//! and the last pool handle may be dropped without `close()`.

use std::sync::atomic::{AtomicUsize, Ordering};

use connpool::{ConnectError, Error, Manager, Pool, Pooled, async_trait};
use tokio::runtime::{Builder as Runtime, Runtime as Rt};

use crate::support::{Mock, ZERO, core_builder, counts, settle};

/// Getters queued behind a dial that never ends.
const QUEUED: usize = 100_000;

/// A manager whose dials never end.
struct Hang {
    connects: AtomicUsize,
}

#[async_trait]
impl Manager for Hang {
    type Key = u32;
    type Connection = ();
    type Error = std::io::Error;

    async fn connect(&self, _: &u32) -> Result<(), std::io::Error> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

fn current_thread() -> Rt {
    Runtime::new_current_thread().enable_all().build().unwrap()
}

fn multi_thread() -> Rt {
    Runtime::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Drops `rt` on a thread of its own with the default stack size (2 MiB),
/// and prints how long that took.
fn drop_on_a_default_stack(rt: Rt, what: &str) {
    let start = std::time::Instant::now();
    std::thread::Builder::new()
        .name("drops the runtime".into())
        .spawn(move || drop(rt))
        .unwrap()
        .join()
        .expect("dropping the runtime panicked (or overflowed its stack)");
    println!("{what}: runtime dropped in {:?}", start.elapsed());
}

fn build(rt: &Rt) -> Pool<Hang> {
    rt.block_on(
        Pool::builder(Hang { connects: AtomicUsize::new(0) })
            .max_open(1)
            .max_connecting(1)
            .checkout_timeout(None)
            .build(),
    )
    .unwrap()
}

/// Waits (yielding, no time passes) until `n` getters wait.
async fn until_waiting(pool: &Pool<Hang>, n: usize) {
    while pool.state().waiting < n {
        tokio::task::yield_now().await;
    }
}

/// Nothing open (so nothing lent or dialing), nobody waiting.
#[track_caller]
fn assert_nothing_left(pool: &Pool<Hang>) {
    assert_eq!(counts(pool), ZERO);
}

/// The pool's runtime shuts down under one dial with `QUEUED` getters
/// behind it, each queued for a dial (`keyed`: of a key of its own, in the
/// pool's global dial queue; else of one key). Every getter, running on
/// another runtime, is told `Aborted`, and nothing stays counted.
fn getters_of_a_pool_whose_runtime_stops(pool_rt: Rt, keyed: bool) {
    let pool = build(&pool_rt);
    let getters_rt = current_thread();
    let getters: Vec<_> = getters_rt.block_on(async {
        let getters: Vec<_> = (0..QUEUED as u32)
            .map(|i| {
                let pool = pool.clone();
                let key = if keyed { i } else { 0 };
                tokio::spawn(async move { pool.get_for(&key).await.map(drop) })
            })
            .collect();
        until_waiting(&pool, QUEUED).await;
        getters
    });
    assert_eq!(pool.state().dialing, 1);

    drop_on_a_default_stack(pool_rt, &format!("pool's runtime, keyed {keyed}"));

    getters_rt.block_on(async {
        for g in getters {
            match g.await.expect("getter task") {
                Err(Error::Connect(ConnectError::Aborted)) | Err(Error::Closed) => {}
                other => panic!("expected Aborted or Closed, got {other:?}"),
            }
        }
    });
    assert_nothing_left(&pool);
}

#[test]
fn current_thread_runtime_stops_under_100_000_queued_getters_of_one_key() {
    getters_of_a_pool_whose_runtime_stops(current_thread(), false);
}

#[test]
fn current_thread_runtime_stops_under_100_000_queued_getters_of_as_many_keys() {
    getters_of_a_pool_whose_runtime_stops(current_thread(), true);
}

#[test]
fn multi_thread_runtime_stops_under_100_000_queued_getters() {
    getters_of_a_pool_whose_runtime_stops(multi_thread(), true);
}

/// Pool and getters on one runtime, which is dropped with `QUEUED` getters
/// waiting: the getter tasks and the dial are dropped together, in no
/// particular order.
fn one_runtime_stops(rt: Rt) {
    let pool = build(&rt);
    rt.block_on(async {
        for i in 0..QUEUED as u32 {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get_for(&(i % 1000)).await.map(drop) });
        }
        until_waiting(&pool, QUEUED).await;
    });
    drop_on_a_default_stack(rt, "one runtime");
    assert_nothing_left(&pool);
}

#[test]
fn a_current_thread_runtime_stops_with_its_own_100_000_getters() {
    one_runtime_stops(current_thread());
}

#[test]
fn a_multi_thread_runtime_stops_with_its_own_100_000_getters() {
    one_runtime_stops(multi_thread());
}

/// Dropping the last handle closes the pool: its idle connections get
/// `Manager::close`, a lent one when its guard drops.
#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_closes_the_connections() {
    let (mock, pool) = Mock::<()>::pool(|b| b.max_open(3).initial(3)).await;
    let lent = Pooled::into_owned(pool.get().await.unwrap());
    let other = pool.clone();
    drop(pool);
    settle().await;
    assert!(mock.closed().is_empty(), "a handle is left");
    drop(other);
    settle().await;
    let mut closed = mock.closed();
    closed.sort_unstable();
    assert_eq!(closed.len(), 2, "the idle connections: {closed:?}");
    drop(lent);
    settle().await;
    assert_eq!(mock.closed().len(), 3, "and the lent one on its return");
}

/// The close on drop needs the pool's runtime only while it runs: a pool
/// outliving its runtime drops its connections (no task can run), without
/// a panic.
#[test]
fn dropping_the_last_handle_after_the_runtime_is_gone_does_not_panic() {
    let rt = current_thread();
    let mock = Mock::<()>::new();
    let pool = rt
        .block_on(core_builder(mock.clone()).initial(2).build())
        .unwrap();
    let lent = Pooled::into_owned(rt.block_on(pool.get()).unwrap());
    drop(rt);
    drop(pool);
    drop(lent);
    assert!(mock.closed().is_empty(), "no runtime ran Manager::close");
}
