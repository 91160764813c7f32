//! [`WsError`]: why a WebSocket dial or heartbeat failed, or why a
//! connection is no longer usable.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use tokio_tungstenite::tungstenite;
use tungstenite::protocol::CloseFrame;

/// At most this much of a refusing server's response body is shown.
const BODY_SHOWN: usize = 200;

/// Why a WebSocket dial or heartbeat failed, or why a connection is no
/// longer usable.
#[derive(Debug)]
#[non_exhaustive]
pub enum WsError {
    /// Not a `ws://` or `wss://` URL this manager can dial (what is wrong
    /// is in the message).
    Url(String),
    /// A `wss://` URL, and the crate was built without its `tls` feature.
    NoTls,
    /// The TCP dial or the TLS handshake failed: the destination and the
    /// cause are in the message (for TLS, in rustls's words).
    Connect(io::Error),
    /// The WebSocket opening handshake failed: the server refused the
    /// upgrade (its HTTP status and the start of its body are in the
    /// message), or its answer broke the protocol.
    Handshake {
        /// The URL dialed (its query left out).
        url: String,
        /// What tungstenite said.
        error: tungstenite::Error,
    },
    /// The server sent a Close frame (its code and reason, if it gave
    /// them).
    Closed(Option<CloseFrame>),
    /// The connection ended without a Close frame (the socket closed), or
    /// was closed from this side.
    Ended,
    /// A protocol or I/O error on an open connection.
    Protocol(tungstenite::Error),
    /// While lent, the connection's heartbeat went unanswered this many
    /// times in a row, one every `every` of silence: the server or the
    /// path to it is gone ([`WsManager::heartbeat_while_lent`](super::WsManager::heartbeat_while_lent)).
    HeartbeatMissed {
        /// Heartbeats sent without a word from the server since.
        missed: u32,
        /// The silence after which each was sent.
        every: std::time::Duration,
    },
    /// A read on a lent connection got no message within its read
    /// timeout ([`WsManager::read_timeout`](super::WsManager::read_timeout),
    /// [`WsConn::set_read_timeout`](super::WsConn::set_read_timeout)).
    ReadTimedOut {
        /// The read timeout.
        after: std::time::Duration,
    },
    /// The borrower gave the connection back in the middle of an
    /// exchange: a read cut short (a timeout, a cancelled task) or a
    /// message not yet flushed. Its reply may still come, and must not
    /// reach the next borrower.
    Interrupted,
    /// A call of a [`WsService`](super::WsService) passed its deadline
    /// ([`WsService::timeout`](super::WsService::timeout)); the connection
    /// is not lent again if its reply may still come.
    TimedOut {
        /// The deadline.
        after: std::time::Duration,
        /// What the call was waiting for: `"a connection"` (the pool's
        /// wait, a health check, a dial), `"the send"` or `"the reply"`.
        waiting_for: &'static str,
    },
    /// A call of a [`WsService`](super::WsService) got no connection: the
    /// pool's error (a failed dial, the key's backoff, a closed pool).
    NoConnection(Box<connpool_core::Error<WsError>>),
    /// A data message arrived that nobody asked for: on an idle
    /// connection, or in place of a heartbeat's reply.
    Unsolicited {
        /// `"text"` or `"binary"`.
        kind: &'static str,
        /// Its length in bytes.
        len: usize,
    },
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Url(what) => f.write_str(what),
            WsError::NoTls => {
                f.write_str("a wss:// URL needs connpool's `tls` feature, which is not enabled")
            }
            WsError::Connect(e) => fmt::Display::fmt(e, f),
            WsError::Handshake { url, error } => {
                write!(f, "WebSocket handshake with {url} failed: ")?;
                fmt_tungstenite(error, f)
            }
            WsError::Closed(Some(frame)) if frame.reason.is_empty() => {
                write!(f, "the server closed the WebSocket (code {})", frame.code)
            }
            WsError::Closed(Some(frame)) => write!(
                f,
                "the server closed the WebSocket (code {}: {:?})",
                frame.code,
                frame.reason.as_str()
            ),
            WsError::Closed(None) => f.write_str("the server closed the WebSocket (no code)"),
            WsError::Ended => f.write_str("the WebSocket connection ended without a Close frame"),
            WsError::HeartbeatMissed { missed, every } => write!(
                f,
                "no word from the WebSocket server for {missed} heartbeats in a row, one every {every:?} of silence: the server or the path to it is gone"
            ),
            WsError::ReadTimedOut { after } => write!(
                f,
                "no message from the WebSocket server within the read timeout of {after:?} (the connection is not lent again)"
            ),
            WsError::Interrupted => f.write_str(
                "the WebSocket connection came back in the middle of an exchange (a read cut short, or a message not flushed): not lent again, its late reply would reach the next borrower",
            ),
            WsError::Protocol(e) => {
                f.write_str("WebSocket connection failed: ")?;
                fmt_tungstenite(e, f)
            }
            WsError::TimedOut { after, waiting_for } => write!(
                f,
                "the WebSocket call timed out: no reply within its deadline of {after:?} (waiting for {waiting_for})"
            ),
            WsError::NoConnection(e) => write!(f, "no WebSocket connection: {e}"),
            WsError::Unsolicited { kind, len } => write!(
                f,
                "a {kind} message of {len} bytes arrived unasked (the connection is out of step)"
            ),
        }
    }
}

/// tungstenite's message, with what a refusing server answered: its status
/// and the start of its body.
fn fmt_tungstenite(e: &tungstenite::Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match e {
        tungstenite::Error::Http(response) => {
            write!(f, "the server answered {}", response.status())?;
            let body = response.body().as_deref().unwrap_or_default();
            let text = String::from_utf8_lossy(&body[..body.len().min(BODY_SHOWN)]);
            let text = text.trim();
            if !text.is_empty() {
                let more = if body.len() > BODY_SHOWN { "…" } else { "" };
                write!(f, ": {text:?}{more}")?;
            }
            Ok(())
        }
        // Its own words would be "IO error: …".
        tungstenite::Error::Io(io) => fmt::Display::fmt(io, f),
        other => fmt::Display::fmt(other, f),
    }
}

/// Each cause is written into the message, so the source is the cause's own
/// (the crate's rule: see `connpool_websocket::pool::Error`). tungstenite's errors write
/// their inner error into their message too, so only an I/O error's own
/// source is passed on.
impl StdError for WsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            WsError::Connect(e) => e.source(),
            WsError::NoConnection(e) => e.source(),
            WsError::Handshake { error, .. } | WsError::Protocol(error) => match error {
                tungstenite::Error::Io(io) => io.source(),
                _ => None,
            },
            _ => None,
        }
    }
}
