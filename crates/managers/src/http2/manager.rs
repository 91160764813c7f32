//! [`Http2Manager`]: dials HTTP/2 connections (h2c, or over TLS), waits for
//! the server's first `SETTINGS`, and lends them by its stream limit.

use std::error::Error as StdError;
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::uri::Scheme;
use http_body::Body;
use http_body_util::Full;
use hyper::client::conn::http2::Builder as H2Builder;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::Http2Conn;
use crate::HttpError;
use crate::Origin;
use crate::h2_frames::{
    DeadOnArrival, FrameWatcher, SettingsWait, await_settings, dead_on_arrival,
    lend_by_stream_limit,
};
use crate::tcp::TcpManager;
#[cfg(feature = "tls")]
use crate::tls::TlsConfig;
use crate::transport::Transport;
use connpool_core::{Lending, Manager};

/// Default [`http2_keep_alive_interval`](Http2Manager::http2_keep_alive_interval): a
/// PING after 30 s without traffic from the server. Finds a silently dead
/// server within 40 s (with the timeout), three times faster than kernel
/// TCP keepalive's default 90 s, for one 17-byte frame each way per half
/// minute of silence; below common NAT and load-balancer idle limits (≥ 60 s).
pub const DEFAULT_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Default [`http2_keep_alive_timeout`](Http2Manager::http2_keep_alive_timeout): 10 s
/// for the PING's ACK. Generous next to any sane round trip, yet a dead
/// server is declared dead within interval + timeout = 40 s.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`settings_timeout`](Http2Manager::settings_timeout): 5 s for the
/// server's first `SETTINGS` frame, which an HTTP/2 server sends at once.
pub const DEFAULT_SETTINGS_TIMEOUT: Duration = Duration::from_secs(5);

/// Makes HTTP/2 (h2c, prior knowledge) client connections for a keyed
/// [`Pool`](connpool_core::Pool), lent shared; request bodies of type `B`. See the
/// [module docs](super).
///
/// | setting | default | why |
/// |---|---|---|
/// | [`with_tcp`](Http2Manager::with_tcp) | [`TcpManager::new`]: `TCP_NODELAY`, kernel keepalive 60 s / 10 s / 3 | small frames go out at once; a vanished peer is found even with HTTP/2 keepalive off |
/// | [`http2_keep_alive_interval`](Http2Manager::http2_keep_alive_interval) | 30 s ([`DEFAULT_KEEP_ALIVE_INTERVAL`]) | hyper's PING is the only liveness probe HTTP/2 has here; 30 s finds a dead server 3× sooner than kernel keepalive |
/// | [`http2_keep_alive_timeout`](Http2Manager::http2_keep_alive_timeout) | 10 s ([`DEFAULT_KEEP_ALIVE_TIMEOUT`]) | far above a round trip; dead within 40 s |
/// | [`http2_keep_alive_while_idle`](Http2Manager::http2_keep_alive_while_idle) | on | the manager's `ping` is no round trip, so idle pooled connections are only probed by these PINGs (turn off, or raise the interval to ≥ 5 min, against gRPC servers) |
/// | [`settings_timeout`](Http2Manager::settings_timeout) | 5 s ([`DEFAULT_SETTINGS_TIMEOUT`]) | an HTTP/2 server sends `SETTINGS` at once; silence means it is not one |
pub struct Http2Manager<B = Full<Bytes>> {
    transport: Transport,
    http2_keep_alive_interval: Option<Duration>,
    http2_keep_alive_timeout: Duration,
    http2_keep_alive_while_idle: bool,
    settings_timeout: Duration,
    body: PhantomData<fn() -> B>,
}

impl<B> Clone for Http2Manager<B> {
    fn clone(&self) -> Self {
        Self {
            transport: self.transport.clone(),
            http2_keep_alive_interval: self.http2_keep_alive_interval,
            http2_keep_alive_timeout: self.http2_keep_alive_timeout,
            http2_keep_alive_while_idle: self.http2_keep_alive_while_idle,
            settings_timeout: self.settings_timeout,
            body: PhantomData,
        }
    }
}

impl<B> fmt::Debug for Http2Manager<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http2Manager")
            .field("tcp", self.tcp())
            .field("http2_keep_alive_interval", &self.http2_keep_alive_interval)
            .field("http2_keep_alive_timeout", &self.http2_keep_alive_timeout)
            .field(
                "http2_keep_alive_while_idle",
                &self.http2_keep_alive_while_idle,
            )
            .field("settings_timeout", &self.settings_timeout)
            .field("tls", &self.is_tls())
            .finish()
    }
}

impl Http2Manager<Full<Bytes>> {
    /// A manager with the defaults (see the table), for requests with
    /// [`Full<Bytes>`] bodies; [`with_body`](Http2Manager::with_body) picks
    /// another body type.
    pub fn new() -> Self {
        Self {
            transport: Transport::default(),
            http2_keep_alive_interval: Some(DEFAULT_KEEP_ALIVE_INTERVAL),
            http2_keep_alive_timeout: DEFAULT_KEEP_ALIVE_TIMEOUT,
            http2_keep_alive_while_idle: true,
            settings_timeout: DEFAULT_SETTINGS_TIMEOUT,
            body: PhantomData,
        }
    }
}

impl Default for Http2Manager<Full<Bytes>> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B> Http2Manager<B> {
    /// The same manager for requests with bodies of type `C`.
    pub fn with_body<C>(self) -> Http2Manager<C> {
        Http2Manager {
            transport: self.transport,
            http2_keep_alive_interval: self.http2_keep_alive_interval,
            http2_keep_alive_timeout: self.http2_keep_alive_timeout,
            http2_keep_alive_while_idle: self.http2_keep_alive_while_idle,
            settings_timeout: self.settings_timeout,
            body: PhantomData,
        }
    }

    /// HTTP/2 over TLS (ALPN `h2`) with `tls`'s roots and certificates, for
    /// `https` origins and origins without a scheme ([`Origin`]): the
    /// server's certificate must name the destination's host, and a server
    /// that does not choose `h2` fails the dial ([`HttpError::Alpn`]).
    /// Without it, an `https` origin is refused ([`HttpError::NoTls`]).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.transport.set_tls(tls, &[b"h2"]);
        self
    }

    /// Whether connections to origins without a scheme are made over TLS
    /// (a TLS configuration is set).
    pub fn is_tls(&self) -> bool {
        self.transport.is_tls()
    }

    /// The TCP dialer: its socket options (`TCP_NODELAY`, kernel keepalive)
    /// apply to every connection. Its ping and `unread_data_is_broken`
    /// setting are not used.
    pub fn with_tcp(mut self, tcp: TcpManager) -> Self {
        self.transport.set_tcp(tcp);
        self
    }

    /// Interval of hyper's keepalive PINGs (sent after this long without
    /// traffic from the server); `None` turns them off. Default 30 s.
    pub fn http2_keep_alive_interval(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.http2_keep_alive_interval = interval.into();
        self
    }

    /// How long a keepalive PING waits for its ACK before hyper closes the
    /// connection. Default 10 s.
    pub fn http2_keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.http2_keep_alive_timeout = timeout;
        self
    }

    /// Whether keepalive PINGs are also sent while no request is in flight
    /// (a connection idle in the pool). Default on.
    pub fn http2_keep_alive_while_idle(mut self, on: bool) -> Self {
        self.http2_keep_alive_while_idle = on;
        self
    }

    /// How long a dial waits for the server's first `SETTINGS` frame.
    /// Default 5 s (the pool's `connect_timeout` bounds the whole dial too).
    pub fn settings_timeout(mut self, timeout: Duration) -> Self {
        self.settings_timeout = timeout;
        self
    }

    /// The TCP dialer.
    pub fn tcp(&self) -> &TcpManager {
        self.transport.tcp()
    }
}

impl<B> Http2Manager<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    /// The HTTP/2 handshake over `io` (a TCP stream, or TLS that chose
    /// `h2`), then the wait for the server's first `SETTINGS`.
    pub(crate) async fn setup<T>(
        &self,
        io: T,
        scheme: Scheme,
        origin: &Origin,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Result<Http2Conn<B>, HttpError>
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let watcher = FrameWatcher::new(io);
        let frames = watcher.state();

        let mut builder = H2Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .keep_alive_interval(self.http2_keep_alive_interval)
            .keep_alive_timeout(self.http2_keep_alive_timeout)
            .keep_alive_while_idle(self.http2_keep_alive_while_idle);
        let (send, driver) = builder
            .handshake(TokioIo::new(watcher))
            .await
            .map_err(HttpError::Handshake)?;
        let origin_name = origin.to_string();
        let driver = tokio::spawn(async move {
            if let Err(e) = driver.await {
                tracing::debug!(origin = %origin_name, error = %e, "HTTP/2 connection ended");
            }
        });
        if let Err(why) = await_settings(&frames, self.settings_timeout).await {
            driver.abort();
            return Err(match why {
                SettingsWait::Closed => HttpError::ClosedBeforeSettings,
                SettingsWait::TimedOut => HttpError::NoSettings {
                    waited: self.settings_timeout,
                },
            });
        }
        if let Some(DeadOnArrival { goaway, debug_data }) =
            dead_on_arrival(&frames, send.is_closed())
        {
            driver.abort();
            return Err(HttpError::ClosedDuringSetup { goaway, debug_data });
        }
        Ok(Http2Conn {
            send,
            frames,
            scheme,
            authority: origin.destination().to_string().parse().ok(),
            local,
            peer,
        })
    }
}

#[async_trait]
impl<B> Manager for Http2Manager<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Key = Origin;
    type Connection = Http2Conn<B>;
    type Error = HttpError;

    /// The key's `Display` form (`https://host:port`, or `host:port`).
    fn key_name(&self, key: &Origin) -> String {
        key.to_string()
    }

    async fn connect(&self, origin: &Origin) -> Result<Http2Conn<B>, HttpError> {
        let dialed = self
            .transport
            .dial_origin(origin)
            .await
            .map_err(|e| HttpError::dial(e, origin, "h2"))?;
        let scheme = if self.transport.is_tls_for(origin) {
            if dialed.alpn.as_deref() != Some("h2") {
                return Err(HttpError::Alpn {
                    offered: "h2",
                    chose: dialed.alpn,
                });
            }
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let (local, peer) = (dialed.local, dialed.peer);
        self.setup(dialed.stream, scheme, origin, local, peer).await
    }

    /// No round trip (hyper exposes no PING): fails if the connection is
    /// closed or draining, else waits until it can take a request.
    async fn ping(&self, conn: &mut Http2Conn<B>) -> Result<(), HttpError> {
        if conn.is_closed() {
            return Err(HttpError::Closed {
                goaway: conn.frames.goaway_error_code(),
            });
        }
        conn.send.ready().await.map_err(HttpError::NotReady)
    }

    fn is_broken(&self, conn: &mut Http2Conn<B>) -> bool {
        conn.is_closed()
    }

    fn lending(&self, conn: &Http2Conn<B>) -> Lending<Http2Conn<B>> {
        lend_by_stream_limit(&conn.frames)
    }
}
