//! A Redis manager: pools redis-rs [`MultiplexedConnection`]s, keyed by
//! server, database and user ([`RedisKey`]), lent *shared* by default.
//!
//! A multiplexed connection carries the commands of many callers at once,
//! pipelined: what one connection does for a whole process, a pool of them
//! lent one borrower at a time throws away. [`RedisManager`] answers
//! [`Manager::lending`] with [`Lending::shared`] and
//! [`fill_first`](connpool_core::Lending::fill_first), so the pool puts up to
//! [`max_borrowers`](connpool_core::Builder::max_borrowers) borrowers (100 by
//! default) on one connection, each holding its own [`RedisConn`] handle,
//! and takes another (idle, or dialed) only when every connection of the
//! key that has borrowers is that full: the longer a connection's pipeline,
//! the fewer system calls per command, on the server's one thread too.
//! What it adds over one connection kept by hand: a connection that died
//! (server restart, `CLIENT KILL`, a reset) is noticed at once and
//! replaced, one that stopped answering (a partition, a frozen server) is
//! replaced after three commands in a row got no reply, the key backs off while the server is down (gets fail
//! fast, with the dial's error), and comes back by itself.
//!
//! | [`Manager`] method | here |
//! |---|---|
//! | `connect` | a TCP dial with [`TcpManager`]'s socket setup (`TCP_NODELAY`, kernel keepalive), TLS for `rediss://`, then redis-rs's setup (`HELLO`/`AUTH`, `SELECT`, `CLIENT SETINFO`) and the connection's driver spawned |
//! | `lending` | shared up to the manager's [`shared`](RedisManager::shared) limit, filling a connection before another takes borrowers, or, for an [`exclusive`](RedisKey::exclusive) key, exclusive |
//! | `health` | broken when the socket reached end of stream or failed, the driver task ended, or three commands in a row got no reply within the response timeout (with no reply to any in between), its server changed on the answers and announcements below; in need of a recycle when the borrower sent a command that changes the connection's state (or one failed); no round trip |
//! | `ping` | `PING`, within the [`response_timeout`](RedisManager::response_timeout) |
//! | `recycle` | for connections lent exclusively: `RESET`, then the setup it undid (`HELLO 3`/`AUTH`, `SELECT`) in the same round trip; a failure closes the connection |
//! | `close` | drops the handle; the driver task ends once the last borrower's handle is gone |
//!
//! # One deadline per call
//!
//! [`RedisService`] runs each command (or pipeline) on a connection
//! borrowed for it, as redis-rs's `ConnectionManager` runs it on its one
//! connection (it is a [`ConnectionLike`](redis::aio::ConnectionLike), so
//! every `AsyncCommands` method works on it), with one deadline,
//! [`RedisService::timeout`], from the checkout (a wait, a health check, a
//! dial) to the reply. Past it the call fails with an I/O error of kind
//! `TimedOut` that names the deadline and where the call was (`waiting for
//! a connection`, `waiting for the reply`). A guard checked out by hand
//! has the pool's `checkout_timeout` for its checkout and the manager's
//! `response_timeout` for each reply.
//!
//! # Exclusive lending, for commands that leave state behind
//!
//! Some commands must not share a connection: blocking ones (`BLPOP`,
//! `XREAD BLOCK`) hold up every command queued behind them; `WATCH`,
//! `MULTI`/`EXEC`, `SELECT` and `CLIENT SETNAME` change the connection for
//! everyone on it; pub/sub takes it over. For them, get a connection of an
//! exclusive key: [`RedisKey::exclusive`] per get (a keyed pool), or
//! [`RedisManager::exclusive`] for a whole
//! pool. A key's shared and exclusive connections are counted apart (each
//! key has its own `max_open_per_key`), so a borrower stuck in `BLPOP`
//! never holds up a shared one. When an exclusive borrower that may have
//! changed its connection's state gives it back (it sent `SELECT`,
//! `CLIENT …`, `WATCH`, `MULTI`, a `SUBSCRIBE`, `AUTH`, `HELLO`,
//! `READONLY`/`READWRITE` or `MONITOR`, a command failed on the connection
//! (no reply in time, or the connection broke), or it took the
//! redis-rs connection out with `multiplexed()` or changed its reply
//! timeout), the pool resets it off the borrower's path, before anyone
//! else gets it; a borrower that only read and wrote data costs no reset.
//! `RESET` (Redis 6.2 or later) ends a `MULTI`, drops
//! `WATCH`es, subscriptions and the client name, and goes back to database
//! 0, RESP2 and the default user, so the manager sends the connection's
//! setup again with it. A reset that fails closes the connection; the
//! pool's [`after_connect`](connpool_core::Builder::after_connect) hook runs again
//! after it. The reset queues behind any command still running on the
//! connection (a `BLPOP` whose caller stopped waiting): the pool's
//! [`ping_timeout`](connpool_core::Builder::ping_timeout) bounds it, and a reset
//! that runs out of it closes the connection too. On a RESP3 connection,
//! redis-rs keeps its own count of the subscriptions made through
//! `subscribe`; the reset does not reach it, so unsubscribe (with the
//! channels named) before giving such a connection back.
//!
//! # Dead connections, slow servers
//!
//! The manager watches the connection's socket: when it reaches end of
//! stream or fails (the server restarted, `CLIENT KILL`), `health` says
//! so at once, the pool closes the connection instead of lending it again,
//! and its commands in flight fail with an I/O error naming the server and
//! the cause once (`connection to 127.0.0.1:6379 lost: the server closed
//! the connection`). While the server is down, dials fail and the key
//! backs off ([`Builder::backoff`](connpool_core::Builder::backoff)): a
//! get waits for the pool's probe of the server if one is in flight or
//! due within 400 ms, and otherwise fails at once, with the last dial's
//! error (`connecting to 127.0.0.1:6379: Connection refused`); the first
//! probe after the server is back serves the gets that waited for it,
//! and those after it.
//!
//! A server that is slow (`DEBUG SLEEP`, a long script) or a path that
//! went silent: commands fail after the [`response_timeout`](RedisManager::response_timeout)
//! (`no reply from 127.0.0.1:6379 within 500ms`), and late replies are
//! read and dropped. One missed reply leaves the connection lent; three
//! commands in a row without a reply, and no reply to any command in
//! between, close it to new borrowers (`connection to 127.0.0.1:6379 lost:
//! no reply to 3 commands in a row, each given 500ms`) and the pool dials
//! another: behind a partition the old connection would wait out TCP's
//! retransmissions, where a new one works the moment the path is back.
//! Busy connections are watched this way as well as idle ones, which the
//! keepalive pings. A health-check ping that times
//! out closes its connection, and the dials that replace it wait for the
//! server like everything else: the key's `max_open_per_key` bounds them,
//! and the pool's `connect_timeout` each one.
//!
//! # Behind Sentinel
//!
//! [`RedisManager::through_sentinels`] names the master as Redis Sentinel
//! does: each dial asks the Sentinels where it is and checks the server's
//! `ROLE`, and a task per Sentinel follows its announcements (and
//! subscribes anew to one that stops answering: a frozen or cut-off one
//! is found within 2 s). Dials ask on a watcher's connection to its
//! Sentinel: a pool's dials open no connection to a Sentinel while it
//! answers. A Sentinel that asks for a login is given as
//! `redis://[user[:password]@]host:port`, one over TLS as `rediss://…`
//! (with the manager's TLS configuration).
//!
//! A failover is followed from its first step, as the Sentinel that runs
//! it announces it (`+try-failover`, `+selected-slave`,
//! `+promoted-slave`…), not from `+switch-master`, which the others
//! announce up to a second after the replica was promoted. From then on
//! every connection to the old master refuses further commands (they
//! fail at once, unsent, with an error that says the master moved), a
//! reply of the old master that comes after it fails its command instead
//! of acknowledging it (the old master may lose that write), and the pool
//! closes them all; dials wait until a Sentinel announces the new master,
//! or the failover is aborted (at most 10 s), and a dial of the old
//! master under way is given up. [`RedisService`] sends a command that
//! was refused unsent again, on a connection to the new master, within
//! its deadline: its callers see the failover as a slower call. A dial
//! that fails while the Sentinels find the master down (`+sdown`: killed,
//! frozen, cut off) waits for their news too, so the writes go to the
//! replacement as soon as it is announced. Without all this, a client
//! keeps writing to the old master, which acknowledges writes until
//! Sentinel turns it into a replica (seconds later), and those writes
//! are lost. A server that answers `READONLY`
//! (a master turned replica), `LOADING` or `MASTERDOWN` is left the same
//! way, Sentinel or not ([`Health::ServerChanged`](connpool_core::Health::ServerChanged)).
//!
//! ```no_run
//! use connpool_redis::pool::Pool;
//! use connpool_redis::{RedisManager, RedisService};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = RedisManager::from_url("redis://:secret@sentinel-managed/0")?
//!     .through_sentinels("mymaster", ["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"])?;
//! let pool = Pool::builder(manager.single()).build().await?;
//! let redis = RedisService::new(pool, ());
//! # Ok(())
//! # }
//! ```
//!
//! # TLS
//!
//! `rediss://` URLs (with the `tls` feature) dial TLS through the crate's
//! own rustls configuration ([`TlsConfig`](connpool_tcp::tls::TlsConfig),
//! the `ring` provider): the certificate chain and the host name are always
//! verified, against Mozilla's roots unless [`RedisManager::tls`] gives
//! others (private roots, a client certificate). redis-rs's own TLS is not
//! used: it builds its rustls configuration itself and takes no
//! `ClientConfig`, so the manager does the handshake and hands redis-rs the
//! encrypted stream.
//!
//! ```no_run
//! use connpool_redis::pool::Pool;
//! use connpool_redis::RedisManager;
//! use connpool_redis::redis::AsyncCommands;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager: RedisManager = "redis://127.0.0.1:6379/0".parse()?;
//! let cache = manager.key();
//! let jobs = cache.clone().exclusive();
//! let pool = Pool::builder(manager).max_open_per_key(4).build().await?;
//!
//! // Shared: many tasks, one connection, their commands pipelined.
//! let mut conn = pool.get_for(&cache).await?;
//! conn.set::<_, _, ()>("greeting", "hello").await?;
//! let greeting: String = conn.get("greeting").await?;
//! assert_eq!(greeting, "hello");
//! drop(conn);
//!
//! // Exclusive: a blocking pop, on a connection of its own.
//! let mut conn = pool.get_for(&jobs).await?;
//! conn.set_response_timeout(std::time::Duration::from_secs(6));
//! let job: Option<(String, String)> = conn.blpop("jobs", 5.0).await?;
//! println!("{job:?}");
//! # Ok(())
//! # }
//! ```
//!
//! [`MultiplexedConnection`]: redis::aio::MultiplexedConnection
//! [`TcpManager`]: connpool_tcp::TcpManager
//! [`Manager`]: connpool_core::Manager
//! [`Manager::lending`]: connpool_core::Manager::lending
//! [`Lending::shared`]: connpool_core::Lending::shared
//!
//! # The crate
//!
//! This is `connpool-redis` (`connpool::managers::redis` with `connpool`'s
//! `redis` feature). Added alone, it is the one dependency a Redis user
//! needs: it re-exports the pool ([`pool`], [`Pool`]), the shared dial
//! ([`tcp`]) and [`redis`]. Its `tls` feature dials `rediss://` through the
//! `TlsConfig` every connpool crate shares.

#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod conn;
mod error;
mod key;
mod manager;
mod sentinel;
mod service;

/// The redis-rs crate the connections come from, at the version this crate
/// uses: its `AsyncCommands` give the guard its commands
/// (`use connpool_redis::redis::AsyncCommands`).
pub use ::redis;
pub use conn::RedisConn;
pub use error::RedisError;
pub use key::RedisKey;
pub use manager::{DEFAULT_RESPONSE_TIMEOUT, RedisManager};
pub use service::{RedisPool, RedisService, ServiceError};

/// A key cannot be written as a literal outside this crate, so a field can
/// be added without a breaking change (its constructors and `with_*` do):
///
/// ```compile_fail,E0639
/// let key = connpool_redis::RedisKey {
///     host: "cache".into(),
///     port: 6379,
///     db: 0,
///     user: None,
///     exclusive: false,
/// };
/// ```
#[cfg(doctest)]
struct Shapes;

/// The pool and the shared dial, re-exported: a user of this crate alone
/// needs no other connpool crate.
#[doc(no_inline)]
pub use connpool_core::{self as pool, Pool};
#[doc(no_inline)]
pub use connpool_tcp as tcp;
