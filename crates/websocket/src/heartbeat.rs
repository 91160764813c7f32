//! The heartbeat: the [`Heartbeat`] trait, and its two built-in
//! vocabularies, Ping frames (the default) and text.

use tokio_tungstenite::tungstenite::Bytes;
use tokio_tungstenite::tungstenite::Message;

/// One message that asks the server for a reply, and how to recognize that
/// reply: what [`WsManager`](super::WsManager)'s
/// [`ping`](connpool_core::Manager::ping) sends and waits for, in the pool's
/// background keepalive and its health check before lending.
///
/// While it waits, the server's Pings are answered and other control
/// frames are passed over; a Close, an error or a data message that is
/// not the reply fails it. A reply that comes late (after the pool gave up
/// on it) is recognized by [`is_reply`](Heartbeat::is_reply) and dropped,
/// whether the connection is idle or lent by then, so it reaches nobody.
///
/// A service whose heartbeat is JSON:
///
/// ```
/// use connpool_websocket::Heartbeat;
/// use connpool_websocket::tungstenite::Message;
///
/// struct JsonPing;
///
/// impl Heartbeat for JsonPing {
///     fn message(&self) -> Message {
///         Message::text(r#"{"op":"ping"}"#)
///     }
///
///     fn is_reply(&self, reply: &Message) -> bool {
///         matches!(reply, Message::Text(t) if t.as_str().contains(r#""op":"pong""#))
///     }
/// }
/// ```
pub trait Heartbeat: Send + Sync + 'static {
    /// The message sent.
    fn message(&self) -> Message;

    /// Whether `reply`, received, answers it.
    fn is_reply(&self, reply: &Message) -> bool;

    /// The answer to `msg` if it is the *server's* heartbeat in this
    /// vocabulary (many services ping their clients with the same text
    /// they accept, and close a client that does not answer). The
    /// connection sends it at once, whether idle or lent, and does not
    /// pass `msg` on to the borrower; it counts as a sign of life, not as
    /// a message nobody asked for. The default answers nothing (Ping
    /// frames are answered by tungstenite itself).
    fn answer(&self, msg: &Message) -> Option<Message> {
        let _ = msg;
        None
    }
}

/// The protocol's own heartbeat (RFC 6455 §5.5.2): a Ping frame with no
/// payload, answered by a Pong frame with none. Every WebSocket server
/// answers it, without the application seeing it; the cheapest heartbeat
/// (6 bytes out, masked as client frames are, 2 bytes back). The default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PingFrame;

impl Heartbeat for PingFrame {
    fn message(&self) -> Message {
        Message::Ping(Bytes::new())
    }

    fn is_reply(&self, reply: &Message) -> bool {
        matches!(reply, Message::Pong(payload) if payload.is_empty())
    }
}

/// An application heartbeat in text: what
/// [`WsManager::text_heartbeat`](super::WsManager::text_heartbeat) sets.
/// The server's own `request` is answered with `reply` too
/// ([`Heartbeat::answer`]): the convention runs both ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TextHeartbeat {
    request: String,
    reply: String,
}

impl TextHeartbeat {
    /// Sends `request`, expects exactly `reply` back.
    pub(crate) fn new(request: impl Into<String>, reply: impl Into<String>) -> Self {
        Self {
            request: request.into(),
            reply: reply.into(),
        }
    }
}

impl Heartbeat for TextHeartbeat {
    fn message(&self) -> Message {
        Message::text(self.request.as_str())
    }

    fn is_reply(&self, reply: &Message) -> bool {
        matches!(reply, Message::Text(text) if text.as_str() == self.reply)
    }

    /// The server's `request` is answered with `reply`.
    fn answer(&self, msg: &Message) -> Option<Message> {
        matches!(msg, Message::Text(text) if text.as_str() == self.request)
            .then(|| Message::text(self.reply.as_str()))
    }
}
