//! [`HttpManager`]: dials HTTP/1.1 or HTTP/2 connections (plaintext, or
//! over TLS where ALPN picks the version) and lends each as its version
//! allows.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::Full;

use super::conn::HttpConn;
use super::h1;
use super::h2::{self, Http2Conn, Http2Settings};
use crate::HttpError;
use crate::Origin;
use crate::h2_frames::lend_by_stream_limit;
use crate::service::RequestBody;
use connpool_core::{Health, Lending, Liveness, Manager};
use connpool_tcp::TcpManager;
#[cfg(feature = "tls")]
use connpool_tcp::tls::TlsConfig;
use connpool_tcp::transport::Transport;

/// Default [`settings_timeout`](HttpManager::settings_timeout): 5 s for the
/// server's first `SETTINGS` frame, which an HTTP/2 server sends at once.
pub const HTTP2_SETTINGS_TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP versions a manager speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Versions {
    /// HTTP/1.1 only (ALPN `http/1.1`; a TLS server without ALPN is fine).
    Http1,
    /// HTTP/2 only: h2c with prior knowledge in plaintext, ALPN `h2` over
    /// TLS.
    Http2,
    /// Over TLS, as the server chooses in ALPN (`h2` first, then
    /// `http/1.1`); HTTP/1.1 in plaintext.
    Both,
}

impl Versions {
    /// What ALPN offers, as the errors name it.
    fn offered(self) -> &'static str {
        match self {
            Versions::Http1 => "http/1.1",
            Versions::Http2 => "h2",
            Versions::Both => "h2 and http/1.1",
        }
    }

    #[cfg(feature = "tls")]
    fn alpn(self) -> &'static [&'static [u8]] {
        match self {
            Versions::Http1 => &[b"http/1.1"],
            Versions::Http2 => &[b"h2"],
            Versions::Both => &[b"h2", b"http/1.1"],
        }
    }
}

/// Makes HTTP client connections for a keyed [`Pool`](connpool_core::Pool),
/// keyed by [`Origin`]; request bodies of type `B`. An HTTP/1.1 connection
/// is lent exclusively (one request at a time), an HTTP/2 one shared, up
/// to the server's stream limit. Pair it with
/// [`HttpService`](crate::service::HttpService) for a client. See the
/// [module docs](super).
///
/// | constructor | plaintext | over TLS |
/// |---|---|---|
/// | [`new`](HttpManager::new) | HTTP/1.1 | the server's choice in ALPN: `h2`, or `http/1.1` (no ALPN: HTTP/1.1) |
/// | [`http1`](HttpManager::http1) | HTTP/1.1 | HTTP/1.1 (ALPN `http/1.1`, or none) |
/// | [`http2`](HttpManager::http2) | HTTP/2 with prior knowledge (h2c) | HTTP/2 (ALPN `h2`; a server that does not choose it fails the dial) |
///
/// | setting | default | why |
/// |---|---|---|
/// | [`tls`](HttpManager::tls) | off: plaintext, `https` origins refused | `https` needs the caller's roots (or [`TlsConfig::webpki_roots`](connpool_tcp::tls::TlsConfig::webpki_roots)) |
/// | [`with_tcp`](HttpManager::with_tcp) | [`TcpManager::new`]: `TCP_NODELAY`, kernel keepalive 60 s / 10 s / 3 | a request goes out at once; a vanished server is found even with HTTP/2 keepalive off |
/// | HTTP/2 PING | the pool's `keepalive_interval` (30 s) of silence sends one, its `ping_timeout` (5 s) waits for the ACK | one liveness schedule, set on the pool's builder: hyper's PING is the only probe HTTP/2 has here (the pool's keepalive only reads its verdict); a dead server is found within 35 s, 2.6× sooner than kernel keepalive's 90 s; a server whose ACK takes over 5 s costs its connection and a redial (hyper-util's own PING timeout is 20 s, off unless set) |
/// | [`http2_keep_alive_while_idle`](HttpManager::http2_keep_alive_while_idle) | on | idle pooled HTTP/2 connections are probed by these PINGs too (turn off, or raise the pool's interval to ≥ 5 min, against gRPC servers) |
/// | [`settings_timeout`](HttpManager::settings_timeout) | 5 s ([`HTTP2_SETTINGS_TIMEOUT`]) | an HTTP/2 server sends `SETTINGS` at once; silence means it is not one |
pub struct HttpManager<B = Full<Bytes>> {
    versions: Versions,
    transport: Transport,
    http2: Http2Settings,
    body: PhantomData<fn() -> B>,
}

impl<B> Clone for HttpManager<B> {
    fn clone(&self) -> Self {
        Self {
            versions: self.versions,
            transport: self.transport.clone(),
            http2: self.http2,
            body: PhantomData,
        }
    }
}

impl<B> fmt::Debug for HttpManager<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpManager")
            .field("versions", &self.versions.offered())
            .field("tcp", self.tcp())
            .field("tls", &self.is_tls())
            .field("http2", &self.http2)
            .finish()
    }
}

impl HttpManager<Full<Bytes>> {
    /// A manager for both versions (see the tables), for requests with
    /// [`Full<Bytes>`] bodies; [`with_body`](HttpManager::with_body) picks
    /// another body type.
    pub fn new() -> Self {
        Self::speaking(Versions::Both)
    }

    /// A manager that speaks HTTP/1.1 only.
    pub fn http1() -> Self {
        Self::speaking(Versions::Http1)
    }

    /// A manager that speaks HTTP/2 only: with prior knowledge in
    /// plaintext (h2c), ALPN `h2` over TLS.
    pub fn http2() -> Self {
        Self::speaking(Versions::Http2)
    }

    fn speaking(versions: Versions) -> Self {
        let liveness = Liveness::default();
        Self {
            versions,
            transport: Transport::default(),
            http2: Http2Settings {
                keep_alive_interval: liveness.keepalive_interval(),
                keep_alive_timeout: liveness.ping_timeout(),
                keep_alive_while_idle: true,
                settings_timeout: HTTP2_SETTINGS_TIMEOUT,
            },
            body: PhantomData,
        }
    }
}

impl Default for HttpManager<Full<Bytes>> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B> HttpManager<B> {
    /// The same manager for requests with bodies of type `C`.
    pub fn with_body<C>(self) -> HttpManager<C> {
        HttpManager {
            versions: self.versions,
            transport: self.transport,
            http2: self.http2,
            body: PhantomData,
        }
    }

    /// Over TLS with `tls`'s roots and certificates, for `https` origins
    /// and origins without a scheme ([`Origin`]): the server's certificate
    /// must name the destination's host, and ALPN offers the manager's
    /// versions (see the table). Without it, an `https` origin is refused
    /// ([`HttpError::NoTls`]).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.transport.set_tls(tls, self.versions.alpn());
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

    /// The TCP dialer.
    pub fn tcp(&self) -> &TcpManager {
        self.transport.tcp()
    }

    /// hyper's PING interval, for the gRPC manager (whose PINGs follow the
    /// servers' policy, not the pool's keepalive); `None`: no PING.
    #[cfg(feature = "grpc")]
    pub(crate) fn http2_keep_alive_interval(mut self, interval: Option<Duration>) -> Self {
        self.http2.keep_alive_interval = interval;
        self
    }

    /// How long hyper's PING waits for its ACK, for the gRPC manager.
    #[cfg(feature = "grpc")]
    pub(crate) fn http2_keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.http2.keep_alive_timeout = timeout;
        self
    }

    /// Whether keepalive PINGs are also sent while no request is in flight
    /// (a connection idle in the pool). Default on.
    pub fn http2_keep_alive_while_idle(mut self, on: bool) -> Self {
        self.http2.keep_alive_while_idle = on;
        self
    }

    /// How long an HTTP/2 dial waits for the server's first `SETTINGS`
    /// frame. Default 5 s (the pool's `connect_timeout` bounds the whole
    /// dial too).
    pub fn settings_timeout(mut self, timeout: Duration) -> Self {
        self.http2.settings_timeout = timeout;
        self
    }
}

impl<B: RequestBody> HttpManager<B> {
    /// An HTTP/2 connection to `origin`, whatever the manager's versions
    /// (the gRPC manager's dial).
    pub(crate) async fn connect_http2(&self, origin: &Origin) -> Result<Http2Conn<B>, HttpError> {
        let dialed = origin
            .dial(&self.transport)
            .await
            .map_err(|e| HttpError::dial(e, origin, "h2"))?;
        let scheme = match origin.over_tls(&self.transport) {
            true if dialed.alpn.as_deref() != Some("h2") => {
                return Err(HttpError::Alpn {
                    offered: "h2",
                    chose: dialed.alpn,
                });
            }
            true => Scheme::HTTPS,
            false => Scheme::HTTP,
        };
        let (local, peer) = (dialed.local, dialed.peer);
        h2::setup(&self.http2, dialed.stream, scheme, origin, local, peer).await
    }
}

#[async_trait]
impl<B: RequestBody> Manager for HttpManager<B> {
    type Key = Origin;
    type Connection = HttpConn<B>;
    type Error = HttpError;

    /// The key's `Display` form (`https://host:port`, or `host:port`).
    fn key_name(&self, key: &Origin) -> String {
        key.to_string()
    }

    async fn connect(&self, origin: &Origin) -> Result<HttpConn<B>, HttpError> {
        if self.versions == Versions::Http2 {
            return self.connect_http2(origin).await.map(HttpConn::from);
        }
        let offered = self.versions.offered();
        let dialed = origin
            .dial(&self.transport)
            .await
            .map_err(|e| HttpError::dial(e, origin, offered))?;
        let tls = origin.over_tls(&self.transport);
        let http2 = match dialed.alpn.as_deref() {
            Some("h2") if self.versions == Versions::Both => true,
            None | Some("http/1.1") => false,
            Some(_) => {
                return Err(HttpError::Alpn {
                    offered,
                    chose: dialed.alpn,
                });
            }
        };
        let (local, peer) = (dialed.local, dialed.peer);
        if http2 {
            let conn = h2::setup(
                &self.http2,
                dialed.stream,
                Scheme::HTTPS,
                origin,
                local,
                peer,
            );
            return conn.await.map(HttpConn::from);
        }
        let conn = h1::handshake(dialed.stream, origin, local, peer, tls).await;
        conn.map(HttpConn::from)
    }

    /// Takes the pool's keepalive schedule for hyper's HTTP/2 PING:
    /// `keepalive_interval` of silence sends one, `ping_timeout` waits for
    /// its ACK.
    fn liveness(&mut self, liveness: &Liveness) {
        self.http2.keep_alive_interval = liveness.keepalive_interval();
        self.http2.keep_alive_timeout = liveness.ping_timeout();
    }

    /// No round trip (an idle HTTP/1.1 connection has no ping, and hyper
    /// exposes no HTTP/2 PING): reads the verdict of hyper's PING (fails
    /// if the connection cannot take another request), else waits until
    /// it can.
    async fn ping(&self, conn: &mut HttpConn<B>) -> Result<(), HttpError> {
        conn.ready().await
    }

    fn health(&self, conn: &mut HttpConn<B>) -> Health {
        if conn.is_reusable() {
            Health::Ready
        } else if conn.ended_by_server() {
            Health::ClosedByServer
        } else {
            Health::Broken
        }
    }

    fn lending(&self, conn: &HttpConn<B>) -> Lending<HttpConn<B>> {
        match conn.frame_state() {
            Some(frames) => lend_by_stream_limit(frames),
            None => Lending::exclusive(),
        }
    }

    /// Ends the connection: an HTTP/2 connection closes even where a clone
    /// of a checked-out handle is still held (its requests then fail).
    async fn close(&self, conn: HttpConn<B>) {
        conn.end();
    }
}
