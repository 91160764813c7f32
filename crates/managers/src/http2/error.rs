//! [`Http2Error`]: why an HTTP/2 dial or ping failed.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

use crate::h2_frames::fmt_dead_on_arrival;

/// Why an HTTP/2 dial or ping failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Http2Error {
    /// The TCP dial failed (the destination is in the message).
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
    /// does not speak HTTP/2 (with prior knowledge, without TLS), or hangs.
    NoSettings {
        /// How long the dial waited.
        waited: Duration,
    },
    /// The server closed the connection before sending `SETTINGS` (an
    /// HTTP/1-only server answers the HTTP/2 preface with a 400 and closes).
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
    /// The connection is closed, or draining after the server's `GOAWAY`.
    Closed {
        /// The `GOAWAY` error code, if the server sent one (0: graceful).
        goaway: Option<u32>,
    },
    /// Waiting for the connection to be ready failed.
    NotReady(hyper::Error),
    /// Over TLS, the server did not agree on `h2` in ALPN: it does not
    /// speak HTTP/2 there.
    NoH2 {
        /// The protocol it chose instead, if any.
        alpn: Option<String>,
    },
}

impl fmt::Display for Http2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Http2Error::Connect(e) => e.fmt(f),
            Http2Error::NoTls { origin } => write!(
                f,
                "{origin} refused: https needs a TLS configuration (the manager's `tls`), and is never sent in plaintext"
            ),
            Http2Error::Handshake(e) => write!(f, "HTTP/2 handshake failed: {e}"),
            Http2Error::NoSettings { waited } => write!(
                f,
                "no HTTP/2 SETTINGS frame from the server within {waited:?}: not an HTTP/2 (h2c) server?"
            ),
            Http2Error::ClosedBeforeSettings => f.write_str(
                "the server closed the connection before its HTTP/2 SETTINGS frame: not an HTTP/2 (h2c) server?",
            ),
            Http2Error::ClosedDuringSetup { goaway, debug_data } => {
                fmt_dead_on_arrival(f, "HTTP/2", *goaway, debug_data.as_deref())
            }
            Http2Error::Closed { goaway: Some(code) } => {
                write!(f, "HTTP/2 connection draining: GOAWAY (error code {code:#x})")
            }
            Http2Error::Closed { goaway: None } => f.write_str("HTTP/2 connection closed"),
            Http2Error::NotReady(e) => write!(f, "HTTP/2 connection not ready: {e}"),
            Http2Error::NoH2 { alpn: Some(p) } => write!(
                f,
                "the server did not agree on h2 in ALPN (it chose {p:?}): no HTTP/2 over TLS there"
            ),
            Http2Error::NoH2 { alpn: None } => f.write_str(
                "the server did not agree on h2 in ALPN (it chose no protocol, or refused the handshake for want of one): no HTTP/2 over TLS there",
            ),
        }
    }
}

/// Each cause is written into the message, so the source is the cause's own
/// (the crate's rule: see `connpool::Error`).
impl StdError for Http2Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Http2Error::Connect(e) => e.source(),
            Http2Error::Handshake(e) | Http2Error::NotReady(e) => e.source(),
            _ => None,
        }
    }
}
