//! [`HttpError`]: why a dial, a ping or a call over HTTP failed, for every
//! manager that speaks HTTP (HTTP/1.1, HTTP/2, both, gRPC) and for
//! [`HttpService`](crate::service::HttpService).

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

#[cfg(feature = "grpc")]
use tonic_health::pb::health_check_response::ServingStatus;

use crate::Origin;
use crate::h2_frames::fmt_dead_on_arrival;
use connpool_tcp::transport::DialError;

/// Why a dial, a ping or a call over HTTP failed: the error of the
/// [`http`](crate) and `grpc` managers (their dials and pings), of
/// [`HttpService`](crate::service::HttpService)'s calls and of the bodies
/// of their responses ([`HttpBody`](crate::HttpBody)).
///
/// Each cause is written into the message, so [`source`](StdError::source)
/// is the cause's own source (the crate's rule: see `connpool_http::pool::Error`).
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpError {
    /// The TCP dial or the TLS handshake failed (the destination is in the
    /// message).
    Connect(io::Error),
    /// The key is an `https` origin and the manager has no TLS
    /// configuration: refused before anything was dialed, so nothing meant
    /// for `https` goes out in plaintext.
    NoTls {
        /// The origin (`https://host:port`).
        origin: String,
    },
    /// Over TLS, the server did not agree on the protocol offered in ALPN
    /// (`http/1.1`, or `h2`): it chose another one, or refused the
    /// handshake for want of a common one.
    Alpn {
        /// The protocol offered.
        offered: &'static str,
        /// The protocol it chose instead, if any.
        chose: Option<String>,
    },
    /// hyper's handshake on the new connection failed.
    Handshake(hyper::Error),
    /// The server sent no HTTP/2 `SETTINGS` frame within the settings
    /// timeout: it does not speak HTTP/2 (with prior knowledge, without
    /// TLS), or hangs.
    NoSettings {
        /// How long the dial waited.
        waited: Duration,
    },
    /// The server closed the connection before its HTTP/2 `SETTINGS` frame
    /// (an HTTP/1-only server answers the HTTP/2 preface with a 400 and
    /// closes).
    ClosedBeforeSettings,
    /// The server sent `SETTINGS` and then, before the dial completed,
    /// `GOAWAY` (often in the same write: a server shutting down, or at its
    /// connection limit, accepts and turns the connection away at once), or
    /// the connection closed: it would fail every request, so it is not
    /// handed out.
    ClosedDuringSetup {
        /// The `GOAWAY` error code (0: graceful); `None`: no `GOAWAY`, the
        /// connection closed.
        goaway: Option<u32>,
        /// The `GOAWAY` debug data, if short and printable.
        debug_data: Option<String>,
    },
    /// The HTTP/2 connection is closed, or draining after the server's
    /// `GOAWAY`.
    Closed {
        /// The `GOAWAY` error code, if the server sent one (0: graceful;
        /// 0xb: `ENHANCE_YOUR_CALM`, gRPC's `too_many_pings`).
        goaway: Option<u32>,
    },
    /// The HTTP/1.1 connection cannot carry another request: closed by the
    /// server, told to close (`Connection: close`, `Keep-Alive` limits), or
    /// its last response body not read to its end.
    NotReusable,
    /// Waiting for the connection to take a request failed.
    NotReady(hyper::Error),
    /// The gRPC health check answered, and not `SERVING`.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    Unhealthy {
        /// The service checked (`""`: the whole server).
        service: String,
        /// What the server said: `NOT_SERVING`, `UNKNOWN` or `SERVICE_UNKNOWN`.
        status: ServingStatus,
    },
    /// The gRPC health check call failed (a `NOT_FOUND` status: the health
    /// service does not know the service name). A server without the
    /// health service (`UNIMPLEMENTED`) is not an error.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    Rpc(tonic::Status),
    /// A call got no connection: the pool's error (a failed dial, the
    /// checkout deadline, backoff, a closed pool).
    Pool(Box<connpool_core::Error<HttpError>>),
    /// A call's request failed on its connection (or its response body
    /// did).
    Request(hyper::Error),
    /// A call's deadline ([`HttpService::timeout`](crate::service::HttpService::timeout),
    /// gRPC's `grpc-timeout`) passed before its response (or its body)
    /// ended. An HTTP/1.1 connection it was on is closed, never lent again
    /// (its late response would be the next request's); on HTTP/2 the
    /// stream is reset.
    TimedOut {
        /// The deadline, from the call.
        after: Duration,
    },
    /// A call's request failed on a reused connection the server had
    /// closed (see [`HttpService::retries`](crate::service::HttpService::retries)),
    /// and was not sent again: `reason` says why not.
    NotRetried {
        /// What the connection failed with.
        error: hyper::Error,
        /// Why the request was not safe to send twice.
        reason: &'static str,
    },
    /// A service that routes by authority got a request whose URI has none
    /// (the URI is in the variant).
    NoAuthority(String),
    /// A request could not be made: what was wrong (a URI that does not
    /// parse, a content type no header may carry) is in the message.
    InvalidRequest(String),
    /// A response body was not the JSON asked for
    /// ([`HttpBody::json`](crate::HttpBody::json)).
    #[cfg(feature = "json")]
    #[cfg_attr(docsrs, doc(cfg(feature = "json")))]
    Json(serde_json::Error),
}

impl HttpError {
    /// The pool's error, if a call got no connection.
    pub fn pool_error(&self) -> Option<&connpool_core::Error<HttpError>> {
        match self {
            HttpError::Pool(e) => Some(e),
            _ => None,
        }
    }

    /// A failed dial to `origin`, by a manager that offers `offered` in
    /// ALPN over TLS.
    pub(crate) fn dial(e: DialError, origin: &Origin, offered: &'static str) -> Self {
        match e {
            DialError::NoTls => HttpError::NoTls {
                origin: origin.to_string(),
            },
            e if e.refused_alpn() => HttpError::Alpn {
                offered,
                chose: None,
            },
            e => HttpError::Connect(e.into_io()),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Connect(e) => e.fmt(f),
            HttpError::NoTls { origin } => no_tls(f, origin, cfg!(feature = "tls")),
            HttpError::Alpn {
                offered,
                chose: Some(p),
            } => write!(
                f,
                "the server chose {p:?} in ALPN where {offered} was offered"
            ),
            HttpError::Alpn {
                offered,
                chose: None,
            } => {
                write!(
                    f,
                    "the server refused {offered} in ALPN (it chose no protocol, or refused the handshake for want of one)"
                )?;
                match *offered {
                    "http/1.1" => f.write_str(": it may speak only HTTP/2 there"),
                    "h2" => f.write_str(": no HTTP/2 over TLS there"),
                    _ => Ok(()),
                }
            }
            HttpError::Handshake(e) => write!(f, "HTTP handshake failed: {e}"),
            HttpError::NoSettings { waited } => write!(
                f,
                "no HTTP/2 SETTINGS frame from the server within {waited:?}: not an HTTP/2 server (h2c in plaintext)?"
            ),
            HttpError::ClosedBeforeSettings => f.write_str(
                "the server closed the connection before its HTTP/2 SETTINGS frame: not an HTTP/2 server (h2c in plaintext)?",
            ),
            HttpError::ClosedDuringSetup { goaway, debug_data } => {
                fmt_dead_on_arrival(f, "HTTP/2", *goaway, debug_data.as_deref())
            }
            HttpError::Closed { goaway: Some(0xb) } => f.write_str(
                "HTTP/2 connection closed by the server: GOAWAY ENHANCE_YOUR_CALM (too_many_pings?)",
            ),
            HttpError::Closed { goaway: Some(code) } => {
                write!(f, "HTTP/2 connection draining: GOAWAY (error code {code:#x})")
            }
            HttpError::Closed { goaway: None } => f.write_str("HTTP/2 connection closed"),
            HttpError::NotReusable => f.write_str(
                "HTTP/1.1 connection closed, told to close, or its last response not read to its end",
            ),
            HttpError::NotReady(e) => write!(f, "connection not ready: {e}"),
            #[cfg(feature = "grpc")]
            HttpError::Unhealthy { service, status } => write!(
                f,
                "gRPC health check of service {service:?}: {}",
                status.as_str_name()
            ),
            #[cfg(feature = "grpc")]
            HttpError::Rpc(status) => write!(
                f,
                "gRPC health check failed: {:?}: {}",
                status.code(),
                status.message()
            ),
            HttpError::Pool(e) => e.fmt(f),
            HttpError::Request(e) => write!(f, "HTTP request failed: {e}"),
            HttpError::TimedOut { after } => write!(
                f,
                "HTTP request timed out: no complete response within its deadline of {after:?}"
            ),
            HttpError::NotRetried { error, reason } => write!(
                f,
                "HTTP request failed on a reused connection the server had closed ({error}); not sent again: {reason}"
            ),
            HttpError::InvalidRequest(what) => write!(f, "invalid HTTP request: {what}"),
            #[cfg(feature = "json")]
            HttpError::Json(e) => write!(f, "the response body is not the JSON expected: {e}"),
            HttpError::NoAuthority(uri) => write!(
                f,
                "request URI {uri:?} has no authority: a service that routes by authority needs an absolute URI (http://host:port/path)"
            ),
        }
    }
}

impl StdError for HttpError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            HttpError::Connect(e) => e.source(),
            HttpError::Handshake(e)
            | HttpError::NotReady(e)
            | HttpError::Request(e)
            | HttpError::NotRetried { error: e, .. } => e.source(),
            HttpError::Pool(e) => e.source(),
            #[cfg(feature = "grpc")]
            HttpError::Rpc(s) => s.source(),
            _ => None,
        }
    }
}

/// What a refused `https` origin says: the manager's TLS configuration is
/// missing, or (`tls_built` false) the build has no TLS at all.
fn no_tls(f: &mut fmt::Formatter<'_>, origin: &str, tls_built: bool) -> fmt::Result {
    if tls_built {
        write!(
            f,
            "{origin} refused: https needs a TLS configuration (the manager's `tls`), and is never sent in plaintext"
        )
    } else {
        write!(
            f,
            "{origin} refused: https needs TLS, which this build lacks (enable connpool's `tls` cargo feature and give the manager a TLS configuration); it is never sent in plaintext"
        )
    }
}

#[cfg(test)]
mod tests {
    /// Without the `tls` feature, the message names it.
    #[test]
    fn an_https_origin_without_tls_names_what_is_missing() {
        struct Shown(bool);
        impl std::fmt::Display for Shown {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                super::no_tls(f, "https://example.com:443", self.0)
            }
        }
        assert!(
            Shown(false)
                .to_string()
                .contains("enable connpool's `tls` cargo feature")
        );
        assert!(Shown(true).to_string().contains("the manager's `tls`"));
    }
}
