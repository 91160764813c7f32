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
///
/// Its own reads and writes (and so its guard's) are watched: a borrower
/// that gives the connection back while a read was waiting for data (a
/// reply it stopped waiting for: a deadline, a cancelled task) or a write
/// was waiting to go out (half a message may be out), or after a read or
/// a write failed, leaves it broken, never lent again, so a late reply
/// reaches nobody. Reads and writes
/// through the [`TcpStream`] itself (its `Deref`) are not watched: a
/// borrower that uses it and gives up mid-exchange should call
/// [`Pooled::mark_broken`](connpool_core::Pooled::mark_broken).
#[derive(Debug)]
pub struct TcpConn {
    pub(super) stream: TcpStream,
    peer: SocketAddr,
    /// A ping started and has not finished: its reply may still arrive.
    pub(super) ping_in_flight: bool,
    pub(super) io: IoWatch,
}

/// Whether a read or a write through a connection's own I/O was left
/// waiting (the last poll of that direction was `Pending`, and no poll
/// completed since: a connection given back so was given up on
/// mid-exchange), and whether one failed (the stream is not to be trusted
/// again, whatever a peek says later).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IoWatch {
    pub(crate) read_waiting: bool,
    pub(crate) write_waiting: bool,
    pub(crate) failed: bool,
}

impl IoWatch {
    /// Reads from `stream`, noting whether the read was left waiting.
    pub(crate) fn poll_read<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let poll = Pin::new(stream).poll_read(cx, buf);
        self.read_waiting = poll.is_pending();
        self.failed |= matches!(poll, Poll::Ready(Err(_)));
        poll
    }

    /// Writes to `stream` (`bufs` gathered), noting whether the write was
    /// left waiting.
    pub(crate) fn poll_write<S: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(stream).poll_write_vectored(cx, bufs);
        self.write_waiting = poll.is_pending();
        self.failed |= matches!(poll, Poll::Ready(Err(_)));
        poll
    }

    /// Flushes `stream`, noting whether the flush was left waiting.
    pub(crate) fn poll_flush<S: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let poll = Pin::new(stream).poll_flush(cx);
        self.write_waiting = poll.is_pending();
        self.failed |= matches!(poll, Poll::Ready(Err(_)));
        poll
    }
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
            io: IoWatch::default(),
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
/// waits. Bytes waiting hide the socket's error from a peek (the kernel
/// reports it once the queue is read), so then the pending error is asked
/// for too: a TLS connection with the server's unread session tickets,
/// whose kernel keepalive gave up on a silent peer, is gone.
pub(crate) fn peer_state(stream: &TcpStream) -> PeerState {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    let sock = SockRef::from(stream);
    loop {
        return match sock.peek(&mut byte) {
            Ok(0) => PeerState::Gone,
            Ok(_) => match sock.take_error() {
                Ok(None) => PeerState::Unread,
                Ok(Some(_)) | Err(_) => PeerState::Gone,
            },
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
        let conn = self.get_mut();
        conn.io.poll_read(&mut conn.stream, cx, buf)
    }
}

impl AsyncWrite for TcpConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let conn = self.get_mut();
        conn.io
            .poll_write(&mut conn.stream, cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let conn = self.get_mut();
        conn.io.poll_write(&mut conn.stream, cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let conn = self.get_mut();
        conn.io.poll_flush(&mut conn.stream, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
