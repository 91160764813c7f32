//! # connpool-core
//!
//! The pool of [connpool](https://docs.rs/connpool), without any protocol:
//! the `Manager` trait, the pool, its builder, hooks, metrics. Use it
//! through a protocol crate (`connpool-postgres`, `connpool-redis`,
//! `connpool-http`, `connpool-websocket`, `connpool-tcp`), each of which
//! re-exports it, or through `connpool`, which gathers them all.
//! This crate depends on no protocol crate, so a manager cannot reach into
//! the pool's internals, nor the pool into a protocol.
//!
//! ## Where things are
//!
//! | module | job |
//! |---|---|
//! | `manager` | the factory/close trait you implement |
//! | `builder` | the builder: its setters (one per setting in `builder::setters`, with the values it refuses), the table of defaults and why, the rules that compare settings |
//! | `settings` | the settings as the builder keeps them: one field each, with its default |
//! | `policy` | the values some settings take: the health-check policy, the backoff |
//! | `config` | the validated configuration: the settings as set, and what `build` derived from them |
//! | `pool` | the public pool: get, state |
//! | `single` | [`Single`], a keyed manager as a manager of one key |
//! | `quiet` | waiting for a quiet pool: settled, close |
//! | `limits` | [`Limits`], the caps, and the rules that keep them consistent |
//! | `control` | run-time control of a running pool: resize, closing keys on demand, `min_idle` per key |
//! | `metrics` | the `metrics` facade's series (feature `metrics`) |
//! | `reports` | the `warn` events about borrowers: leaks, slow checkouts |
//! | `inner` | what a pool's handles, guards and tasks share; the one way to run a transition (lock, transition, unlock, apply); the dial, keepalive-ping, recycle and close tasks that apply it (`inner::tasks`) |
//! | `features` | what the features add to the hand-off, one file each (its table lists them), and how each attaches at the engine's points (`features::attach`) |
//! | `engine` | the hand-off: the state under the pool's one lock (keys and caps, idle connections, waiters, deadlines) and every transition of it, one file per section, naming no feature; the points where the features attach (`engine::points`). Read its docs first: they give the files in reading order |
//! | `clock` | the pool's time: tokio's (pausable) clock, instants as integers |
//! | `maintenance` | the one task per pool that runs the timers |
//! | `wait` | a getter's wait for its slot: the future, its timer, its cancel |
//! | `guard` | [`Pooled`], which returns the connection on drop |
//! | `guard_io` | the guard as its connection's I/O (`AsyncRead`/`AsyncWrite`, `Stream`/`Sink`) |
//! | `vetting` | the health check and the `before_lend` hook before an idle connection is lent |
//! | `hooks` | the user's hooks (after connect, before lend, after return) and how they are run |
//! | `contain` | calls into user code, with their panics contained |
//! | `stats` | snapshots and counters |
//! | `reason` | why the pool closes a connection |
//! | `sync` | the lock, behind a shim for model checking with loom (`loom_tests`) |
//! | `error` | errors |

#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod clock;
mod config;
mod contain;
mod control;
mod engine;
mod error;
mod features;
mod guard;
mod guard_io;
mod hooks;
mod inner;
mod limits;
#[cfg(all(test, connpool_loom))]
mod loom_tests;
mod maintenance;
mod manager;
mod metrics;
mod policy;
mod pool;
mod quiet;
mod reason;
mod reports;
mod settings;
mod single;
mod stats;
mod sync;
mod vetting;
mod wait;

pub use async_trait::async_trait;
pub use builder::Builder;
pub use error::{ConnectError, Error};
pub use guard::Pooled;
pub use limits::Limits;
pub use manager::{Health, Lending, Liveness, Manager};
pub use pool::Pool;
pub use single::{OneKey, Single};
pub use stats::{Counters, KeyState, PoolState, Waiting};
