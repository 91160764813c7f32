//! [`Http1Error`]: why an HTTP/1.1 dial or ping failed.

use std::error::Error as StdError;
use std::fmt;
use std::io;

/// Why an HTTP/1.1 dial or ping failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Http1Error {
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
    /// The HTTP/1.1 connection could not be set up.
    Handshake(hyper::Error),
    /// Over TLS, the server did not agree on `http/1.1` in ALPN: it chose
    /// another protocol, or refused the handshake for want of a common one
    /// (a server that speaks only HTTP/2 there).
    Alpn {
        /// The protocol it chose, if any.
        alpn: Option<String>,
    },
    /// The connection cannot carry another request: closed by the server,
    /// told to close (`Connection: close`, `Keep-Alive` limits), or its last
    /// response body not read to its end.
    Closed,
    /// Waiting for the connection to take a request failed.
    NotReady(hyper::Error),
}

impl fmt::Display for Http1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Http1Error::Connect(e) => e.fmt(f),
            Http1Error::NoTls { origin } => write!(
                f,
                "{origin} refused: https needs a TLS configuration (the manager's `tls`), and is never sent in plaintext"
            ),
            Http1Error::Handshake(e) => write!(f, "HTTP/1.1 handshake failed: {e}"),
            Http1Error::Alpn { alpn: Some(p) } => write!(
                f,
                "the server chose {p:?} in ALPN where http/1.1 was offered"
            ),
            Http1Error::Alpn { alpn: None } => f.write_str(
                "the server refused http/1.1 in ALPN (no common protocol): it may speak only HTTP/2 there",
            ),
            Http1Error::Closed => f.write_str(
                "HTTP/1.1 connection closed, told to close, or its last response not read to its end",
            ),
            Http1Error::NotReady(e) => write!(f, "HTTP/1.1 connection not ready: {e}"),
        }
    }
}

/// Each cause is written into the message, so the source is the cause's own
/// (the crate's rule: see `connpool::Error`).
impl StdError for Http1Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Http1Error::Connect(e) => e.source(),
            Http1Error::Handshake(e) | Http1Error::NotReady(e) => e.source(),
            _ => None,
        }
    }
}
