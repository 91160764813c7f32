//! A gRPC manager: pools HTTP/2 connections for tonic clients, keyed by
//! [`Origin`] (scheme and `host:port`), lent *shared*, health-checked with the standard
//! `grpc.health.v1` service.
//!
//! Each pooled connection is exactly one HTTP/2 connection (an
//! [`HttpConn`](crate::HttpConn) for tonic's body), dialed by the
//! [`http`](crate) manager (hyper's client, with [`TcpManager`]'s
//! socket setup and a frame watcher that reads the server's `SETTINGS`
//! and notices its `GOAWAY`), with gRPC's defaults for keepalive and a
//! health check. It does not reconnect behind the pool's back: a connection
//! that died stays dead, [`health`](connpool_core::Manager::health) says it is broken,
//! and the pool replaces it with a fresh dial (with its backoff and limits).
//!
//! Call through an [`HttpService`](crate::service::HttpService) over the
//! pool, the transport to give a generated tonic client: over this
//! manager's pool its calls fail with a [`tonic::Status`] carrying the gRPC
//! code a tonic `Channel` gives (`UNAVAILABLE` for a failed dial, a backoff
//! or a checkout timeout; see [Failures](#failures)), and answer with
//! tonic's body. Each call
//! borrows a connection for as long as its response body is open, so the
//! pool's counts are the calls in flight. A connection checked out by hand
//! is itself a transport to build a client on (`tower::Service`).
//!
//! | [`Manager`] method | here |
//! |---|---|
//! | `connect` | TCP dial, HTTP/2 handshake, wait for the server's first `SETTINGS` (a server that sends none is not HTTP/2: the dial fails), then, with [`check_on_connect`](GrpcManager::check_on_connect) (default on), one health `Check`: a backend that is not `SERVING` fails the dial and is never lent. A connection that is already draining (the server sent `GOAWAY`, say with its `SETTINGS`, or during the `Check`) or closed fails the dial too ([`HttpError::ClosedDuringSetup`](crate::HttpError::ClosedDuringSetup)), with or without the `Check` |
//! | `lending` | shared, up to the server's `MAX_CONCURRENT_STREAMS` (none: the pool's `max_borrowers`, 100 by default) |
//! | `ping` | `grpc.health.v1.Health/Check` for the configured [service](GrpcManager::health_service) (default `""`, the whole server): `SERVING` is healthy; `NOT_SERVING`, `UNKNOWN`, `SERVICE_UNKNOWN` or an RPC error is an error, except `UNIMPLEMENTED`: a server without the health service is healthy while it answers (as gRPC's client-side health checking, gRFC A17, takes it), logged once per key at `warn`. So any gRPC server works with the defaults; one with the health service can also say it is draining or not ready |
//! | `health` | broken when the server sent `GOAWAY` (the connection is *draining*: calls in flight finish, no new ones), or the socket hit end of stream or an error, or the connection was dropped (for example by a missed keepalive PING) |
//! | `close` | ends the connection (the pool closes a shared one once its last borrower has returned), even where a clone of a checked-out handle is still held |
//!
//! [`Origin`]: super::Origin
//! [`TcpManager`]: connpool_tcp::TcpManager
//! [`Manager`]: connpool_core::Manager
//!
//! # Keepalive, and the servers' PING policy
//!
//! gRPC servers police client PINGs. grpc-go and gRPC C-core servers by
//! default (`EnforcementPolicy{MinTime: 5m, PermitWithoutStream: false}`)
//! count a PING that comes sooner than 5 minutes after the previous one, or
//! while no call is active, as a strike, and close the connection on the
//! third strike (grpc-go: more than two) with `GOAWAY ENHANCE_YOUR_CALM`
//! (`too_many_pings`), failing calls in flight. A client that meets it
//! doubles its keepalive interval for new connections to that server
//! (gRFC A8): this manager does so per key, logs it at `warn`, and
//! [`http2_keep_alive_interval_for`](GrpcManager::http2_keep_alive_interval_for)
//! tells the interval a key's next connection gets. So the defaults here stay inside that policy: HTTP/2
//! keepalive PINGs every 5 minutes, and only while calls are active
//! ([`http2_keep_alive_while_idle`](GrpcManager::http2_keep_alive_while_idle) off).
//! Idle pooled connections are checked by the pool instead: its background
//! keepalive ([`keepalive_interval`](connpool_core::Builder::keepalive_interval),
//! every 30 s by default) runs this manager's `ping`, the health `Check`, an
//! ordinary call that no server policy counts against you. Lower the PING
//! interval only for servers configured to allow it (for example tonic
//! servers, which do not police PINGs, or a grpc-go server with a smaller
//! `MinTime` and `PermitWithoutStream: true`).
//!
//! (`tests/managers/grpc/keepalive.rs` runs both against a server that polices PINGs: with the
//! defaults an idle pooled connection sends none; with
//! `http2_keep_alive_while_idle` on it is cut off with `too_many_pings`, and the
//! pool dials a new one.)
//!
//! # Failures
//!
//! A call that fails through the pool has the code a tonic `Channel` gives
//! (the message is the error's own `Display`, so it says what happened):
//!
//! | failure | code | as a tonic `Channel` / grpc-go gives it |
//! |---|---|---|
//! | the dial failed ([`Error::Connect`](connpool_core::Error::Connect)) | `UNAVAILABLE` | a failed connect |
//! | the key backs off after failed dials ([`Error::Backoff`](connpool_core::Error::Backoff)) | `UNAVAILABLE` | grpc-go's transient failure |
//! | no connection within the checkout deadline ([`Error::Timeout`](connpool_core::Error::Timeout)), too many waiters | `UNAVAILABLE` | waiting for a ready connection |
//! | the pool is closed ([`Error::Closed`](connpool_core::Error::Closed)) | `CANCELLED` | grpc-go's "the client connection is closing" |
//! | the request failed on its connection (or on a reused one the server had closed, and was not sent again) | by HTTP/2 reset reason, as tonic maps it (`REFUSED_STREAM`: `UNAVAILABLE`, `CANCEL`: `CANCELLED`, `ENHANCE_YOUR_CALM`: `RESOURCE_EXHAUSTED`, `INADEQUATE_SECURITY`: `PERMISSION_DENIED`, other reasons: `INTERNAL`); the connection closed or timed out under it: `UNAVAILABLE` | the same |
//! | a request URI without an authority (a service routing by authority) | `INVALID_ARGUMENT` | |
//! | the call's deadline passed (`grpc-timeout`, [`HttpService::timeout`](crate::service::HttpService::timeout)) | `DEADLINE_EXCEEDED` | grpc-go's (tonic's own timeout gives `CANCELLED`) |
//!
//! # How many connections
//!
//! With the pool's default [`max_borrowers`](connpool_core::Builder::max_borrowers)
//! (100) and a server without a lower stream limit, one connection per key
//! carries up to 100 calls at once, and that is usually the fastest: on a
//! few cores, spreading the calls over more connections makes them slower,
//! not faster. Each connection is driven by one task, so on many cores a few
//! connections may spread the work better: measure before lowering
//! `max_borrowers`. Against a server that limits streams, the pool opens a
//! connection for each `limit` calls in flight, up to `max_open_per_key`.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use connpool_http::pool::Pool;
//! use connpool_http::grpc::GrpcManager;
//! use connpool_http::service::HttpService;
//! use tonic_health::pb::HealthCheckRequest;
//! use tonic_health::pb::health_client::HealthClient;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = GrpcManager::new().health_service("my.package.MyService");
//! let pool = Pool::builder(manager)
//!     .max_open_per_key(8)
//!     // Idle connections get a health Check every 20 s.
//!     .keepalive_interval(Some(Duration::from_secs(20)))
//!     .build()
//!     .await?;
//!
//! // Any generated tonic client takes the service as its transport.
//! let mut client = HealthClient::new(HttpService::new(pool, "127.0.0.1:50051"));
//! let reply = client.check(HealthCheckRequest::default()).await?;
//! println!("{:?}", reply.get_ref().status());
//! # Ok(())
//! # }
//! ```

mod manager;
mod status;

pub use manager::{GRPC_PING_INTERVAL, GRPC_PING_TIMEOUT, GRPC_SETTINGS_TIMEOUT, GrpcManager};
