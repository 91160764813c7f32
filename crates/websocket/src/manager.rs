//! [`WsManager`]: dials a [`WsUrl`] (TCP, TLS for `wss`, the opening
//! handshake with the manager's headers), runs the heartbeat, and judges
//! whether a connection may be lent again.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::{
    HeaderMap, HeaderName, HeaderValue, InvalidHeaderValue, SEC_WEBSOCKET_PROTOCOL,
};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::conn::{WhileLent, WsConn};
use super::error::WsError;
use super::heartbeat::{Heartbeat, PingFrame, TextHeartbeat};
use super::url::WsUrl;
use connpool_core::{Health, Liveness, Manager};
#[cfg(feature = "tls")]
use connpool_tcp::tls::TlsConfig;
use connpool_tcp::transport::{DialError, Stream, Transport};
use connpool_tcp::{Destination, TcpManager};

/// How long `close` waits to write its Close frame: a peer that reads
/// nothing (its window full) does not hold the close task longer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

// tungstenite's default is 128 KiB, zero-filled before every read (also
// one that finds nothing): on a pooled connection carrying small messages
// that costs more than the I/O. See `WsManager::config` for the figures.
const READ_BUFFER_SIZE: usize = 8 * 1024;

/// A [`Manager`] of WebSocket client connections, keyed by [`WsUrl`], lent
/// exclusively, with a [`Heartbeat`] as its ping. See the
/// [module docs](super) for the guide.
///
/// | setting | default |
/// |---|---|
/// | [`header`](WsManager::header), [`subprotocols`](WsManager::subprotocols) | none: the handshake's own headers only |
/// | [`heartbeat`](WsManager::heartbeat), [`text_heartbeat`](WsManager::text_heartbeat) | a Ping frame, whose Pong must come back |
/// | [`heartbeat_while_lent`](WsManager::heartbeat_while_lent) | on: the pool's `keepalive_interval` of silence while a borrower reads sends one, `keepalive_max_missed` unanswered end its stream |
/// | [`read_timeout`](WsManager::read_timeout) | none: a read waits while the server is silent (the heartbeat finds a dead one) |
/// | [`tls`](WsManager::tls) (`wss`) | [`TlsConfig::webpki_roots`] (Mozilla's roots), ALPN `http/1.1` |
/// | [`with_tcp`](WsManager::with_tcp) | [`TcpManager::new`]: `TCP_NODELAY`, kernel keepalive 60 s / 10 s / 3 |
/// | [`config`](WsManager::config) | tungstenite's `WebSocketConfig::default()` (64 MiB messages), with an 8 KiB read buffer |
///
/// Clones share the count of [`unsolicited_messages`](WsManager::unsolicited_messages).
/// `Debug` shows the headers' names, never their values.
#[derive(Clone)]
pub struct WsManager {
    /// TCP, and TLS for `wss`.
    transport: Transport,
    headers: HeaderMap,
    config: WebSocketConfig,
    heartbeat: Arc<dyn Heartbeat>,
    /// The heartbeat while lent: on or off, and the pool's schedule.
    while_lent: bool,
    schedule: Option<WhileLent>,
    read_timeout: Option<Duration>,
    unsolicited: Arc<AtomicU64>,
}

impl WsManager {
    /// A manager with the defaults (see the table above).
    pub fn new() -> Self {
        let mut transport = Transport::default();
        transport.set_default_tls(&[b"http/1.1"]);
        let mut manager = Self {
            transport,
            headers: HeaderMap::new(),
            config: WebSocketConfig::default().read_buffer_size(READ_BUFFER_SIZE),
            heartbeat: Arc::new(PingFrame),
            while_lent: true,
            schedule: None,
            read_timeout: None,
            unsolicited: Arc::default(),
        };
        // Until a pool configures it: the pool's defaults.
        manager.liveness(&Liveness::default());
        manager
    }

    /// Adds a header to every opening handshake (`Authorization`, a
    /// cookie, an API key). Values are marked sensitive; none is shown by
    /// `Debug` or logged.
    pub fn header(mut self, name: HeaderName, mut value: HeaderValue) -> Self {
        value.set_sensitive(true);
        self.headers.append(name, value);
        self
    }

    /// Asks for these subprotocols (`Sec-WebSocket-Protocol`), in order of
    /// preference. The server must choose one of them, or the dial fails;
    /// [`WsConn::subprotocol`] says which. Fails on a name no header may
    /// carry.
    pub fn subprotocols(mut self, protocols: &[&str]) -> Result<Self, InvalidHeaderValue> {
        let value = HeaderValue::from_str(&protocols.join(", "))?;
        self.headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
        Ok(self)
    }

    /// The heartbeat that [`Manager::ping`] sends, your own vocabulary
    /// (default: the protocol's Ping frame, answered by a Pong).
    pub fn heartbeat(mut self, heartbeat: impl Heartbeat) -> Self {
        self.heartbeat = Arc::new(heartbeat);
        self
    }

    /// An application heartbeat in text, as many services define one:
    /// sends `request` and expects exactly `reply` back, and answers the
    /// server's own `request` with `reply` (the convention runs both ways).
    /// Use it where a proxy or the service ignores Ping frames, or closes
    /// connections that send nothing at the application level; the usual
    /// pair is `("ping", "pong")`.
    ///
    /// ```
    /// use connpool_websocket::WsManager;
    ///
    /// let manager = WsManager::new().text_heartbeat(r#"{"type":"ping"}"#, r#"{"type":"pong"}"#);
    /// ```
    pub fn text_heartbeat(self, request: impl Into<String>, reply: impl Into<String>) -> Self {
        self.heartbeat(TextHeartbeat::new(request, reply))
    }

    /// The heartbeat of a *lent* connection, on by default: while the
    /// borrower waits in its stream (`next()`), each `keepalive_interval`
    /// (the pool's, 30 s by default) of silence from the server sends the
    /// [`heartbeat`](WsManager::heartbeat), and after `keepalive_max_missed`
    /// (the pool's, 1 by default) in a row with no word from the server,
    /// the next interval's end fails the stream with an I/O error of kind
    /// `TimedOut` that says so ([`WsError::HeartbeatMissed`]); the
    /// connection is broken and closed on return. So a silent peer is
    /// found after `keepalive_interval × (keepalive_max_missed + 1)` of
    /// silence, as an idle one is by the pool's keepalive. Anything the
    /// server sends counts as a word; replies to the heartbeat are not
    /// shown to the borrower. A pool without `keepalive_interval` sends
    /// none while lent either.
    /// What it costs: one heartbeat per interval of *silence* on a lent
    /// connection (a Ping frame and its Pong, 8 bytes of frames), nothing
    /// on one that carries traffic, since every message heard restarts
    /// the silence; a timer per connection, armed at the borrower's first
    /// wait. What it buys: a dead peer under a subscription is found
    /// within 2 × 30 s (with the defaults) instead of never.
    pub fn heartbeat_while_lent(mut self, on: bool) -> Self {
        self.while_lent = on;
        self
    }

    /// How long a read on a lent connection (`next()`) waits for a message
    /// before it fails with an I/O error of kind `TimedOut`
    /// ([`WsError::ReadTimedOut`]); the connection is then closed when it
    /// comes back, since the message may still come and must not reach the
    /// next borrower. A borrower sets its own with
    /// [`WsConn::set_read_timeout`]. Bounds each read from its first wait
    /// to a message (a data message or a Close; the heartbeat's replies do
    /// not count), not the checkout (the pool's `checkout_timeout`) nor a
    /// send. Default `None`: a read waits as long as the server is silent,
    /// and the [`heartbeat_while_lent`](WsManager::heartbeat_while_lent)
    /// finds a dead peer; set it for request and reply, where an answer
    /// is due.
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// What `wss` URLs trust and present (default
    /// [`TlsConfig::webpki_roots`]). ALPN offers `http/1.1`.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.transport.set_tls(tls, &[b"http/1.1"]);
        self
    }

    /// The TCP dial's socket setup (its ping is not used).
    pub fn with_tcp(mut self, tcp: TcpManager) -> Self {
        self.transport.set_tcp(tcp);
        self
    }

    /// tungstenite's limits and buffer sizes. The default is tungstenite's
    /// with an 8 KiB read buffer instead of 128 KiB: tungstenite zero-fills
    /// the buffer's free space before every read, so a small buffer makes
    /// small messages cheaper and large ones dearer (more reads per
    /// message; `pooled_vs_naive`'s WebSocket rows, see BENCHMARKS.md), and
    /// each connection holds 120 KiB less. Raise `read_buffer_size` for a
    /// stream of large messages.
    pub fn config(mut self, config: WebSocketConfig) -> Self {
        self.config = config;
        self
    }

    /// Data messages that arrived on idle connections (or were left
    /// unread by a borrower) or in place of a heartbeat's reply, each of
    /// which retired its connection. Shared by clones of this manager.
    pub fn unsolicited_messages(&self) -> u64 {
        self.unsolicited.load(Ordering::Relaxed)
    }

    /// Reads what arrived on `conn` while idle; counts and logs what broke
    /// it. Whether it is broken.
    fn check(&self, conn: &mut WsConn) -> bool {
        if conn.read_idle()
            && let Some(why) = conn.why()
        {
            self.noted(conn.url(), why);
        }
        conn.is_broken()
    }

    fn noted(&self, url: &WsUrl, why: &WsError) {
        if let WsError::Unsolicited { .. } = why {
            self.unsolicited.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(%url, error = %why, "WebSocket connection retired");
    }

    /// The socket beneath the WebSocket: TCP, or TLS over it for `wss`.
    async fn io(
        &self,
        url: &WsUrl,
        dest: &Destination,
    ) -> Result<(Stream, std::net::SocketAddr), WsError> {
        match self.transport.dial(dest, url.is_tls()).await {
            Ok(dialed) => Ok((dialed.stream, dialed.peer)),
            Err(DialError::NoTls) => Err(WsError::NoTls),
            Err(e) => Err(WsError::Connect(e.into_io())),
        }
    }
}

impl Default for WsManager {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for WsManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("WsManager");
        d.field("transport", &self.transport);
        // Names only: the values are credentials.
        d.field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .field("heartbeat_while_lent", &self.while_lent)
            .field("schedule", &self.schedule)
            .field("read_timeout", &self.read_timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Manager for WsManager {
    type Key = WsUrl;
    type Connection = WsConn;
    type Error = WsError;

    /// Takes the pool's keepalive schedule for the heartbeat while lent.
    fn liveness(&mut self, liveness: &Liveness) {
        self.schedule = liveness.keepalive_interval().map(|every| WhileLent {
            every,
            max_missed: liveness.keepalive_max_missed(),
        });
    }

    async fn connect(&self, url: &WsUrl) -> Result<WsConn, WsError> {
        let dest = url.destination();
        let (io, peer) = self.io(url, &dest).await?;
        let handshake = |error| WsError::Handshake {
            url: url.to_string(),
            error,
        };
        let mut request = url.as_uri().into_client_request().map_err(handshake)?;
        for (name, value) in &self.headers {
            request.headers_mut().append(name, value.clone());
        }
        let (ws, response) =
            tokio_tungstenite::client_async_with_config(request, io, Some(self.config))
                .await
                .map_err(handshake)?;
        let subprotocol = response
            .headers()
            .get(SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let heartbeat = Arc::clone(&self.heartbeat);
        Ok(WsConn::new(
            ws,
            url.clone(),
            peer,
            subprotocol,
            heartbeat,
            (self.schedule.filter(|_| self.while_lent), self.read_timeout),
        ))
    }

    /// Reads what arrived while idle (a broken connection fails at once),
    /// then one heartbeat round trip.
    async fn ping(&self, conn: &mut WsConn) -> Result<(), WsError> {
        if self.check(conn) {
            return Err(conn.take_why());
        }
        let beat = conn.beat().await;
        if let Err(e) = &beat {
            self.noted(conn.url(), e);
        }
        beat
    }

    /// A connection the server sent its Close on is done in the normal
    /// course ([`Health::ClosedByServer`]); one that failed otherwise is
    /// broken.
    fn health(&self, conn: &mut WsConn) -> Health {
        if !self.check(conn) {
            Health::Ready
        } else if conn.peer_closed() {
            Health::ClosedByServer
        } else {
            Health::Broken
        }
    }

    /// A Close frame (code 1000), or, after the server's own Close, the
    /// Close that answers it (RFC 6455 §5.5.1); bounded by 1 s.
    async fn close(&self, mut conn: WsConn) {
        if !conn.is_broken() || conn.peer_closed() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.close()).await;
        }
    }
}
