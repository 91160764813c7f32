//! The one dial of every manager that speaks over TCP (HTTP/1.1, HTTP/2,
//! gRPC, WebSocket, Redis, TLS): a TCP connection with the
//! [`TcpManager`]'s socket setup (`TCP_NODELAY`, kernel keepalive,
//! `TCP_USER_TIMEOUT`), then TLS when the destination asks for it,
//! offering the manager's ALPN protocols.
//!
//! The `tls` feature decides only whether TLS can be configured: without
//! it, no [`TlsConfig`] exists, a destination that asks for TLS is refused
//! before any byte is sent ([`DialError::NoTls`]), and everything else is
//! the same code.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::{Destination, TcpManager};

#[cfg(feature = "tls")]
pub use crate::tls::TlsConfig;
#[cfg(feature = "tls")]
type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// Without the `tls` feature no TLS configuration can exist: the dial's
/// TLS branch is never taken, and needs no second version.
#[cfg(not(feature = "tls"))]
#[derive(Clone, Debug)]
pub enum TlsConfig {}

#[cfg(not(feature = "tls"))]
impl TlsConfig {
    fn with_alpn(&self, _: &[&[u8]]) -> Self {
        match *self {}
    }
}

/// The stream a dial made: TCP, or TLS over it.
#[derive(Debug)]
pub enum Stream {
    /// Plaintext.
    Plain(TcpStream),
    /// Inside TLS (boxed: the TLS state is large).
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Stream {
    /// The TCP stream beneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    /// The protocol the server chose in ALPN, as text (`None` in
    /// plaintext, or when it chose none).
    pub fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }

    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match self {
            Stream::Plain(_) => None,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_ref().1.alpn_protocol(),
        }
    }

    fn alpn(&self) -> Option<String> {
        self.alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned())
    }
}

/// The stream, pinned (both kinds are `Unpin`).
fn io(stream: Pin<&mut Stream>) -> Pin<&mut (dyn Io + '_)> {
    match stream.get_mut() {
        Stream::Plain(s) => Pin::new(s as &mut dyn Io),
        #[cfg(feature = "tls")]
        Stream::Tls(s) => Pin::new(s.as_mut() as &mut dyn Io),
    }
}

/// Either stream kind's I/O.
trait Io: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        io(self).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        io(self).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        io(self).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        io(self).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        io(self).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp().is_write_vectored()
    }
}

/// What a dial made: the stream, its two ends, and (over TLS) the protocol
/// the server chose in ALPN.
#[derive(Debug)]
pub struct Dialed {
    pub stream: Stream,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// `None` in plaintext, or when the server chose no protocol.
    pub alpn: Option<String>,
}

/// Why a dial failed: each manager names it in its own error.
#[derive(Debug)]
pub enum DialError {
    /// Connecting (or reading the socket's local address).
    Tcp(io::Error),
    /// The TLS handshake; `Unsupported`: the server accepted none of the
    /// offered ALPN protocols.
    Tls(io::Error),
    /// TLS was asked for and the manager has no TLS configuration:
    /// nothing was dialed.
    NoTls,
}

impl DialError {
    /// Whether the server accepted none of the offered ALPN protocols.
    pub fn refused_alpn(&self) -> bool {
        matches!(self, DialError::Tls(e) if e.kind() == io::ErrorKind::Unsupported)
    }

    /// The I/O error, whichever step failed (managers name
    /// [`DialError::NoTls`] in an error of their own first).
    pub fn into_io(self) -> io::Error {
        match self {
            DialError::Tcp(e) | DialError::Tls(e) => e,
            DialError::NoTls => io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS asked for, and no TLS configuration (connpool's `tls` feature)",
            ),
        }
    }
}

/// How a manager reaches its server: the TCP dialer, and TLS if set.
#[derive(Clone, Debug, Default)]
pub struct Transport {
    tcp: TcpManager,
    tls: Option<TlsConfig>,
}

impl Transport {
    /// The TCP dialer.
    pub fn tcp(&self) -> &TcpManager {
        &self.tcp
    }

    /// Dials with `tcp` from now on.
    pub fn set_tcp(&mut self, tcp: TcpManager) {
        self.tcp = tcp;
    }

    /// Dials over TLS with `tls`, offering `alpn` (`&[]`: as `tls` says).
    pub fn set_tls(&mut self, tls: TlsConfig, alpn: &[&[u8]]) {
        self.tls = Some(if alpn.is_empty() {
            tls
        } else {
            tls.with_alpn(alpn)
        });
    }

    /// Dials over TLS with Mozilla's roots (webpki-roots, read once),
    /// offering `alpn`. `false` without the `tls` feature (nothing set).
    pub fn set_default_tls(&mut self, alpn: &[&[u8]]) -> bool {
        #[cfg(feature = "tls")]
        self.set_tls(default_tls().clone(), alpn);
        let _ = alpn;
        self.tls.is_some()
    }

    /// Whether TLS is configured.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A connection to `dest`: TCP, then, if `tls`, the TLS handshake (the
    /// server's certificate must name its host). TLS asked for without a
    /// TLS configuration is refused before any byte is sent.
    pub async fn dial(&self, dest: &Destination, tls: bool) -> Result<Dialed, DialError> {
        let config = match (&self.tls, tls) {
            (Some(config), true) => Some(config),
            (None, true) => return Err(DialError::NoTls),
            (_, false) => None,
        };
        let (tcp, peer) = self.tcp.dial(dest).await.map_err(DialError::Tcp)?;
        let local = tcp.local_addr().map_err(DialError::Tcp)?;
        let stream = secure(tcp, config, dest).await.map_err(DialError::Tls)?;
        Ok(Dialed {
            alpn: stream.alpn(),
            stream,
            local,
            peer,
        })
    }
}

/// `tcp` over TLS with `config` (the handshake with `dest`), or as it is
/// without one: the TLS half of every manager's dial.
pub async fn secure(
    tcp: TcpStream,
    config: Option<&TlsConfig>,
    dest: &Destination,
) -> io::Result<Stream> {
    match config {
        None => Ok(Stream::Plain(tcp)),
        #[cfg(feature = "tls")]
        Some(config) => Ok(Stream::Tls(Box::new(config.handshake(tcp, dest).await?))),
        #[cfg(not(feature = "tls"))]
        Some(config) => {
            let _ = dest;
            match *config {}
        }
    }
}

/// Mozilla's roots, made once (reading them costs a few milliseconds).
#[cfg(feature = "tls")]
fn default_tls() -> &'static TlsConfig {
    static TLS: std::sync::OnceLock<TlsConfig> = std::sync::OnceLock::new();
    TLS.get_or_init(TlsConfig::webpki_roots)
}
