//! The pooled connection: [`TcpConn`], a stream (plain or TLS) and what
//! says whether it may be reused.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::observed::{Event, Observed, Observer};
use crate::transport::Stream;

/// A pooled TCP connection, over TLS when its manager has a
/// [`tls`](super::TcpManager::tls) configuration: [`AsyncRead`] +
/// [`AsyncWrite`] (and so is its guard), plus what the manager needs to
/// know whether it may be reused.
///
/// Its reads and writes (and so its guard's) are watched: a borrower
/// that gives the connection back while a read was waiting for data (a
/// reply it stopped waiting for: a deadline, a cancelled task) or a write
/// was waiting to go out (half a message may be out), or after a read or
/// a write failed, leaves it broken, never lent again, so a late reply
/// reaches nobody. The socket beneath ([`stream`](Self::stream)) is
/// there for its options and addresses; bytes go through the connection
/// (over TLS they must).
#[derive(Debug)]
pub struct TcpConn {
    /// The stream, its reads and writes watched.
    pub(super) stream: Observed<Stream, IoWatch>,
    local: SocketAddr,
    peer: SocketAddr,
    /// A ping started and has not finished: its reply may still arrive.
    pub(super) ping_in_flight: bool,
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

impl Observer for IoWatch {
    fn see(&mut self, event: Event<'_>) {
        match event {
            Event::Read { .. } => self.read_waiting = false,
            Event::Wrote { .. } | Event::Flushed => self.write_waiting = false,
            Event::Waiting { read } => match read {
                true => self.read_waiting = true,
                false => self.write_waiting = true,
            },
            Event::Failed(_) => self.failed = true,
        }
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
    /// Wraps a connected stream (plain TCP).
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        Self::of(Stream::Plain(stream))
    }

    pub(super) fn of(stream: Stream) -> io::Result<Self> {
        let tcp = stream.tcp();
        let (local, peer) = (tcp.local_addr()?, tcp.peer_addr()?);
        Ok(Self {
            stream: Observed::new(stream, IoWatch::default()),
            local,
            peer,
            ping_in_flight: false,
        })
    }

    /// The TCP socket (beneath TLS, if the connection has it): for its
    /// options and addresses. Bytes go through the connection itself.
    pub fn stream(&self) -> &TcpStream {
        self.stream.io.tcp()
    }

    /// Whether the connection runs TLS.
    pub fn is_tls(&self) -> bool {
        self.stream.io.is_tls()
    }

    /// The protocol the server chose in ALPN (TLS only).
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.stream.io.alpn_protocol()
    }

    /// What the reads and writes left: waiting, or failed.
    pub(super) fn watch(&self) -> IoWatch {
        self.stream.observer
    }

    /// The address the connection was made to (the one that answered, when
    /// the destination resolved to several).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The connection's own address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Whether a ping was abandoned mid-exchange (dropped or failed): the
    /// stream may still hold its reply and is unusable.
    pub fn ping_abandoned(&self) -> bool {
        self.ping_in_flight
    }

    /// Over TLS, with bytes waiting on the socket: whether TLS makes
    /// anything of them for the application (a reply nobody asked for:
    /// one byte of it is read, and the connection is out of step anyway),
    /// or they were the server's close or an error; `false` when they were
    /// TLS's own records (session tickets), which this reads. Never waits,
    /// and leaves the reads' watch as it was.
    pub(super) fn tls_has_more(&mut self) -> bool {
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        !Pin::new(&mut self.stream.io)
            .poll_read(&mut cx, &mut buf)
            .is_pending()
    }

    /// A one-byte `MSG_PEEK` on the non-blocking socket: consumes nothing,
    /// never waits.
    pub(super) fn peer_state(&self) -> PeerState {
        peer_state(self.stream.io.tcp())
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

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
