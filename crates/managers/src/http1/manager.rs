//! [`Http1Manager`]: dials HTTP/1.1 connections (plaintext, or over TLS
//! with ALPN `http/1.1`) and lends them exclusively.

use std::error::Error as StdError;
use std::fmt;
use std::marker::PhantomData;

use async_trait::async_trait;
use bytes::Bytes;
use http_body::Body;
use http_body_util::Full;
use hyper::client::conn::http1::Builder as H1Builder;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::Http1Conn;
use crate::HttpError;
use crate::Origin;
use crate::tcp::TcpManager;
#[cfg(feature = "tls")]
use crate::tls::TlsConfig;
use crate::transport::Transport;
use connpool_core::Manager;

/// Makes HTTP/1.1 client connections for a keyed [`Pool`](connpool_core::Pool),
/// lent exclusively; request bodies of type `B`. See the
/// [module docs](super).
///
/// | setting | default | why |
/// |---|---|---|
/// | [`with_tcp`](Http1Manager::with_tcp) | [`TcpManager::new`]: `TCP_NODELAY`, kernel keepalive 60 s / 10 s / 3 | a request's head and body go out at once; a vanished server is found while the connection idles |
/// | [`tls`](Http1Manager::tls) | off (plaintext) | `https` needs the caller's roots (or [`TlsConfig::webpki_roots`](crate::tls::TlsConfig::webpki_roots)) |
pub struct Http1Manager<B = Full<Bytes>> {
    transport: Transport,
    body: PhantomData<fn() -> B>,
}

impl<B> Clone for Http1Manager<B> {
    fn clone(&self) -> Self {
        Self {
            transport: self.transport.clone(),
            body: PhantomData,
        }
    }
}

impl<B> fmt::Debug for Http1Manager<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http1Manager")
            .field("tcp", self.tcp())
            .field("tls", &self.is_tls())
            .finish()
    }
}

impl Http1Manager<Full<Bytes>> {
    /// A manager with the defaults (see the table), for requests with
    /// [`Full<Bytes>`] bodies; [`with_body`](Http1Manager::with_body) picks
    /// another body type.
    pub fn new() -> Self {
        Self {
            transport: Transport::default(),
            body: PhantomData,
        }
    }
}

impl Default for Http1Manager<Full<Bytes>> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B> Http1Manager<B> {
    /// The same manager for requests with bodies of type `C`.
    pub fn with_body<C>(self) -> Http1Manager<C> {
        Http1Manager {
            transport: self.transport,
            body: PhantomData,
        }
    }

    /// HTTP/1.1 over TLS (ALPN `http/1.1`) with `tls`'s roots and
    /// certificates, for `https` origins and origins without a scheme
    /// ([`Origin`]): the server's certificate must name the destination's
    /// host. A server without ALPN is taken at its word (HTTP/1.1 is what
    /// TLS without ALPN means). Without it, an `https` origin is refused.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.transport.set_tls(tls, &[b"http/1.1"]);
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
}

/// A request body hyper's HTTP/1.1 client can send.
pub(crate) trait H1Body:
    Body<Data: Send, Error: Into<Box<dyn StdError + Send + Sync>>> + Send + 'static
{
}

impl<B> H1Body for B where
    B: Body<Data: Send, Error: Into<Box<dyn StdError + Send + Sync>>> + Send + 'static
{
}

/// The HTTP/1.1 handshake over `io`, its connection driven by a task of its
/// own (which ends with the connection).
pub(crate) async fn handshake<B, T>(
    io: T,
    origin: &Origin,
    local: std::net::SocketAddr,
    peer: std::net::SocketAddr,
    tls: bool,
) -> Result<Http1Conn<B>, HttpError>
where
    B: H1Body,
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (send, driver) = H1Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(HttpError::Handshake)?;
    let origin_name = origin.to_string();
    tokio::spawn(async move {
        if let Err(e) = driver.await {
            tracing::debug!(origin = %origin_name, error = %e, "HTTP/1.1 connection ended");
        }
    });
    Ok(Http1Conn::new(
        send,
        origin.destination().to_string().parse().ok(),
        local,
        peer,
        tls,
    ))
}

/// The ping of an HTTP/1.1 connection (see [`Http1Manager`]'s).
pub(super) async fn ping<B>(conn: &mut Http1Conn<B>) -> Result<(), HttpError> {
    if !conn.is_reusable() {
        return Err(HttpError::NotReusable);
    }
    conn.send.ready().await.map_err(HttpError::NotReady)
}

#[async_trait]
impl<B> Manager for Http1Manager<B>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Key = Origin;
    type Connection = Http1Conn<B>;
    type Error = HttpError;

    /// The key's `Display` form (`https://host:port`, or `host:port`).
    fn key_name(&self, key: &Origin) -> String {
        key.to_string()
    }

    async fn connect(&self, origin: &Origin) -> Result<Http1Conn<B>, HttpError> {
        let dialed = self
            .transport
            .dial_origin(origin)
            .await
            .map_err(|e| HttpError::dial(e, origin, "http/1.1"))?;
        if let Some(alpn) = dialed.alpn.filter(|p| p != "http/1.1") {
            return Err(HttpError::Alpn {
                offered: "http/1.1",
                chose: Some(alpn),
            });
        }
        let tls = self.transport.is_tls_for(origin);
        handshake(dialed.stream, origin, dialed.local, dialed.peer, tls).await
    }

    /// No round trip: fails if the connection cannot carry another request
    /// ([`Http1Conn::is_reusable`]), else waits until hyper's connection
    /// takes a request. An idle HTTP/1.1 connection's driver keeps reading
    /// its socket, so a server's close (FIN or reset) is already seen here.
    async fn ping(&self, conn: &mut Http1Conn<B>) -> Result<(), HttpError> {
        ping(conn).await
    }

    fn is_broken(&self, conn: &mut Http1Conn<B>) -> bool {
        !conn.is_reusable()
    }
}
