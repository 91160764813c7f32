//! An HTTP/2 manager: pools hyper 1.x client connections
//! ([`SendRequest`]), keyed by [`Origin`] (scheme and `host:port`), lent *shared*.
//!
//! An HTTP/2 connection carries many requests at once, up to the server's
//! `SETTINGS_MAX_CONCURRENT_STREAMS`. [`Http2Manager`] reads that limit from
//! the server's first `SETTINGS` frame (it waits for it before the dial
//! counts as done) and answers [`Manager::lending`] with
//! [`Lending::shared`]`(limit)` (no limit: `usize::MAX`, which the pool
//! clamps to its [`max_borrowers`](connpool_core::Builder::max_borrowers), 100 by
//! default), so the pool puts up to that many borrowers on one connection
//! and dials another only when every connection of the key is full. Each
//! borrower holds its own [`Http2Conn`], a cheap clone.
//!
//! | [`Manager`] method | here |
//! |---|---|
//! | `connect` | a TCP dial with [`TcpManager`]'s socket setup (`TCP_NODELAY`, kernel keepalive), the HTTP/2 handshake, the connection driver spawned, then a wait (bounded by [`settings_timeout`](Http2Manager::settings_timeout)) for the server's first `SETTINGS`: a peer that sends none is not speaking HTTP/2, and the dial fails; a connection that is already draining (the server sent `GOAWAY` with its `SETTINGS`) or closed fails the dial too ([`HttpError::ClosedDuringSetup`](crate::HttpError::ClosedDuringSetup)) |
//! | `lending` | shared, up to the server's `MAX_CONCURRENT_STREAMS` |
//! | `is_broken` | the connection is closed ([`SendRequest::is_closed`]), or the server sent `GOAWAY` (it is *draining*: its in-flight requests finish, it takes no new ones), or the socket hit end of stream or an error |
//! | `ping` | no round trip: fails if `is_broken` would say so, then waits for [`SendRequest::ready`] (see below) |
//! | `close` | drops the handle; the connection ends once the last borrower's handle is gone |
//!
//! # Liveness: HTTP/2 PING, from hyper
//!
//! hyper does not let a client send a PING of its own, so
//! [`Manager::ping`] cannot do a round trip. Liveness comes from hyper's
//! keepalive instead: every [`http2_keep_alive_interval`](Http2Manager::http2_keep_alive_interval)
//! without traffic from the server, it sends a PING, and if no ACK arrives
//! within [`http2_keep_alive_timeout`](Http2Manager::http2_keep_alive_timeout) it closes
//! the connection, which `is_broken` (and so `ping`) then reports. With
//! [`http2_keep_alive_while_idle`](Http2Manager::http2_keep_alive_while_idle) on (the
//! default here) that also covers connections idle in the pool, so a
//! server that vanished without a FIN is found within interval + timeout.
//!
//! Against gRPC servers use the [`grpc`](super::grpc) manager, or mind their
//! PING policy: grpc-go and gRPC C-core servers answer a client that pings
//! more often than every 5 minutes, or at all without an active stream, with
//! `GOAWAY` `too_many_pings`.
//!
//! ```no_run
//! use bytes::Bytes;
//! use connpool::Pool;
//! use connpool::managers::http2::Http2Manager;
//! use connpool::managers::Origin;
//! use http_body_util::{BodyExt, Full};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::builder(Http2Manager::new())
//!     .max_open_per_key(4) // at most 4 connections, each shared by up to
//!     .max_borrowers(100) // min(100, the server's stream limit) requests
//!     .build()
//!     .await?;
//!
//! let api = Origin::from("http://127.0.0.1:8080");
//! let mut conn = pool.get_for(&api).await?;
//! println!("the server allows {:?} streams", conn.peer_max_concurrent_streams());
//! // A path alone is enough: scheme and authority come from the origin.
//! let request = http::Request::get("/health").body(Full::new(Bytes::new()))?;
//! let response = conn.send_request(request).await?;
//! let body = response.into_body().collect().await?.to_bytes();
//! println!("{body:?}");
//! # Ok(())
//! # }
//! ```
//!
//! [`SendRequest`]: hyper::client::conn::http2::SendRequest
//! [`SendRequest::is_closed`]: hyper::client::conn::http2::SendRequest::is_closed
//! [`SendRequest::ready`]: hyper::client::conn::http2::SendRequest::ready
//! [`Origin`]: crate::Origin
//! [`TcpManager`]: crate::tcp::TcpManager
//! [`Manager`]: connpool_core::Manager
//! [`Manager::lending`]: connpool_core::Manager::lending
//! [`Manager::ping`]: connpool_core::Manager::ping
//! [`Lending::shared`]: connpool_core::Lending::shared

mod conn;
mod manager;

pub use conn::Http2Conn;
pub use manager::{
    DEFAULT_KEEP_ALIVE_INTERVAL, DEFAULT_KEEP_ALIVE_TIMEOUT, DEFAULT_SETTINGS_TIMEOUT, Http2Manager,
};
