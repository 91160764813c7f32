//! What the three test binaries (`pool`, `managers`, `reliability`) share,
//! compiled once into each of them (`#[path = "../support/mod.rs"]`):
//!
//! - [`mock`]: a scripted mock manager for the pool's own logic;
//! - [`log`]: a `tracing` subscriber that captures events and spans;
//! - [`echo`], [`fault`]: an in-process TCP echo server and a
//!   fault-injecting TCP proxy (`tcp`);
//! - [`nginx`]: a throwaway nginx for the HTTP/1.1 tests (`http`);
//! - [`grpc`]: an in-process tonic server (`grpc`), and raw HTTP/2 for
//!   scripted servers (`http`);
//! - [`ws`]: an in-process WebSocket server, plain or over TLS
//!   (`websocket`);
//! - [`pg`]: a throwaway PostgreSQL server (`postgres`; the file stays in
//!   `examples/support/pg_server.rs`, shipped with the examples);
//! - [`redis`]: a throwaway redis-server (`redis`);
//! - [`netns`]: a network namespace of a test's own, for silent
//!   partitions (Linux, root);
//! - [`outage`]: one server outage as a client lives it, for the restart
//!   tests (`tcp`);
//! - here: helpers for getters and counts, and [`alone`] /
//!   [`with_others`] for tests that need the process to themselves.
#![allow(dead_code)]

#[cfg(feature = "tcp")]
pub mod echo;
#[cfg(feature = "tcp")]
pub mod fault;
#[cfg(any(feature = "http", feature = "grpc"))]
pub mod grpc;
pub mod log;
pub mod mock;
#[cfg(feature = "postgres")]
#[path = "../../examples/support/movable.rs"]
pub mod movable;
#[cfg(target_os = "linux")]
#[path = "../../examples/support/netns.rs"]
pub mod netns;
#[cfg(feature = "http")]
#[path = "../../examples/support/nginx_server.rs"]
pub mod nginx;
#[cfg(feature = "tcp")]
pub mod outage;
#[cfg(feature = "postgres")]
#[path = "../../examples/support/pg_server.rs"]
pub mod pg;
#[cfg(feature = "redis")]
#[path = "../../examples/support/redis_server.rs"]
pub mod redis;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "websocket")]
pub mod ws;

#[allow(unused_imports)] // not every binary uses every part
pub use mock::{Gate, Key, Mock, MockConn, MockError, Step, Switches, core_builder};

use std::future::Future;
use std::time::Duration;

use connpool::{Error, KeyState, Manager, Pool, PoolState, Pooled};
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The tests of one binary run in parallel threads of one process. One that
/// needs the process to itself takes [`alone`]: the soak test counts the
/// process's file descriptors, and the fault tests hold timed bounds meant
/// for a machine not also running the other tests. The other tests of such
/// a binary take [`with_others`], so that none runs beside it. Both are
/// taken before a runtime is built (a runtime opens descriptors of its own)
/// and held until it is dropped. (Not poisoned by a failed test.)
static PROCESS: RwLock<()> = RwLock::new(());

/// The process to this test alone (see [`PROCESS`]).
pub fn alone() -> RwLockWriteGuard<'static, ()> {
    PROCESS.write()
}

/// The process shared with other tests, but with none that runs [`alone`].
pub fn with_others() -> RwLockReadGuard<'static, ()> {
    PROCESS.read()
}

/// Runs `body` to completion on a new runtime with `workers` worker threads
/// (`#[tokio::test(flavor = "multi_thread")]` for a test that must take
/// [`alone`] or [`with_others`] first), then drops the runtime.
pub fn multi_thread<F: Future>(workers: usize, body: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("building a runtime")
        .block_on(body)
}

/// Bound of a real-time wait for what a working implementation does within
/// milliseconds (servers, sockets): only a broken one runs into it.
pub const BOUND: Duration = Duration::from_secs(5);

/// Polls `cond` every 1 ms of real time until it holds, for at most
/// [`BOUND`]; returns how long it took.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < BOUND, "{what}: not within {BOUND:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    start.elapsed()
}

/// Lets spawned tasks (dials, closes, wake-ups) run to quiescence. Yields
/// only: no time passes, so it is deterministic under a paused clock.
pub async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Where the connections of a pool (or of one key) are, and how many
/// getters wait (the fields of `PoolState` / `KeyState` of those names):
/// compared by name, `..ZERO` for the rest, as in
/// `assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO })`.
/// `borrowers` counts handles to shared connections only (0 when lent
/// exclusively).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub open: usize,
    pub idle: usize,
    pub lent: usize,
    pub borrowers: usize,
    pub dialing: usize,
    pub pinging: usize,
    pub recycling: usize,
    pub waiting: usize,
}

/// Nothing open, nobody waiting.
pub const ZERO: Counts = Counts {
    open: 0,
    idle: 0,
    lent: 0,
    borrowers: 0,
    dialing: 0,
    pinging: 0,
    recycling: 0,
    waiting: 0,
};

/// `Counts::from(&state)` of a `PoolState` or a `KeyState`.
macro_rules! counts_from {
    ($($state:ty),*) => {$(
        impl From<&$state> for Counts {
            fn from(s: &$state) -> Counts {
                Counts {
                    open: s.open,
                    idle: s.idle,
                    lent: s.lent,
                    borrowers: s.borrowers,
                    dialing: s.dialing,
                    pinging: s.pinging,
                    recycling: s.recycling,
                    waiting: s.waiting,
                }
            }
        }
    )*};
}

counts_from!(PoolState, KeyState);

/// The counts of the whole pool.
pub fn counts<M: Manager>(pool: &Pool<M>) -> Counts {
    Counts::from(&pool.state())
}

/// The counts of one key, `None` if the pool forgot it (or never knew it).
pub fn key_counts<M: Manager>(pool: &Pool<M>, key: &M::Key) -> Option<Counts> {
    pool.key_state(key).as_ref().map(Counts::from)
}

/// Asserts `open = idle + lent + dialing + pinging + recycling` for the pool and for each key given.
#[track_caller]
pub fn check_counts<M: Manager>(pool: &Pool<M>, keys: &[M::Key]) {
    let s = pool.state();
    assert_eq!(
        s.open,
        s.idle + s.lent + s.dialing + s.pinging + s.recycling,
        "pool counts: {s:?}"
    );
    let mut sum = 0;
    for k in keys {
        if let Some(ks) = pool.key_state(k) {
            assert_eq!(
                ks.open,
                ks.idle + ks.lent + ks.dialing + ks.pinging + ks.recycling,
                "key {k:?}: {ks:?}"
            );
            sum += ks.open;
        }
    }
    if !keys.is_empty() {
        assert!(sum <= s.open);
    }
}

/// What a get in a task of its own returns (the guard owns its pool).
pub type Got<Mg> = Result<Pooled<'static, Mg>, Error<<Mg as Manager>::Error>>;

/// A getter of `key` in a task of its own (it runs at the next yield).
pub fn spawn_get<Mg: Manager>(pool: &Pool<Mg>, key: Mg::Key) -> JoinHandle<Got<Mg>> {
    let pool = pool.clone();
    tokio::spawn(async move { pool.get_for(&key).await.map(Pooled::into_owned) })
}

/// The result of a spawned task (which must not have panicked).
pub async fn join<T>(h: JoinHandle<T>) -> T {
    h.await.expect("task panicked")
}

/// The connection of a successful get.
#[track_caller]
pub fn ok<Mg: Manager>(r: Result<Pooled<'_, Mg>, Error<<Mg as Manager>::Error>>) -> Pooled<'_, Mg> {
    match r {
        Ok(c) => c,
        Err(e) => panic!("expected a connection, got {e:?}"),
    }
}

/// The error of a failed get.
#[track_caller]
pub fn err<Mg: Manager>(r: Result<Pooled<'_, Mg>, Error<Mg::Error>>) -> Error<Mg::Error> {
    match r {
        Ok(_) => panic!("expected an error, got a connection"),
        Err(e) => e,
    }
}

/// Sleeps until `t` (paused clock), then lets every task that woke run.
pub async fn at(t: Instant) {
    tokio::time::sleep_until(t).await;
    settle().await;
}

/// The label of a get's error while a server is down or restarting: one
/// that the outage explains ("connect error", "checkout timeout",
/// "backoff"), with a message (any other fails the test); and, for a
/// backoff, when to retry.
pub fn outage_error<E>(e: &Error<E>) -> (&'static str, Option<Duration>)
where
    Error<E>: std::fmt::Display,
{
    let (kind, retry) = match e {
        Error::Connect(_) => ("connect error", None),
        Error::Timeout { .. } => ("checkout timeout", None),
        Error::Backoff { retry_in, .. } => ("backoff", Some(*retry_in)),
        _ => panic!("unexpected error: {e}"),
    };
    assert!(!e.to_string().is_empty());
    (kind, retry)
}

/// What a client told to back off for `retry` does before it tries again
/// (not synchronization): it waits that long, at most 50 ms.
pub async fn back_off(retry: Option<Duration>) {
    if let Some(d) = retry {
        tokio::time::sleep(d.min(Duration::from_millis(50))).await;
    }
}
