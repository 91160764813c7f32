//! The managers against real servers: in-process TCP, hyper and tonic
//! servers on 127.0.0.1 (behind the fault proxy where a test needs one) and
//! a throwaway PostgreSQL (`support::pg`, shared by the tests of this binary
//! that don't stop it). Each module needs its manager's feature; `errors`
//! runs its manager-independent part without any.

#[path = "../support/mod.rs"]
mod support;

#[cfg(feature = "balance")]
mod balance;
#[cfg(feature = "http")]
mod deadlines;
mod errors;
#[cfg(feature = "grpc")]
mod grpc;
#[cfg(feature = "grpc")]
mod grpc_status;
#[cfg(feature = "grpc")]
mod h2_unprocessed;
#[cfg(feature = "http")]
mod http1;
#[cfg(all(feature = "http", feature = "tls"))]
mod http1_tls;
#[cfg(feature = "http")]
mod http2;
#[cfg(feature = "http")]
mod http2_outage;
#[cfg(feature = "http")]
mod http_requests;
#[cfg(feature = "postgres")]
mod pg_bouncer;
#[cfg(feature = "postgres")]
mod pg_deadline;
#[cfg(feature = "postgres")]
mod pg_failover;
#[cfg(feature = "postgres")]
mod pg_restart;
#[cfg(feature = "postgres")]
mod pg_service;
#[cfg(feature = "postgres")]
mod pg_session;
#[cfg(feature = "postgres")]
mod pg_shared;
#[cfg(feature = "postgres")]
mod pg_shared_session;
#[cfg(feature = "postgres")]
mod pg_tracking;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_faults;
#[cfg(feature = "redis")]
mod redis_reset;
#[cfg(feature = "redis")]
mod redis_sentinel;
#[cfg(feature = "redis")]
mod redis_service;
#[cfg(all(feature = "http", feature = "tls"))]
mod schemes;
#[cfg(feature = "http")]
mod service;
#[cfg(feature = "tcp")]
mod tcp;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "websocket")]
mod websocket;
#[cfg(feature = "websocket")]
mod ws_cancelled;
#[cfg(feature = "websocket")]
mod ws_faults;
#[cfg(feature = "websocket")]
mod ws_greeting;
#[cfg(feature = "websocket")]
mod ws_read_timeout;
#[cfg(feature = "websocket")]
mod ws_rfc;
#[cfg(feature = "websocket")]
mod ws_service;
#[cfg(feature = "websocket")]
mod ws_subscription;
