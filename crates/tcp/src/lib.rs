//! A [`Manager`](connpool_core::Manager) for TCP streams, plain or over
//! TLS: [`TcpManager`].
//!
//! - **Keyed by destination** ([`Destination`]): a `SocketAddr`, or a
//!   `"host:port"` string resolved asynchronously on every dial (so DNS
//!   changes are followed as connections are replaced). Each resolved address
//!   is tried in turn. The pool's `connect_timeout` bounds the whole dial,
//!   resolution included.
//! - **`TCP_NODELAY` on** by default: pooled connections mostly carry small
//!   request/response messages, which Nagle's algorithm would delay.
//! - **Kernel TCP keepalive** on by default
//!   ([`tcp_keepalive`](TcpManager::tcp_keepalive), 60 s / 10 s / 3 probes), so a peer that vanished is noticed even while a
//!   connection is lent and its user waits on a read.
//! - **Dead-peer detection on checkout and return**
//!   ([`Manager::health`](connpool_core::Manager::health)): a non-blocking
//!   `MSG_PEEK` of one byte, which consumes nothing, tells whether the peer
//!   closed (FIN: end of stream) or reset (RST: an error).
//!   Bytes nobody asked for waiting on an idle connection (a late reply to a
//!   request whose borrower gave up) mean the stream is out of step: by
//!   default that connection is broken too
//!   ([`unread_data_is_broken`](TcpManager::unread_data_is_broken)).
//! - **An application-level ping**, supplied for the protocol spoken over
//!   the stream, used by the pool's health checks and background
//!   keepalive: [`line_ping`](TcpManager::line_ping) for a fixed request /
//!   reply such as `ping\n` → `pong\n`, or your own exchange
//!   ([`with_ping`](TcpManager::with_ping)). Without
//!   one a ping is the same local peek: it finds peers that closed,
//!   not peers that went silent.
//! - **TLS** (`tls` feature) over every connection with
//!   [`tls`](TcpManager::tls): the certificate chain and the host name
//!   verified, ALPN as you choose ([`alpn`](TcpManager::alpn)); reads,
//!   writes and the ping go through it.
//! - **Abandoned pings**: the pool drops a ping future at its timeout or when
//!   its getter gives up. A [`TcpConn`] remembers a ping that started and did
//!   not finish (request maybe written, reply maybe half read) and reports
//!   itself broken from then on, so its reply can never reach the next user.
//!
//! The modules hidden from these docs (the dial, its stream and its
//! observer, a service's deadline) are for connpool's protocol crates:
//! they change with them, outside this crate's semver.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use connpool_tcp::{Destination, TcpManager};
//! use connpool_tcp::pool::Pool;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = TcpManager::new()
//!     .tcp_keepalive(Some(Duration::from_secs(30)))
//!     .tcp_keepalive_interval(Duration::from_secs(5))
//!     .tcp_keepalive_retries(4)
//!     .line_ping("PING\r\n", "+PONG\r\n");
//! let pool = Pool::builder(manager)
//!     .max_open_per_key(8)
//!     .health_check(Duration::ZERO)
//!     .build()
//!     .await?;
//!
//! let redis = Destination::from("localhost:6379");
//! let mut conn = pool.get_for(&redis).await?;
//! conn.write_all(b"PING\r\n").await?;
//! let mut reply = [0; 7];
//! conn.read_exact(&mut reply).await?;
//! assert_eq!(&reply, b"+PONG\r\n");
//! # Ok(())
//! # }
//! ```
//!
//! # The crate
//!
//! This is `connpool-tcp` (`connpool::managers::tcp`): the TCP manager, and
//! the TCP and TLS dial every connpool protocol crate uses. It re-exports
//! the pool ([`pool`], [`Pool`]). Features: `tls` (the `tls` module: rustls, no
//! crypto provider forced), `ring` or `aws-lc-rs` (a provider named),
//! `native-roots` (the operating system's trust store).

#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(hidden)]
pub mod boxed;
mod conn;
#[doc(hidden)]
pub mod deadline;
mod destination;
mod keepalive;
mod manager;
#[doc(hidden)]
pub mod observed;
mod ping;
mod socket;
#[cfg(test)]
mod tests;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
#[doc(hidden)]
pub mod transport;

pub use conn::TcpConn;
pub use destination::Destination;
pub use keepalive::{TCP_KEEPALIVE_INTERVAL, TCP_KEEPALIVE_RETRIES, TCP_KEEPALIVE_TIME};
pub use manager::TcpManager;
#[doc(hidden)]
pub use socket::{SocketOptions, connect};

/// The pool, re-exported: a user of this crate alone needs no other.
#[doc(no_inline)]
pub use connpool_core::{self as pool, Pool};
