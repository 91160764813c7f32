//! An HTTP/2 manager: pools hyper 1.x client connections
//! ([`SendRequest`]), keyed by [`Destination`], lent *shared*.
//!
//! An HTTP/2 connection carries many requests at once, up to the server's
//! `SETTINGS_MAX_CONCURRENT_STREAMS`. [`Http2Manager`] reads that limit from
//! the server's first `SETTINGS` frame (it waits for it before the dial
//! counts as done) and answers [`Manager::lending`] with
//! [`Lending::shared`]`(limit)` (no limit: `usize::MAX`, which the pool
//! clamps to its [`max_borrowers`](crate::Builder::max_borrowers), 100 by
//! default), so the pool puts up to that many borrowers on one connection
//! and dials another only when every connection of the key is full. Each
//! borrower holds its own [`Http2Conn`], a cheap clone.
//!
//! | [`Manager`] method | here |
//! |---|---|
//! | `connect` | a TCP dial with [`TcpManager`]'s socket setup (`TCP_NODELAY`, kernel keepalive), the HTTP/2 handshake, the connection driver spawned, then a wait (bounded by [`settings_timeout`](Http2Manager::settings_timeout)) for the server's first `SETTINGS`: a peer that sends none is not speaking HTTP/2, and the dial fails; a connection that is already draining (the server sent `GOAWAY` with its `SETTINGS`) or closed fails the dial too ([`Http2Error::ClosedDuringSetup`]) |
//! | `lending` | shared, up to the server's `MAX_CONCURRENT_STREAMS` |
//! | `is_broken` | the connection is closed ([`SendRequest::is_closed`]), or the server sent `GOAWAY` (it is *draining*: its in-flight requests finish, it takes no new ones), or the socket hit end of stream or an error |
//! | `ping` | no round trip: fails if `is_broken` would say so, then waits for [`SendRequest::ready`] (see below) |
//! | `close` | drops the handle; the connection ends once the last borrower's handle is gone |
//!
//! # Liveness: HTTP/2 PING, from hyper
//!
//! hyper does not let a client send a PING of its own, so
//! [`Manager::ping`] cannot do a round trip. Liveness comes from hyper's
//! keepalive instead: every [`keep_alive_interval`](Http2Manager::keep_alive_interval)
//! without traffic from the server, it sends a PING, and if no ACK arrives
//! within [`keep_alive_timeout`](Http2Manager::keep_alive_timeout) it closes
//! the connection, which `is_broken` (and so `ping`) then reports. With
//! [`keep_alive_while_idle`](Http2Manager::keep_alive_while_idle) on (the
//! default here) that also covers connections idle in the pool, so a
//! server that vanished without a FIN is found within interval + timeout.
//!
//! Against gRPC servers use the [`grpc`](super::grpc) manager, or mind their
//! PING policy: grpc-go and gRPC C-core servers answer a client that pings
//! more often than every 5 minutes, or at all without an active stream, with
//! `GOAWAY` `too_many_pings`.
//!
//! ```no_run
//! use bytes::Bytes;
//! use connpool::Pool;
//! use connpool::managers::http2::Http2Manager;
//! use connpool::managers::tcp::Destination;
//! use http_body_util::{BodyExt, Full};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::builder(Http2Manager::new())
//!     .max_open_per_key(4) // at most 4 connections, each shared by up to
//!     .max_borrowers(100) // min(100, the server's stream limit) requests
//!     .build()
//!     .await?;
//!
//! let api = Destination::from("127.0.0.1:8080");
//! let mut conn = pool.get_for(&api).await?;
//! println!("the server allows {:?} streams", conn.peer_max_concurrent_streams());
//! // A path alone is enough: scheme and authority come from the destination.
//! let request = http::Request::get("/health").body(Full::new(Bytes::new()))?;
//! let response = conn.send_request(request).await?;
//! let body = response.into_body().collect().await?.to_bytes();
//! println!("{body:?}");
//! # Ok(())
//! # }
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::uri::{Authority, Scheme, Uri};
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http2::{Builder as H2Builder, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::h2_frames::{
    DeadOnArrival, FrameState, FrameWatcher, SettingsWait, await_settings, dead_on_arrival,
    fmt_dead_on_arrival, lend_by_stream_limit,
};
use super::tcp::{Destination, TcpManager};
#[cfg(feature = "tls")]
use super::tls::{MaybeTls, TlsConfig, alpn_of};
use crate::manager::{Lending, Manager};

/// Default [`keep_alive_interval`](Http2Manager::keep_alive_interval): a
/// PING after 30 s without traffic from the server. Finds a silently dead
/// server within 40 s (with the timeout), three times faster than kernel
/// TCP keepalive's default 90 s, for one 17-byte frame each way per half
/// minute of silence; below common NAT and load-balancer idle limits (≥ 60 s).
pub const DEFAULT_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Default [`keep_alive_timeout`](Http2Manager::keep_alive_timeout): 10 s
/// for the PING's ACK. Generous next to any sane round trip, yet a dead
/// server is declared dead within interval + timeout = 40 s.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`settings_timeout`](Http2Manager::settings_timeout): 5 s for the
/// server's first `SETTINGS` frame, which an HTTP/2 server sends at once.
pub const DEFAULT_SETTINGS_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an HTTP/2 dial or ping failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Http2Error {
    /// The TCP dial failed (the destination is in the message).
    Connect(io::Error),
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

/// A pooled HTTP/2 connection (a handle to it: cheap to clone, each
/// borrower of a shared connection holds its own): hyper's [`SendRequest`]
/// plus what the server said about the connection.
pub struct Http2Conn<B = Full<Bytes>> {
    send: SendRequest<B>,
    frames: Arc<FrameState>,
    scheme: Scheme,
    authority: Option<Authority>,
    local: SocketAddr,
    peer: SocketAddr,
}

impl<B> Clone for Http2Conn<B> {
    fn clone(&self) -> Self {
        Self {
            send: self.send.clone(),
            frames: Arc::clone(&self.frames),
            scheme: self.scheme.clone(),
            authority: self.authority.clone(),
            local: self.local,
            peer: self.peer,
        }
    }
}

impl<B> fmt::Debug for Http2Conn<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http2Conn")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl<B: Body + 'static> Http2Conn<B> {
    /// Sends `request` on this connection. A request whose URI has no
    /// authority (just a path) gets the connection's scheme (`http`, or
    /// `https` over TLS) and the destination's `host:port`. Dropping the returned future cancels the request (the
    /// stream is reset; the connection stays usable).
    pub fn send_request(
        &mut self,
        mut request: Request<B>,
    ) -> impl Future<Output = hyper::Result<Response<Incoming>>> + use<B> {
        if request.uri().authority().is_none()
            && let Some(authority) = &self.authority
        {
            let mut parts = request.uri().clone().into_parts();
            parts.scheme = Some(self.scheme.clone());
            parts.authority = Some(authority.clone());
            if parts.path_and_query.is_none() {
                parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
            }
            if let Ok(uri) = Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
        self.send.send_request(request)
    }
}

impl<B: crate::managers::service::RequestBody> crate::managers::service::HttpConnection
    for Http2Conn<B>
{
    type Body = B;

    fn send(
        &mut self,
        request: Request<B>,
    ) -> impl Future<Output = hyper::Result<Response<Incoming>>> + Send + 'static {
        Http2Conn::send_request(self, request)
    }

    fn is_closed(&self) -> bool {
        Http2Conn::is_closed(self)
    }
}

impl<B> Http2Conn<B> {
    /// hyper's handle, for everything else it offers.
    pub fn send_request_handle(&mut self) -> &mut SendRequest<B> {
        &mut self.send
    }

    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS`, from its latest
    /// `SETTINGS` frame that set it; `None`: no limit set.
    pub fn peer_max_concurrent_streams(&self) -> Option<u32> {
        self.frames.peer_max_concurrent_streams()
    }

    /// Whether the server sent `GOAWAY`: requests in flight finish, new ones
    /// are refused; the pool lends this connection to no one new.
    pub fn is_draining(&self) -> bool {
        self.frames.goaway_received()
    }

    /// Whether no new request can go through this connection: closed,
    /// draining, or its socket ended.
    pub fn is_closed(&self) -> bool {
        self.send.is_closed() || self.frames.is_unusable()
    }

    /// What the frame watcher learned about the connection.
    pub fn frame_state(&self) -> &FrameState {
        &self.frames
    }

    /// The connection's local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

/// Makes HTTP/2 (h2c, prior knowledge) client connections for a keyed
/// [`Pool`](crate::Pool), lent shared; request bodies of type `B`. See the
/// [module docs](self).
///
/// | setting | default | why |
/// |---|---|---|
/// | [`with_tcp`](Http2Manager::with_tcp) | [`TcpManager::new`]: `TCP_NODELAY`, kernel keepalive 60 s / 10 s / 3 | small frames go out at once; a vanished peer is found even with HTTP/2 keepalive off |
/// | [`keep_alive_interval`](Http2Manager::keep_alive_interval) | 30 s ([`DEFAULT_KEEP_ALIVE_INTERVAL`]) | hyper's PING is the only liveness probe HTTP/2 has here; 30 s finds a dead server 3× sooner than kernel keepalive |
/// | [`keep_alive_timeout`](Http2Manager::keep_alive_timeout) | 10 s ([`DEFAULT_KEEP_ALIVE_TIMEOUT`]) | far above a round trip; dead within 40 s |
/// | [`keep_alive_while_idle`](Http2Manager::keep_alive_while_idle) | on | the manager's `ping` is no round trip, so idle pooled connections are only probed by these PINGs (turn off, or raise the interval to ≥ 5 min, against gRPC servers) |
/// | [`settings_timeout`](Http2Manager::settings_timeout) | 5 s ([`DEFAULT_SETTINGS_TIMEOUT`]) | an HTTP/2 server sends `SETTINGS` at once; silence means it is not one |
pub struct Http2Manager<B = Full<Bytes>> {
    tcp: TcpManager,
    keep_alive_interval: Option<Duration>,
    keep_alive_timeout: Duration,
    keep_alive_while_idle: bool,
    settings_timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<TlsConfig>,
    body: PhantomData<fn() -> B>,
}

impl<B> Clone for Http2Manager<B> {
    fn clone(&self) -> Self {
        Self {
            tcp: self.tcp.clone(),
            keep_alive_interval: self.keep_alive_interval,
            keep_alive_timeout: self.keep_alive_timeout,
            keep_alive_while_idle: self.keep_alive_while_idle,
            settings_timeout: self.settings_timeout,
            #[cfg(feature = "tls")]
            tls: self.tls.clone(),
            body: PhantomData,
        }
    }
}

impl<B> fmt::Debug for Http2Manager<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http2Manager")
            .field("tcp", &self.tcp)
            .field("keep_alive_interval", &self.keep_alive_interval)
            .field("keep_alive_timeout", &self.keep_alive_timeout)
            .field("keep_alive_while_idle", &self.keep_alive_while_idle)
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
            tcp: TcpManager::new(),
            keep_alive_interval: Some(DEFAULT_KEEP_ALIVE_INTERVAL),
            keep_alive_timeout: DEFAULT_KEEP_ALIVE_TIMEOUT,
            keep_alive_while_idle: true,
            settings_timeout: DEFAULT_SETTINGS_TIMEOUT,
            #[cfg(feature = "tls")]
            tls: None,
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
            tcp: self.tcp,
            keep_alive_interval: self.keep_alive_interval,
            keep_alive_timeout: self.keep_alive_timeout,
            keep_alive_while_idle: self.keep_alive_while_idle,
            settings_timeout: self.settings_timeout,
            #[cfg(feature = "tls")]
            tls: self.tls,
            body: PhantomData,
        }
    }

    /// HTTP/2 over TLS (`https`, ALPN `h2`) with `tls`'s roots and
    /// certificates: the server's certificate must name the destination's
    /// host, and a server that does not choose `h2` fails the dial
    /// ([`Http2Error::NoH2`]).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls.with_alpn(&[b"h2"]));
        self
    }

    /// Whether connections are made over TLS.
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// The TCP dialer: its socket options (`TCP_NODELAY`, kernel keepalive)
    /// apply to every connection. Its ping and `unread_data_is_broken`
    /// setting are not used.
    pub fn with_tcp(mut self, tcp: TcpManager) -> Self {
        self.tcp = tcp;
        self
    }

    /// Interval of hyper's keepalive PINGs (sent after this long without
    /// traffic from the server); `None` turns them off. Default 30 s.
    pub fn keep_alive_interval(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.keep_alive_interval = interval.into();
        self
    }

    /// How long a keepalive PING waits for its ACK before hyper closes the
    /// connection. Default 10 s.
    pub fn keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.keep_alive_timeout = timeout;
        self
    }

    /// Whether keepalive PINGs are also sent while no request is in flight
    /// (a connection idle in the pool). Default on.
    pub fn keep_alive_while_idle(mut self, on: bool) -> Self {
        self.keep_alive_while_idle = on;
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
        &self.tcp
    }
}

#[async_trait]
impl<B> Manager for Http2Manager<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Key = Destination;
    type Connection = Http2Conn<B>;
    type Error = Http2Error;

    async fn connect(&self, dest: &Destination) -> Result<Http2Conn<B>, Http2Error> {
        let tcp = self.tcp.connect(dest).await.map_err(Http2Error::Connect)?;
        let peer = tcp.peer();
        let local = tcp.local_addr().map_err(Http2Error::Connect)?;
        #[cfg(feature = "tls")]
        let (io, scheme) = match &self.tls {
            Some(tls) => {
                let stream = tls.handshake(tcp.into_inner(), dest).await.map_err(|e| {
                    if e.kind() == io::ErrorKind::Unsupported {
                        Http2Error::NoH2 { alpn: None }
                    } else {
                        Http2Error::Connect(e)
                    }
                })?;
                if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                    return Err(Http2Error::NoH2 {
                        alpn: alpn_of(&stream),
                    });
                }
                (MaybeTls::Tls(Box::new(stream)), Scheme::HTTPS)
            }
            None => (MaybeTls::Plain(tcp.into_inner()), Scheme::HTTP),
        };
        #[cfg(not(feature = "tls"))]
        let (io, scheme) = (tcp.into_inner(), Scheme::HTTP);
        let watcher = FrameWatcher::new(io);
        let frames = watcher.state();

        let mut builder = H2Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .keep_alive_interval(self.keep_alive_interval)
            .keep_alive_timeout(self.keep_alive_timeout)
            .keep_alive_while_idle(self.keep_alive_while_idle);
        let (send, driver) = builder
            .handshake(TokioIo::new(watcher))
            .await
            .map_err(Http2Error::Handshake)?;
        let dest_name = dest.to_string();
        let driver = tokio::spawn(async move {
            if let Err(e) = driver.await {
                tracing::debug!(destination = %dest_name, error = %e, "HTTP/2 connection ended");
            }
        });
        if let Err(why) = await_settings(&frames, self.settings_timeout).await {
            driver.abort();
            return Err(match why {
                SettingsWait::Closed => Http2Error::ClosedBeforeSettings,
                SettingsWait::TimedOut => Http2Error::NoSettings {
                    waited: self.settings_timeout,
                },
            });
        }
        if let Some(DeadOnArrival { goaway, debug_data }) =
            dead_on_arrival(&frames, send.is_closed())
        {
            driver.abort();
            return Err(Http2Error::ClosedDuringSetup { goaway, debug_data });
        }
        Ok(Http2Conn {
            send,
            frames,
            scheme,
            authority: dest.to_string().parse().ok(),
            local,
            peer,
        })
    }

    /// No round trip (hyper exposes no PING): fails if the connection is
    /// closed or draining, else waits until it can take a request.
    async fn ping(&self, conn: &mut Http2Conn<B>) -> Result<(), Http2Error> {
        if conn.is_closed() {
            return Err(Http2Error::Closed {
                goaway: conn.frames.goaway_error_code(),
            });
        }
        conn.send.ready().await.map_err(Http2Error::NotReady)
    }

    fn is_broken(&self, conn: &mut Http2Conn<B>) -> bool {
        conn.is_closed()
    }

    fn lending(&self, conn: &Http2Conn<B>) -> Lending<Http2Conn<B>> {
        lend_by_stream_limit(&conn.frames)
    }
}
