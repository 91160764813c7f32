//! Ready-made managers for real connections, each behind its cargo feature:
//! connpool's `managers` module (add `connpool` with the features you
//! need; this crate is what it re-exports).
//!
//! | module | feature | pools | lent |
//! |---|---|---|---|
//! | `tcp` | `tcp` | TCP streams (over TLS with `tls`), with kernel keepalive and an app-level ping | exclusively |
//! | `postgres` | `postgres` | `tokio_postgres::Client`s, keyed by database | exclusively |
//! | `redis` | `redis` | redis-rs `MultiplexedConnection`s, keyed by server, database and user | shared (pipelined), or exclusively with `RESET` on return |
//! | `http` | `http` | hyper client connections, keyed by [`Origin`] (scheme and host:port): HTTP/1.1 with keep-alive, HTTP/2, or either as ALPN picks | HTTP/1.1 exclusively; HTTP/2 shared, up to the server's `MAX_CONCURRENT_STREAMS` |
//! | `grpc` | `grpc` | HTTP/2 connections for tonic clients (dialed as the `http` manager dials), health-checked with `grpc.health.v1` | shared, up to the server's `MAX_CONCURRENT_STREAMS` |
//! | `service` | `http` | (a `tower::Service` over a pool of `http` or `grpc` connections: per-call borrowing, the transport for tonic clients; a stale connection's request sent again) | |
//! | `balance` | `balance` | (the addresses behind a name, re-resolved, each a key of an `http` or `grpc` pool; tower's p2c balancer over their `service`s) | |
//! | `websocket` | `websocket` | WebSocket client connections (tokio-tungstenite; `wss` with `tls`), keyed by URL, with a Ping-frame or text heartbeat | exclusively |
//! | `tls` | `tls` | (rustls for every manager that dials TCP: `http`, `grpc`, `websocket`, `redis`, `tcp`; a connector for `postgres`) | |

#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "balance")]
#[cfg_attr(docsrs, doc(cfg(feature = "balance")))]
pub mod balance;
#[cfg(any(
    feature = "postgres",
    feature = "http",
    feature = "redis",
    feature = "websocket"
))]
mod deadline;
#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub mod grpc;
#[cfg(feature = "http")]
mod h2_frames;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
#[cfg(feature = "http")]
mod http_error;
#[cfg(feature = "tcp")]
mod observed;
#[cfg(feature = "http")]
mod origin;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod service;
#[cfg(feature = "tcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "tcp")))]
pub mod tcp;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
#[cfg(feature = "tcp")]
mod transport;
#[cfg(feature = "websocket")]
#[cfg_attr(docsrs, doc(cfg(feature = "websocket")))]
pub mod websocket;

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use http_error::HttpError;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use origin::Origin;
