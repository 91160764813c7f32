//! A PostgreSQL manager: pools [`tokio_postgres::Client`]s, keyed by database.
//!
//! [`PostgresManager`] is built from a base [`tokio_postgres::Config`] (or a
//! connection string) that carries everything the connections of all keys
//! share: password, `application_name`, `options`, timeouts, TLS mode… Its
//! key, [`PgKey`], names one database: host, port, database name and user.
//! [`PostgresManager::key`] is the base configuration's own key, and
//! [`PgKey::with_dbname`] / [`PgKey::with_user`] derive the keys of other
//! databases, so one pool serves several databases (or servers), each with
//! its own `max_open_per_key` limit, idle list and dial backoff. For a pool
//! of one database, [`PostgresManager::single`] makes a manager with
//! `Key = ()` ([`Single`](connpool_core::Single)), for
//! [`Pool::get`](connpool_core::Pool::get).
//!
//! Connections are made with [`NoTls`] unless a TLS connector is given to
//! [`PostgresManager::with_tls`]. Each dial spawns the connection's I/O task
//! on the pool's runtime; the task ends (its error logged at `debug`) when
//! the server closes the connection or the client is dropped.
//!
//! | [`Manager`] method | here |
//! |---|---|
//! | `connect` | [`config_for(key)`](PostgresManager::config_for)`.connect(tls)`, then spawns the connection task |
//! | `ping` | [`Client::check_connection`]: one `Sync` message, answered by `ReadyForQuery` |
//! | `health` | broken when [`Client::is_closed`] (the connection task has ended: server gone, fatal error), its server changed on the errors below; in need of a recycle as the [`RecyclingMethod`] says: by default, when the session may have changed since its last reset |
//! | `recycle` | the [`RecyclingMethod`]: by default, a reset that keeps the statement cache, off the borrower's path |
//! | `close` | drops the client: its connection task sends `Terminate` and closes the socket; a session that has not ended within 250 ms (a silent server, a reply still awaited) has its task ended and its socket closed |
//!
//! The pooled connection is a [`PgConnection`]: a [`Client`] (through
//! `Deref`) with a per-session prepared-statement cache,
//! [`PgConnection::prepare_cached`].
//!
//! [`Client`]: tokio_postgres::Client
//! [`Client::check_connection`]: tokio_postgres::Client::check_connection
//! [`Client::is_closed`]: tokio_postgres::Client::is_closed
//! [`Manager`]: connpool_core::Manager
//! [`NoTls`]: tokio_postgres::NoTls
//!
//! # An abandoned ping leaves the client usable
//!
//! The pool drops a ping future at its timeout or when the getter waiting on
//! it gives up. With tokio-postgres that never leaves a client mid-exchange:
//! a request is handed whole to the connection task, synchronously, on the
//! first poll of the query's future, and the connection task keeps reading
//! the answers of a request whose caller went away and discards them, so
//! every later request still gets its own answers. A dropped ping only
//! delays the client's next request until the server has answered the
//! `Sync` (the `postgres` integration tests drop a ping and a running query
//! mid-flight and use the client again). `health` therefore only reports
//! a client whose connection is gone.
//!
//! # A deadline on a query
//!
//! [`PgService`] runs one statement per call on a connection borrowed for
//! it, with one deadline ([`PgService::timeout`]) from the checkout (a
//! wait, a health check, a dial) to the result. For a statement past it
//! a cancel request is sent to the server (PostgreSQL's, from a task of
//! its own; a frozen server may never act on it) and its connection
//! retired: its session is in no known state
//! until the statement ends, and a cancel request that lands late would
//! cancel whatever the session runs then, perhaps the next borrower's. The
//! call fails with a [`PgError`] that [`is_timeout`](PgError::is_timeout)
//! and names the deadline and the phase (`waiting for a connection`,
//! `waiting for the statement`).
//!
//! ```no_run
//! # async fn run(pool: connpool_postgres::pool::Pool<connpool_postgres::pool::Single<connpool_postgres::PostgresManager>>)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! use connpool_postgres::PgService;
//!
//! let db = PgService::new(pool, ()).timeout(Duration::from_secs(2));
//! match db.query("SELECT * FROM big", &[]).await {
//!     Ok(rows) => println!("{} rows", rows.len()),
//!     Err(e) if e.is_timeout() => eprintln!("{e}"),
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Statements on a connection checked out by hand (a transaction) have no
//! deadline of the crate's. Wrapped in `tokio::time::timeout`, such a call
//! ends at its deadline and tokio-postgres discards the late reply (no
//! other borrower can read it); the statement may still run on the
//! server, and the connection is not lent again until it is reset
//! ([`RecyclingMethod::Clean`] and `Always` see the unanswered request):
//! the reset queues behind the statement, and ends when it does, or the
//! pool closes the connection at its `ping_timeout`. With `Fast` or
//! `Verified` nothing waits for it: the next borrower's statements queue
//! behind it. Set the server's `statement_timeout` too (in the base
//! configuration's `options`: `-c statement_timeout=5s`), so that the
//! server gives up when the caller does.
//!
//! # Failover
//!
//! A session whose server is no longer what it was dialed for says so, and
//! the pool closes every session of its key made before it, idle ones at
//! once and lent ones at their return
//! ([`Health::ServerChanged`](connpool_core::Health::ServerChanged),
//! counted in `Counters::key_clears`); the next dial finds the server
//! anew. A session says so when the server sends one of these errors (seen
//! on a tracked session: [`RecyclingMethod::Clean`], the default, or
//! `Always`, and every session lent shared), or when a ping finds its role
//! changed:
//!
//! | SQLSTATE | the server says |
//! |---|---|
//! | `25006` | a write refused: it is read-only (a primary demoted to a standby, behind an address that still names it) |
//! | `57P02` | another of its processes crashed: it restarts |
//! | `57P03` | it cannot take sessions now: starting up, shutting down |
//!
//! `57P01` (the server ends the session: a shutdown, a switchover) closes
//! the session it ends, and clears nothing more: a shutdown ends every
//! session anyway, and `pg_terminate_backend` ends one with the same code,
//! which says nothing of the others.
//!
//! A multi-host configuration (`host=a,b port=5432,5433`) with
//! `target_session_attrs=read-write` (or `read-only`) is dialed host by
//! host, each session's role checked after its startup (`SHOW
//! transaction_read_only`, as libpq asks), and tracked like any other (no
//! reset per borrow); a ping of such a session checks its role too, so a
//! standby promoted under a read-only key is left. Writes go to the primary
//! through a key with `read-write`; reads may go to the standbys through a
//! second pool (or key) with `read-only` and `load_balance_hosts=random`.
//! Without `target_session_attrs`, a host that refused a write (or whose
//! session a ping found read-only) is remembered: the manager's dials try
//! the other hosts first, and from then on check each new session's role
//! (one round trip per dial), taking a read-only one only if no host
//! takes writes; a host found read-write again is forgotten. So after a
//! switchover the redials go to the new primary, not back into the
//! demoted one first in the string (Npgsql's host status cache does
//! this; libpq, deadpool and bb8 take the first host that answers). Behind one address that moves (a
//! VIP, a DNS name), no setting is needed: the old primary's shutdown
//! clears the key, and a demoted primary still behind the address is left
//! at the first write it refuses; while the address still names it, the
//! clears that repeat make the key back off and probe it, one connection
//! at a time, instead of a dial per refused write.
//!
//! # Behind PgBouncer
//!
//! Put a transaction-mode pooler (PgBouncer's `pool_mode = transaction`)
//! between the pools and the server when the application instances'
//! pools together would hold more sessions than the server's
//! `max_connections` allows, or more than it serves well (a backend
//! process each): hundreds of instances, each with its own pool, share a
//! few dozen server sessions, each taken for one transaction. Without
//! that many instances, a pool per instance alone is faster (no extra hop)
//! and keeps session features (session settings, `LISTEN`, advisory locks,
//! named statements across transactions).
//!
//! Behind it, build the manager with
//! [`transaction_pooling`](PostgresManager::transaction_pooling): no session
//! reset of the pool's (the pooler owns that), no statement cache. Outside
//! a transaction, send statements with parameters as tokio-postgres's typed
//! queries (`query_typed`, `execute_typed`), which use the unnamed
//! statement, parsed, bound and run together; inside one
//! (`conn.transaction()`), anything goes, named statements included: the
//! transaction keeps one server session. `query` with SQL text prepares a
//! named statement in one round trip and runs it in another, which the
//! pooler may send to a server session that never saw it (`prepared
//! statement "s0" does not exist`). Size the pool for the instance's
//! concurrency, not the server's: its connections are to the pooler, and
//! cost the server nothing while idle. Each pooled connection's
//! `max_lifetime` and keepalive still apply to the connection to the
//! pooler; the pooler's `server_lifetime` and `server_idle_timeout` rule
//! the server sessions.
//!
//! # Session state
//!
//! A returned connection is reset before the next borrower gets it when
//! the borrower may have changed its session: [`RecyclingMethod::Clean`]
//! (the default) reads the session's protocol as it goes by and knows
//! whether any statement could have left state behind, so that `SET`s,
//! `SET ROLE`, temporary tables, advisory locks, `LISTEN`s, SQL `PREPARE`d
//! statements and open (or failed) transactions do not reach the next
//! borrower, while a borrower that only queries, writes rows and runs
//! transactions costs nothing on its return: no task, no round trip, and
//! the statement cache kept. The reset ([`RESET`], one round trip off the
//! borrower's path) keeps the statement cache too, and rolls back a
//! transaction left open. [`PostgresManager::with_recycling`] chooses
//! another method (the table in [`RecyclingMethod`] gives each one's cost
//! and the limits of the tracking). Settings every session should have
//! belong in the base configuration (`application_name`, `options`),
//! which the reset keeps; an
//! [`after_connect`](connpool_core::Builder::after_connect) hook runs again after
//! each reset.
//!
//! ```no_run
//! use connpool_postgres::pool::Pool;
//! use connpool_postgres::PostgresManager;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager: PostgresManager =
//!     "host=127.0.0.1 user=postgres dbname=app application_name=my-service".parse()?;
//! let app = manager.key();
//! let reports = app.clone().with_dbname("reports");
//! let pool = Pool::builder(manager)
//!     .max_open(20)
//!     .max_open_per_key(10)
//!     .build()
//!     .await?;
//!
//! let conn = pool.get_for(&app).await?;
//! let row = conn.query_one("SELECT 1 + 1", &[]).await?;
//! assert_eq!(row.get::<_, i32>(0), 2);
//! drop(conn); // back to the pool
//!
//! let conn = pool.get_for(&reports).await?;
//! conn.batch_execute("SELECT 1").await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Shared lending
//!
//! A connection lent exclusively serves one borrower at a time: while a
//! statement makes its round trip, the connection carries nothing else.
//! tokio-postgres pipelines the requests of concurrent callers on one
//! `Client` (each is written at once, and the answers come back in order),
//! so a connection can serve many borrowers at once.
//! [`PostgresManager::shared`] makes a
//! manager, [`SharedPostgres`], whose connections are lent that way: up to
//! `max_borrowers` borrowers at once each hold a [`SharedPgConnection`]
//! handle to one connection, and the pool dials another only when every
//! open one is full. A few connections then carry many borrowers'
//! statements; see the README for what that gains on the TechEmpower
//! workloads.
//!
//! Every borrower's statements run in the same server session, pipelined,
//! so none may leave anything behind that another's would run under (a
//! borrower's `BEGIN` would put the others' writes in its transaction, and
//! its `ROLLBACK` would erase them). The handle reads the SQL of each
//! statement before it is sent:
//!
//! - **shared**: queries and writes that run in a transaction of their own
//!   and leave nothing behind: `SELECT`, `INSERT`, `UPDATE`, `DELETE`,
//!   `WITH`, `VALUES`, `TABLE`, `MERGE`, `SHOW`, `SET LOCAL`.
//! - **refused, nothing sent** (a [`PgError`] that
//!   [`is_unshareable`](PgError::is_unshareable), naming the statement):
//!   `BEGIN`/`COMMIT`, `SET` and `set_config`, `SET ROLE`, `LISTEN`,
//!   temporary tables, session advisory locks, `PREPARE`, cursors, DDL,
//!   `DEALLOCATE`, `DISCARD`.
//!
//! Those run in a [`SharedTransaction`]
//! ([`SharedPgConnection::transaction`]): it has the session to itself
//! (the statements of borrowers already on it wait; a new borrower is
//! given another connection while the pool may open one, and joins the
//! busy session only at the cap), and leaves it clean before the
//! session is shared again: committed or rolled back, and reset if a
//! statement in it could have changed the session. Long transactions,
//! `COPY` and `LISTEN` that must last belong on an exclusive pool (a
//! [`PostgresManager`], the default), whose connections a borrower has to
//! itself and which are reset on their return.
//!
//! The statement cache is the connection's, shared by its borrowers, and a
//! statement is prepared once per connection. Health checks, keepalive,
//! dial backoff, metrics and `close()` work as for exclusive connections;
//! a connection that breaks fails the statements its borrowers have in
//! flight (see [`SharedPgConnection`]), takes no new borrower, and is
//! replaced.
//!
//! ```no_run
//! use connpool_postgres::pool::Pool;
//! use connpool_postgres::PostgresManager;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager: PostgresManager = "host=127.0.0.1 user=postgres dbname=app".parse()?;
//! // Stateless reads and writes: 4 connections, up to 32 borrowers each.
//! let shared = Pool::builder(manager.clone().shared(32).single())
//!     .max_open(4)
//!     .build()
//!     .await?;
//! // Long transactions, `COPY`, `LISTEN`: a connection of one's own.
//! let exclusive = Pool::builder(manager.single()).max_open(8).build().await?;
//!
//! let mut conn = shared.get().await?;
//! let select = conn.prepare_cached("SELECT message FROM fortune WHERE id = $1").await?;
//! let row = conn.query_one(&select, &[&1_i32]).await?;
//! let _message: String = row.get(0);
//! // A short transaction: the session alone while it lasts.
//! let tx = conn.transaction().await?;
//! tx.execute("UPDATE fortune SET message = $1 WHERE id = 1", &[&"new"]).await?;
//! tx.commit().await?;
//! drop(conn);
//!
//! let mut conn = exclusive.get().await?;
//! let copy = conn.copy_out("COPY fortune TO STDOUT").await?;
//! # drop(copy);
//! # Ok(())
//! # }
//! ```
//!
//! # The crate
//!
//! This is `connpool-postgres` (`connpool::managers::postgres` with
//! `connpool`'s `postgres` feature). Added alone, it is the one dependency
//! a PostgreSQL user needs: it re-exports the pool ([`pool`], [`Pool`]), the
//! shared dial ([`tcp`]) and [`tokio_postgres`]. Its `tls` feature adds
//! `tls_connector`, tokio-postgres's connector from the `TlsConfig` every
//! connpool crate shares.

#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod classify;
mod conn;
mod dial;
mod error;
mod hosts;
mod key;
mod manager;
mod recycling;
mod service;
mod session;
mod shared;
mod target;
#[cfg(test)]
mod tests;
#[cfg(feature = "tls")]
mod tls;
mod transaction;

pub use conn::PgConnection;
pub use error::PgError;
pub use key::PgKey;
pub use manager::PostgresManager;
pub use recycling::{CLEAN_WITHOUT_DISCARD, RESET, RecyclingMethod};
pub use service::PgService;
pub use shared::{SharedPgConnection, SharedPostgres};
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::tls_connector;
pub use transaction::SharedTransaction;

/// A key cannot be written as a literal outside this crate, so a field can
/// be added without a breaking change (its constructors and `with_*` do):
///
/// ```compile_fail,E0639
/// let key = connpool_postgres::PgKey {
///     host: "db".into(),
///     port: 5432,
///     dbname: None,
///     user: None,
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
#[doc(no_inline)]
pub use tokio_postgres;
