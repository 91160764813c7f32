//! [`GrpcError`]: why a gRPC dial or health check failed.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;

use crate::h2_frames::fmt_dead_on_arrival;
use crate::http2::Http2Error;

/// Why a gRPC dial or health check failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum GrpcError {
    /// The TCP dial failed or timed out (the destination is in the
    /// message).
    Connect(io::Error),
    /// The key is an `https` origin and the manager has no TLS
    /// configuration: refused before anything was dialed, so nothing meant
    /// for `https` goes out in plaintext.
    NoTls {
        /// The origin (`https://host:port`).
        origin: String,
    },
    /// The HTTP/2 handshake failed.
    Handshake(hyper::Error),
    /// The server sent no `SETTINGS` frame within the settings timeout: it
    /// does not speak HTTP/2 (h2c in plaintext, h2 over TLS), or hangs.
    NoSettings {
        /// How long the dial waited.
        waited: Duration,
    },
    /// The server closed the connection before its `SETTINGS` frame.
    ClosedBeforeSettings,
    /// The health check answered, and not `SERVING`.
    Unhealthy {
        /// The service checked (`""`: the whole server).
        service: String,
        /// What the server said: `NOT_SERVING`, `UNKNOWN` or `SERVICE_UNKNOWN`.
        status: ServingStatus,
    },
    /// The health check call failed (a `NOT_FOUND` status: the server has no
    /// health service, or does not know the service name).
    Rpc(tonic::Status),
    /// The server sent `SETTINGS` and then, before the dial completed,
    /// `GOAWAY` (often in the same write: a server shutting down, or at its
    /// connection limit, accepts and turns the connection away at once), or
    /// the connection closed: it would fail every call, so it is not handed
    /// out.
    ClosedDuringSetup {
        /// The `GOAWAY` error code (0: graceful); `None`: no `GOAWAY`, the
        /// connection closed.
        goaway: Option<u32>,
        /// The `GOAWAY` debug data, if short and printable.
        debug_data: Option<String>,
    },
    /// Over TLS, the server did not agree on `h2` in ALPN.
    NoH2 {
        /// The protocol it chose instead, if any.
        alpn: Option<String>,
    },
    /// The connection is closed, or draining after the server's `GOAWAY`.
    Closed {
        /// The `GOAWAY` error code, if the server sent one (0: graceful;
        /// 0xb: `ENHANCE_YOUR_CALM`, gRPC's `too_many_pings`).
        goaway: Option<u32>,
    },
}

impl fmt::Display for GrpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrpcError::Connect(e) => write!(f, "gRPC connect failed: {e}"),
            GrpcError::NoTls { origin } => write!(
                f,
                "{origin} refused: https needs a TLS configuration (the manager's `tls`), and is never sent in plaintext"
            ),
            GrpcError::Handshake(e) => write!(f, "gRPC: HTTP/2 handshake failed: {e}"),
            GrpcError::NoSettings { waited } => write!(
                f,
                "no HTTP/2 SETTINGS frame from the server within {waited:?}: not a gRPC server (or not HTTP/2: h2c in plaintext)?"
            ),
            GrpcError::ClosedBeforeSettings => f.write_str(
                "the server closed the connection before its HTTP/2 SETTINGS frame: not a gRPC server (or not HTTP/2: h2c in plaintext)?",
            ),
            GrpcError::Unhealthy { service, status } => write!(
                f,
                "gRPC health check of service {service:?}: {}",
                status.as_str_name()
            ),
            GrpcError::Rpc(status) => write!(
                f,
                "gRPC health check failed: {:?}: {}",
                status.code(),
                status.message()
            ),
            GrpcError::ClosedDuringSetup { goaway, debug_data } => {
                fmt_dead_on_arrival(f, "gRPC", *goaway, debug_data.as_deref())
            }
            GrpcError::Closed { goaway: Some(0xb) } => f.write_str(
                "gRPC connection closed by the server: GOAWAY ENHANCE_YOUR_CALM (too_many_pings?)",
            ),
            GrpcError::Closed {
                goaway: Some(code),
            } => write!(f, "gRPC connection draining: GOAWAY (error code {code:#x})"),
            GrpcError::Closed { goaway: None } => f.write_str("gRPC connection closed"),
            GrpcError::NoH2 { alpn } => write!(
                f,
                "gRPC over TLS: {}",
                Http2Error::NoH2 { alpn: alpn.clone() }
            ),
        }
    }
}

/// Each cause is written into the message, so the source is the cause's own
/// (the crate's rule: see `connpool::Error`); `Connect` writes its whole
/// chain.
impl StdError for GrpcError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            GrpcError::Connect(e) => e.source(),
            GrpcError::Handshake(e) => e.source(),
            GrpcError::Rpc(s) => s.source(),
            _ => None,
        }
    }
}

/// The HTTP/2 manager's dial and ping errors, as gRPC's.
impl From<Http2Error> for GrpcError {
    fn from(e: Http2Error) -> Self {
        match e {
            Http2Error::Connect(e) => GrpcError::Connect(e),
            Http2Error::NoTls { origin } => GrpcError::NoTls { origin },
            Http2Error::Handshake(e) | Http2Error::NotReady(e) => GrpcError::Handshake(e),
            Http2Error::NoSettings { waited } => GrpcError::NoSettings { waited },
            Http2Error::ClosedBeforeSettings => GrpcError::ClosedBeforeSettings,
            Http2Error::ClosedDuringSetup { goaway, debug_data } => {
                GrpcError::ClosedDuringSetup { goaway, debug_data }
            }
            Http2Error::Closed { goaway } => GrpcError::Closed { goaway },
            Http2Error::NoH2 { alpn } => GrpcError::NoH2 { alpn },
        }
    }
}
