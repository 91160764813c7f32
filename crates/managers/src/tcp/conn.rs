//! The pooled connection: [`TcpConn`], a stream and what says whether it may
//! be reused.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A pooled TCP connection: a [`TcpStream`] (it dereferences to it, and is
/// itself [`AsyncRead`] + [`AsyncWrite`]) plus what the manager needs to
/// know whether it may be reused.
#[derive(Debug)]
pub struct TcpConn {
    pub(super) stream: TcpStream,
    peer: SocketAddr,
    /// A ping started and has not finished: its reply may still arrive.
    pub(super) ping_in_flight: bool,
}

/// What a non-blocking peek says about the peer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PeerState {
    /// Connected, nothing to read.
    Quiet,
    /// Bytes are waiting to be read.
    Unread,
    /// The peer closed (end of stream) or the connection failed (reset,
    /// keepalive timeout…).
    Gone,
}

impl TcpConn {
    /// Wraps a connected stream.
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        let peer = stream.peer_addr()?;
        Ok(Self {
            stream,
            peer,
            ping_in_flight: false,
        })
    }

    /// The stream.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The stream, mutably.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The stream, for good.
    pub fn into_inner(self) -> TcpStream {
        self.stream
    }

    /// The address the connection was made to (the one that answered, when
    /// the destination resolved to several).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether a ping was abandoned mid-exchange (dropped or failed): the
    /// stream may still hold its reply and is unusable.
    pub fn ping_abandoned(&self) -> bool {
        self.ping_in_flight
    }

    /// A one-byte `MSG_PEEK` on the non-blocking socket: consumes nothing,
    /// never waits.
    pub(super) fn peer_state(&self) -> PeerState {
        peer_state(&self.stream)
    }
}

/// A one-byte `MSG_PEEK` on a non-blocking socket: consumes nothing, never
/// waits.
pub(crate) fn peer_state(stream: &TcpStream) -> PeerState {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    let sock = SockRef::from(stream);
    loop {
        return match sock.peek(&mut byte) {
            Ok(0) => PeerState::Gone,
            Ok(_) => PeerState::Unread,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => PeerState::Quiet,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => PeerState::Gone,
        };
    }
}

impl Deref for TcpConn {
    type Target = TcpStream;

    fn deref(&self) -> &TcpStream {
        &self.stream
    }
}

impl DerefMut for TcpConn {
    fn deref_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

impl AsyncRead for TcpConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
