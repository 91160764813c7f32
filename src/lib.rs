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
//! ([`Builder::health_check`]). A key whose dials fail backs off exponentially, and
//! never has more than `max_connecting` dials in flight.
//!
//! **Time in tests.** The pool follows tokio's paused clock
//! (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`) if time
//! is paused when the pool is built: its idle timeouts, lifetimes, keepalive
//! and backoff then run exactly on the test's clock: the pool reads time
//! only through tokio's `Instant::now()`.
//!
//! Hooks run your code at three points of a connection's life:
//! [`Builder::after_connect`] (inside its dial), [`Builder::before_lend`]
//! (before an idle connection is lent) and [`Builder::after_return`] (after
//! a return, in a task of its own, with a manager's own
//! [`Manager::recycle`] first: the PostgreSQL manager's session reset), so
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
//! [`metrics`](https://docs.rs/metrics) facade, under the names of
//! OpenTelemetry's semantic conventions for connection pools. A recorder
//! installed after the pool is built gets its series too (the build logs
//! at `info` that it found none). Every series carries
//! `db.client.connection.pool.name` (the builder's
//! [`name`](Builder::name)); with
//! [`metrics_key_attribute`](Builder::metrics_key_attribute) the three
//! histograms and the counters below but the closes also carry
//! `connpool.key` (the key's `Debug`). With
//! [`metrics_key_gauges(n)`](Builder::metrics_key_gauges),
//! `db.client.connection.count` and `pending_requests` also come per key
//! (`connpool.key`), for the `n` keys with the most connections and the
//! rest summed as `other`, published each second: at most `n + 1` series
//! each, whatever the number of keys.
//!
//! | name | kind | what it records |
//! |---|---|---|
//! | `db.client.connection.count` | gauge, `state` = `idle` / `used` | connections idle, and lent (exclusively or to at least one borrower) |
//! | `db.client.connection.idle.max` | gauge | `max_idle` |
//! | `db.client.connection.idle.min` | gauge | `min_idle` |
//! | `db.client.connection.max` | gauge | `max_open` |
//! | `db.client.connection.pending_requests` | gauge | getters waiting for a connection |
//! | `db.client.connection.timeouts` | counter | calls whose deadline passed while they **waited for a connection**: gets past their checkout deadline, and service calls (`PgService`, `RedisService`, `HttpService`, `WsService`) past their own deadline before they had a connection |
//! | `connpool.reply.timeouts` | counter | service calls whose deadline passed after they had their connection, while they **waited for the reply** |
//! | `connpool.dial.failures` | counter | dials that failed or timed out |
//! | `connpool.backoffs` | counter | times a key entered dial backoff (its gets then fail at once with the dial's error) |
//! | `connpool.rejections` | counter | gets refused at once because `max_waiters` getters already waited |
//! | `connpool.keepalive.failures` | counter | background keepalive pings that failed or timed out |
//! | `connpool.connection.closed` | counter, `reason` | connections closed, by reason: `broken`, `by_server` (the server or protocol ended it: `Connection: close`, a `GOAWAY` without error, a WebSocket Close), `idle_timeout`, `lifetime`, `uses`, `health_check`, `keepalive`, `max_idle_per_key`, `evicted_lru`, `retired`, `pool_closed`; the same as the `closed_*` [`Counters`] |
//! | `db.client.connection.create_time` | histogram, s | each successful dial, `connect` and `after_connect` together |
//! | `db.client.connection.wait_time` | histogram, s | each successful get, from the call to the connection in hand (health check and `before_lend` included); a get served at once records its near-zero time |
//! | `db.client.connection.use_time` | histogram, s | each exclusive lending, from checkout to return (a shared connection's borrowers are not timed) |
//!
//! A failed get records no wait time (a timeout counts in `timeouts`). A
//! service of your own counts its deadlines with [`Pool::count_timeout`].
//!
//! ## Crates
//!
//! Add the crate of your protocol: it re-exports the pool (`pool`, and
//! `Pool` at its root), the shared dial (`tcp`) and its protocol crate, so
//! it is the one dependency you need, and a major version of one protocol
//! crate (tonic, tungstenite, redis-rs) moves one connpool crate only. This
//! crate gathers them all behind features.
//!
//! | crate | what | its protocol crate | here |
//! |---|---|---|---|
//! | `connpool-core` | the pool: [`Manager`], [`Pool`], [`Builder`], hooks, metrics | none | this crate's root |
//! | `connpool-tcp` | TCP streams, and the TCP and TLS dial every manager shares (`tls` feature: rustls, no crypto provider forced; `ring`, `aws-lc-rs`, `native-roots`) | socket2, rustls | `tcp`, `tls`, `tls-ring`, `tls-aws-lc-rs`, `native-roots` |
//! | `connpool-postgres` | PostgreSQL | tokio-postgres | `postgres` |
//! | `connpool-redis` | Redis, Sentinel | redis | `redis` |
//! | `connpool-http` | HTTP/1.1, HTTP/2, gRPC, a tower `Service`, the balancer | hyper, h2, tonic | `http`, `grpc`, `balance`, `json` |
//! | `connpool-websocket` | WebSocket | tokio-tungstenite | `websocket` |

#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use connpool_core::*;

/// The ready-made managers, each behind its cargo feature: the protocol
/// crates' items under one path (`connpool::managers::postgres` is
/// `connpool-postgres`, …).
#[cfg(feature = "tcp")]
pub mod managers {
    #[cfg(feature = "http")]
    #[doc(inline)]
    pub use connpool_http as http;
    #[cfg(feature = "balance")]
    #[doc(inline)]
    pub use connpool_http::balance;
    #[cfg(feature = "grpc")]
    #[doc(inline)]
    pub use connpool_http::grpc;
    #[cfg(feature = "http")]
    #[doc(inline)]
    pub use connpool_http::service;
    #[cfg(feature = "http")]
    #[doc(inline)]
    pub use connpool_http::{HttpError, Origin};
    #[cfg(feature = "postgres")]
    #[doc(inline)]
    pub use connpool_postgres as postgres;
    #[cfg(feature = "redis")]
    #[doc(inline)]
    pub use connpool_redis as redis;
    #[doc(inline)]
    pub use connpool_tcp as tcp;
    #[cfg(feature = "tls")]
    #[doc(inline)]
    pub use connpool_tcp::tls;
    #[cfg(feature = "websocket")]
    #[doc(inline)]
    pub use connpool_websocket as websocket;
}

/// The README's examples, compiled and run as doctests (they use every
/// shipped manager).
#[cfg(all(
    doctest,
    feature = "tcp",
    feature = "postgres",
    feature = "http",
    feature = "grpc",
    feature = "balance",
    feature = "redis",
    feature = "serde"
))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
