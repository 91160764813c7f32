//! An HTTP manager: pools hyper 1.x client connections, keyed by
//! [`Origin`] (scheme and `host:port`): HTTP/1.1 ones with keep-alive, lent
//! *exclusively*, and HTTP/2 ones, lent *shared*.
//!
//! [`HttpManager::new`] speaks both, as hyper-util's client and reqwest
//! do: over TLS it offers `h2` and `http/1.1` in ALPN and follows the
//! server's choice, in plaintext it speaks HTTP/1.1.
//! [`HttpManager::http1`] speaks HTTP/1.1 only, [`HttpManager::http2`]
//! HTTP/2 only (with prior knowledge in plaintext). Both kinds of
//! connection live in one pool, under the same per-key caps, FIFO queue,
//! backoff and idle LRU. Send through
//! [`HttpService`](crate::service::HttpService), which borrows a
//! connection per request, retries a request that met a stale connection,
//! and returns the connection when the response body ends; with
//! [`HttpService::by_authority`](crate::service::HttpService::by_authority)
//! it is one client for every host, whichever version each speaks.
//!
//! | [`Manager`] method | here |
//! |---|---|
//! | `connect` | a TCP dial with [`TcpManager`]'s socket setup (`TCP_NODELAY`, kernel keepalive), over TLS for an `https` origin, or an origin without a scheme when a TLS configuration is set; an `https` origin without a TLS configuration is refused ([`HttpError::NoTls`]). Then HTTP/1.1: hyper's handshake (no round trip) and its connection driver spawned; HTTP/2: the handshake, the driver spawned, and a wait (bounded by [`settings_timeout`](HttpManager::settings_timeout)) for the server's first `SETTINGS`: a peer that sends none is not speaking HTTP/2, and the dial fails; a connection that is already draining (the server sent `GOAWAY` with its `SETTINGS`) or closed fails the dial too ([`HttpError::ClosedDuringSetup`]) |
//! | `lending` | HTTP/1.1: exclusive. HTTP/2: shared, up to the server's `MAX_CONCURRENT_STREAMS` |
//! | `health` | broken when not [`HttpConn::is_reusable`] |
//! | `ping` | no round trip: fails if `health` would say broken, then waits until hyper's connection takes a request |
//! | `close` | drops the handle; hyper closes the socket (HTTP/2: once the last borrower's handle is gone) |
//!
//! # HTTP/1.1: keep-alive as the server says
//!
//! An HTTP/1.1 connection carries one request at a time, and the next only
//! after the previous response was read to its end. Each connection
//! follows what its server says about keeping it alive:
//!
//! | the server (or the request) says | the connection |
//! |---|---|
//! | `Connection: close` in the response *or the request*, or an HTTP/1.0 response or request without `Connection: keep-alive`, or `101 Switching Protocols` | carries no further request: closed when given back |
//! | `Keep-Alive: timeout=N` | reusable for N − 1 s (at least N / 2) after each response; past that, closed at its next look (a return, a checkout, a ping) |
//! | `Keep-Alive: max=M` | takes at most M more requests, then is closed |
//! | nothing (HTTP/1.1) | kept alive until the pool's own limits (`idle_timeout`, `max_lifetime`, `max_uses`) or the server's close |
//!
//! Why N − 1 s: `timeout` is in whole seconds (a server may round its real
//! timer down to them), the server's timer started when it wrote the
//! response, before the client read it, and a request written in the last
//! instant meets a connection the server is closing. One second covers the
//! three on any reasonable network; the N / 2 floor keeps `timeout=1`
//! useful. (nginx sends no `Keep-Alive` header unless configured with
//! `keepalive_timeout`'s second argument; set the pool's
//! [`idle_timeout`](connpool_core::Builder::idle_timeout) below the server's own.)
//!
//! **A response body not read to its end** leaves bytes on the connection
//! that the next request would read as its response: such a connection is
//! never lent again. It is closed, not drained (as Go's client does; hyper
//! reads what is already buffered, no more, so a slow or endless body never
//! holds up the pool). Read each body to its end (or use
//! [`HttpService`](crate::service::HttpService), which holds the
//! connection until the body ends and returns it then).
//!
//! # HTTP/1.1 liveness: a look at the socket, no round trip
//!
//! An idle HTTP/1.1 connection has no protocol ping; a `HEAD` or `OPTIONS`
//! round trip costs the server a request, and some count it against
//! `keepalive_requests`. What the client can know cheaply is whether the
//! server closed the connection: hyper's connection driver keeps reading an
//! idle socket, sees the server's FIN or reset at once, and closes the
//! connection, which [`HttpConn::is_reusable`] reports. `health`
//! (called on every checkout) therefore rejects a connection whose close has
//! arrived, for the price of an atomic load. What it cannot see is a close
//! still in flight when the request is written: that race is what the
//! service's retry is for (see [`HttpService`](crate::service::HttpService)).
//! A server that vanished without a FIN is found by the TCP manager's kernel
//! keepalive, or by the pool's `idle_timeout`.
//!
//! # A request that meets a stale connection is sent again
//!
//! Through [`HttpService`](crate::service::HttpService), a request that
//! fails on a *reused* connection because the server had closed it (hyper's
//! "connection closed before message completed", a reset, a connection gone
//! before the request was written), before any byte of a response, is sent
//! again on another connection when that is safe: hyper gave it back
//! unwritten, or (Go's `isReplayable`) its method is GET, HEAD, OPTIONS or
//! TRACE or it carries an `Idempotency-Key` or `X-Idempotency-Key` header,
//! and its body can be replayed (`Full<Bytes>`, `Empty<Bytes>`, `String`).
//! Again while each attempt meets a reused connection that turns out
//! closed (when every idle connection went stale together, each is retired
//! in turn and the request ends on a fresh dial); never after a failure on
//! a fresh connection. Each retry is counted
//! ([`HttpService::retries`](crate::service::HttpService::retries)). A
//! request that may not be sent again fails with
//! [`HttpError::NotRetried`],
//! which says so and why. This is Go's `shouldRetryRequest` and its
//! `roundTrip` loop.
//!
//! **Send through the service**, not through a connection checked out by
//! hand: [`HttpConn::send_request`] cannot retry. The race above is not
//! rare (a server's keep-alive timeout, `keepalive_requests`, a restart),
//! and when hyper drops a request it could not write, the caller does not
//! get it back to send elsewhere. Check a connection out yourself only for
//! what the service cannot do (an upgrade, a request that must go on one
//! known connection), and be ready to retry there.
//!
//! # HTTP/2: shared, by the server's stream limit
//!
//! An HTTP/2 connection carries many requests at once, up to the server's
//! `SETTINGS_MAX_CONCURRENT_STREAMS`. The manager reads that limit from
//! the server's first `SETTINGS` frame (it waits for it before the dial
//! counts as done) and answers [`Manager::lending`] with
//! [`Lending::shared`]`(limit)` (no limit: `usize::MAX`, which the pool
//! clamps to its [`max_borrowers`](connpool_core::Builder::max_borrowers), 100 by
//! default), so the pool puts up to that many borrowers on one connection
//! and dials another only when every connection of the key is full. Each
//! borrower holds its own [`HttpConn`], a cheap clone of the handle.
//!
//! # HTTP/2 liveness: PING, from hyper
//!
//! hyper does not let a client send a PING of its own, so
//! [`Manager::ping`] cannot do a round trip. Liveness comes from hyper's
//! keepalive instead, on the pool's schedule: every
//! [`keepalive_interval`](connpool_core::Builder::keepalive_interval)
//! without traffic from the server, it sends a PING, and if no ACK arrives
//! within [`ping_timeout`](connpool_core::Builder::ping_timeout) it closes
//! the connection, which `health` (and so the pool's keepalive, which
//! sends nothing of its own) then reports. One schedule, set once on the
//! pool's builder. With
//! [`http2_keep_alive_while_idle`](HttpManager::http2_keep_alive_while_idle) on (the
//! default here) that also covers connections idle in the pool, so a
//! server that vanished without a FIN is found within interval + timeout.
//!
//! Against gRPC servers use the [`grpc`] manager, or mind their
//! PING policy: grpc-go and gRPC C-core servers answer a client that pings
//! more often than every 5 minutes, or at all without an active stream, with
//! `GOAWAY` `too_many_pings`.
//!
//! # Go's `Transport`, hyper-util's and reqwest's settings, here
//!
//! | Go `http.Transport` (default) | hyper-util legacy `Client` / reqwest | connpool |
//! |---|---|---|
//! | `MaxIdleConns` (100) | — | [`max_idle`](connpool_core::Builder::max_idle) (default `max_open`, 100), with the idle LRU across hosts |
//! | `MaxIdleConnsPerHost` (2) | `pool_max_idle_per_host` (no limit) | [`max_idle_per_key`](connpool_core::Builder::max_idle_per_key) (default min(`max_open_per_key`, `max_idle`)) |
//! | `MaxConnsPerHost` (no limit) | — | [`max_open_per_key`](connpool_core::Builder::max_open_per_key), under the pool-wide [`max_open`](connpool_core::Builder::max_open) (default 100); getters over it wait in a FIFO queue, bounded by [`checkout_timeout`](connpool_core::Builder::checkout_timeout) |
//! | `IdleConnTimeout` (90 s) | `pool_idle_timeout` (90 s) | [`idle_timeout`](connpool_core::Builder::idle_timeout) (90 s), and per connection the server's `Keep-Alive: timeout` |
//! | `Client.Timeout` (none) | — / `timeout` (whole request, body included) | [`HttpService::timeout`](crate::service::HttpService::timeout) (per call: a clone of the service with its own): checkout, request, response and body; a connection left mid-exchange is closed |
//! | `TLSHandshakeTimeout` (10 s) | — / `connect_timeout` | [`connect_timeout`](connpool_core::Builder::connect_timeout) (10 s) bounds the TCP dial and the TLS handshake together |
//! | `DisableKeepAlives` | `pool_max_idle_per_host(0)` | [`max_uses(1)`](connpool_core::Builder::max_uses) |
//! | `ForceAttemptHTTP2` | `http2_only` / negotiated by ALPN | [`HttpManager::new`] (ALPN `h2`, then `http/1.1`); [`HttpManager::http2`] for HTTP/2 only |
//! | (retry of a request on a stale idle connection: yes) | no | yes, through [`HttpService`](crate::service::HttpService) |
//!
//! ```no_run
//! use bytes::Bytes;
//! use connpool_http::pool::Pool;
//! use connpool_http::HttpManager;
//! use connpool_http::service::HttpService;
//! use http_body_util::{BodyExt, Full};
//! use tower::{Service, ServiceExt};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::builder(HttpManager::new())
//!     .max_open_per_key(32) // Go's MaxConnsPerHost
//!     .max_idle_per_key(32) // Go's MaxIdleConnsPerHost
//!     .idle_timeout(std::time::Duration::from_secs(50)) // below the server's
//!     .build()
//!     .await?;
//!
//! // Each request goes to its URI's origin; a stale connection's request
//! // is sent again (see above). Cheap to clone, one per task.
//! let mut client = HttpService::by_authority(pool);
//! let request = http::Request::get("http://127.0.0.1:8080/health")
//!     .body(Full::new(Bytes::new()))?;
//! let response = client.ready().await?.call(request).await?;
//! // The connection goes back when the body ends.
//! let body = response.into_body().collect().await?.to_bytes();
//! println!("{body:?}");
//! # Ok(())
//! # }
//! ```
//!
//! [`Origin`]: crate::Origin
//! [`TcpManager`]: connpool_tcp::TcpManager
//! [`Manager`]: connpool_core::Manager
//! [`Manager::lending`]: connpool_core::Manager::lending
//! [`Manager::ping`]: connpool_core::Manager::ping
//! [`Lending::shared`]: connpool_core::Lending::shared
//!
//! # The crate
//!
//! This is `connpool-http` (`connpool::managers::http` with `connpool`'s
//! `http` feature): this manager, the per-call [`service`], and behind
//! features the `grpc` manager (`grpc`), the `balance`r (`balance`) and
//! JSON bodies (`json`).
//! Added alone, it is the one dependency an HTTP or gRPC user needs: it
//! re-exports the pool ([`pool`], [`Pool`]), the shared dial ([`tcp`]) and
//! [`hyper`]. Its `tls` feature dials `https` through the `TlsConfig` every
//! connpool crate shares.

#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "balance")]
#[cfg_attr(docsrs, doc(cfg(feature = "balance")))]
pub mod balance;
#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub mod grpc;
mod h2_frames;
mod http_error;
mod origin;
pub mod service;

mod body;
mod conn;
mod h1;
mod h2;
mod keepalive;
mod manager;

pub use body::HttpBody;
pub(crate) use body::Lease;
pub use conn::HttpConn;
pub use http_error::HttpError;
pub use manager::{HTTP2_SETTINGS_TIMEOUT, HttpManager};
pub use origin::Origin;

/// The ejection settings cannot be written as a literal outside this
/// crate, so a setting can be added without a breaking change
/// (`Ejection::default()` and its setters do):
///
/// ```compile_fail,E0639
/// use std::time::Duration;
///
/// let ejection = connpool_http::balance::Ejection {
///     consecutive_failures: 5,
///     base_time: Duration::from_secs(30),
///     max_time: Duration::from_secs(300),
///     max_percent: 50,
/// };
/// ```
#[cfg(all(doctest, feature = "balance"))]
struct Shapes;

/// The pool and the shared dial, re-exported: a user of this crate alone
/// needs no other connpool crate.
#[doc(no_inline)]
pub use connpool_core::{self as pool, Pool};
#[doc(no_inline)]
pub use connpool_tcp as tcp;
#[doc(no_inline)]
pub use hyper;
