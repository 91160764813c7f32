//! [`TlsManager`]: pooled TLS connections over TCP, for any protocol that
//! runs over TLS.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::TlsConfig;
use crate::tcp::{Destination, IoWatch, PeerState, TcpManager, peer_state};
use crate::transport::{DialError, Transport};
use connpool_core::Manager;

/// Makes TLS connections over TCP for a keyed [`Pool`](connpool_core::Pool): the
/// [`TcpManager`]'s dial and socket setup (`TCP_NODELAY`, kernel
/// keepalive), then a TLS handshake with SNI from the destination's host,
/// the certificate verified against [`TlsConfig`]'s roots, and the ALPN
/// protocols you give (none by default).
///
/// `is_broken` peeks at the socket beneath TLS without consuming: a peer
/// that closed or reset is broken, and so is a socket with an error
/// pending (the kernel's keepalive gave up on a silent peer). Unlike plain
/// TCP, bytes waiting on an idle connection are not: a TLS 1.3 server
/// sends session tickets after the handshake, which arrive unasked.
///
/// ```no_run
/// use connpool::Pool;
/// use connpool::managers::tcp::{Destination, TcpManager};
/// use connpool::managers::tls::{TlsConfig, TlsManager};
/// use tokio::io::AsyncWriteExt;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = TlsManager::new(TcpManager::new(), TlsConfig::webpki_roots());
/// let pool = Pool::builder(manager).max_open_per_key(8).build().await?;
/// let mut conn = pool.get_for(&Destination::from("redis.example:6380")).await?;
/// conn.write_all(b"PING\r\n").await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TlsManager {
    /// TCP, and always TLS.
    transport: Transport,
}

impl TlsManager {
    /// Dials with `tcp`'s socket setup (its ping is not used), then TLS
    /// with `tls`.
    pub fn new(tcp: TcpManager, tls: TlsConfig) -> Self {
        let mut transport = Transport::default();
        transport.set_tcp(tcp);
        transport.set_tls(tls, &[]);
        Self { transport }
    }

    /// Offers `protocols` in ALPN (for example `[b"redis"]`).
    pub fn alpn(mut self, protocols: &[&[u8]]) -> Self {
        if let Some(tls) = self.transport.tls().cloned() {
            self.transport.set_tls(tls, protocols);
        }
        self
    }
}

/// A pooled TLS connection ([`AsyncRead`] + [`AsyncWrite`], and so is its
/// pool guard).
///
/// Its own reads and writes are watched as a
/// [`TcpConn`](crate::tcp::TcpConn)'s are: given back while a read waited
/// for data (a reply given up on) or a write waited to go out, or after
/// one failed, it is broken, never lent again. Reads and writes through
/// [`stream_mut`](Self::stream_mut) are not watched.
pub struct TlsConn {
    stream: TlsStream<TcpStream>,
    peer: SocketAddr,
    io: IoWatch,
}

impl TlsConn {
    /// The TLS stream.
    pub fn stream_mut(&mut self) -> &mut TlsStream<TcpStream> {
        &mut self.stream
    }

    /// The protocol the server chose in ALPN.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.stream.get_ref().1.alpn_protocol()
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

impl fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConn")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Manager for TlsManager {
    type Key = Destination;
    type Connection = TlsConn;
    type Error = io::Error;

    /// The key's `Display` form (`host:port`).
    fn key_name(&self, key: &Destination) -> String {
        key.to_string()
    }

    async fn connect(&self, dest: &Destination) -> io::Result<TlsConn> {
        let (stream, peer) = self
            .transport
            .dial_tls(dest)
            .await
            .map_err(DialError::into_io)?;
        Ok(TlsConn {
            stream,
            peer,
            io: IoWatch::default(),
        })
    }

    /// Gone (closed, reset), given back mid-exchange (a read or a write
    /// left waiting), or after a read or a write failed (a reset peer's
    /// unread bytes, such as session tickets, would hide it from a peek).
    fn is_broken(&self, conn: &mut TlsConn) -> bool {
        conn.io.read_waiting
            || conn.io.write_waiting
            || conn.io.failed
            || peer_state(conn.stream.get_ref().0) == PeerState::Gone
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let conn = self.get_mut();
        conn.io.poll_read(&mut conn.stream, cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let conn = self.get_mut();
        conn.io
            .poll_write(&mut conn.stream, cx, &[io::IoSlice::new(buf)])
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let conn = self.get_mut();
        conn.io.poll_flush(&mut conn.stream, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
