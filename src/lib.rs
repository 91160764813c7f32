//! # connpool
//!
//! A keyed async connection pool for tokio, modelled on Go's `http.Transport`.
//!
//! One pool serves many destinations (*keys*): each key has its own idle
//! list (LIFO: hot connections stay hot), its own open count with a per-key
//! cap under the pool's global caps, and its own FIFO wait queues. A getter
//! that finds no idle connection waits for one *and* starts a dial; whichever
//! comes first serves it, and the other is not wasted. A returned connection
//! goes straight to the first waiting getter of its key; when the global idle
//! cap is hit, the least recently used idle connection of *any* key goes.
//!
//! Connections age on a schedule without a timer each: one maintenance task
//! per pool sleeps until the earliest deadline (idle timeout, lifetime with
//! jitter, next keepalive ping, a waiting getter's checkout deadline) and
//! wakes exactly then. Idle connections are
//! pinged in the background so dead ones are found before a user meets
//! them, and a connection idle for a while is pinged again before it is lent
//! ([`HealthCheck`]). A key whose dials fail backs off exponentially, and
//! never has more than `max_connecting` dials in flight.
//!
//! **Time in tests.** The pool follows tokio's paused clock
//! (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`) if time
//! is paused when the pool is built: its idle timeouts, lifetimes, keepalive
//! and backoff then run exactly on the test's clock. On a running clock,
//! checkout and return read Linux's `CLOCK_MONOTONIC_COARSE` (~5–7.5 ns a
//! reading, where tokio's `Instant::now()` and its conversion cost ~45 ns
//! on the benchmarks' machine), so those thresholds are judged to within
//! one kernel tick (a few milliseconds).
//!
//! Hooks run your code at three points of a connection's life:
//! [`Builder::after_connect`] (inside its dial), [`Builder::before_lend`]
//! (before an idle connection is lent) and [`Builder::after_return`] (after
//! a return, in a task of its own, with a manager's own
//! [`Manager::recycle`] first: the PostgreSQL manager's `DISCARD ALL`), so
//! one borrower's session state does not reach the next. Unset, they cost
//! checkout and return a flag test each.
//!
//! Multiplexed connections (HTTP/2, gRPC channels) are lent *shared*: a
//! manager that answers [`Lending::shared`] gets each borrower its own
//! handle to a connection with room (an idle one, then the least loaded; see
//! [`Lending`] for filling one first), and a new dial only when every open
//! connection of the key is full.
//!
//! ```
//! use connpool::{Manager, Pool, async_trait};
//! # #[derive(Debug)] struct Conn;
//!
//! struct Echo;
//!
//! #[async_trait]
//! impl Manager for Echo {
//!     type Key = ();
//!     type Connection = Conn;
//!     type Error = std::io::Error;
//!
//!     async fn connect(&self, _: &()) -> Result<Conn, std::io::Error> {
//!         Ok(Conn)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::builder(Echo).max_open(8).initial(2).build().await?;
//! {
//!     let conn = pool.get().await?; // the newest idle connection
//!     let _: &Conn = &conn;
//! } // back to the pool
//! assert_eq!(pool.state().idle, 2);
//! pool.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! ## Metrics
//!
//! With the feature `metrics`, the pool reports through the
//! [`metrics`](https://docs.rs/metrics) facade (install a recorder before
//! building the pool), under the names of OpenTelemetry's semantic
//! conventions for connection pools. Every series carries
//! `db.client.connection.pool.name` (the builder's
//! [`name`](Builder::name)); with
//! [`metrics_key_attribute`](Builder::metrics_key_attribute) the three
//! histograms and the timeouts also carry `connpool.key` (the key's `Debug`).
//!
//! | name | kind | what it records |
//! |---|---|---|
//! | `db.client.connection.count` | gauge, `state` = `idle` / `used` | connections idle, and lent (exclusively or to at least one borrower) |
//! | `db.client.connection.idle.max` | gauge | `max_idle` |
//! | `db.client.connection.idle.min` | gauge | `min_idle` |
//! | `db.client.connection.max` | gauge | `max_open` |
//! | `db.client.connection.pending_requests` | gauge | getters waiting for a connection |
//! | `db.client.connection.timeouts` | counter | gets that ran into their checkout deadline |
//! | `db.client.connection.create_time` | histogram, s | each successful dial, `connect` and `after_connect` together |
//! | `db.client.connection.wait_time` | histogram, s | each successful get, from the call to the connection in hand (health check and `before_lend` included); a get served at once records its near-zero time |
//! | `db.client.connection.use_time` | histogram, s | each exclusive lending, from checkout to return (a shared connection's borrowers are not timed) |
//!
//! A failed get records no wait time (a timeout counts in `timeouts`).
//!
//! ## Where things are
//!
//! | module | job |
//! |---|---|
//! | `manager` | the factory/close trait you implement |
//! | `builder` | the settings, their defaults and their validation |
//! | `config` | the validated configuration, the defaults, sizing advice |
//! | `pool` | the public pool: get, state |
//! | `quiet` | waiting for a quiet pool: settled, close |
//! | `limits` | [`Limits`], the caps, and the rules that keep them consistent |
//! | `control` | run-time control of a running pool: resize, closing keys on demand, `min_idle` per key |
//! | `metrics` | the `metrics` facade's series (feature `metrics`) |
//! | `reports` | the `warn` events about borrowers: leaks, slow checkouts |
//! | `inner` | what a pool's handles, guards and tasks share; the one way to run a transition (lock, transition, unlock, apply) |
//! | `core` | the state under the pool's one lock and every transition of it, one file per section (read its docs first) |
//! | `store` | the data structures the state is made of: keys, connection records, borrowed connections, waiters, queues, deadlines |
//! | `clock` | the pool's time: instants as integers; on the hot path the coarse clock (or an opt-in clock thread's), tokio's (pausable) clock elsewhere |
//! | `maintenance` | the one task per pool that runs the timers |
//! | `guard` | [`Pooled`], which returns the connection on drop |
//! | `vetting` | the health check and the `before_lend` hook before an idle connection is lent |
//! | `tasks` | dial, keepalive-ping, recycle and close tasks |
//! | `hooks` | the user's hooks (after connect, before lend, after return) and how they are run |
//! | `contain` | calls into user code, with their panics contained |
//! | `stats` | snapshots and counters |
//! | `sync` | the lock, behind a shim for model checking with loom (`loom_tests`) |
//! | `error` | errors |
//! | `managers` | ready-made managers: TCP, PostgreSQL, HTTP/1.1, HTTP/2, gRPC |

#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod clock;
mod config;
mod contain;
mod control;
mod core;
pub mod defaults;
mod error;
mod guard;
mod hooks;
mod inner;
mod limits;
#[cfg(all(test, connpool_loom))]
mod loom_tests;
mod maintenance;
mod manager;
pub mod managers;
mod metrics;
mod policy;
mod pool;
mod quiet;
mod reports;
mod settings;
mod stats;
mod store;
mod sync;
mod tasks;
mod vetting;
mod wait;

/// The README's examples, compiled and run as doctests (they use every
/// shipped manager).
#[cfg(all(
    doctest,
    feature = "tcp",
    feature = "postgres",
    feature = "http2",
    feature = "grpc",
    feature = "balance"
))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use async_trait::async_trait;
pub use builder::Builder;
pub use config::Config;
pub use error::{BuildError, CloseTimeout, ConfigError, ConnectError, Error};
pub use guard::Pooled;
pub use hooks::HookFuture;
pub use limits::Limits;
pub use manager::{Lending, Manager};
pub use policy::{Backoff, HealthCheck};
pub use pool::Pool;
pub use reports::Leak;
pub use stats::{CloseReason, Counters, KeyState, PoolState};
