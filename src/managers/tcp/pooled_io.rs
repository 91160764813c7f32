//! I/O straight through the pool's guard: a checked-out TCP connection,
//! [`Pooled<TcpManager<P>>`](crate::Pooled), is itself [`AsyncRead`] +
//! [`AsyncWrite`], so it can be handed to generic code (`tokio::io::copy`,
//! codecs, `&mut conn` where a reader or writer is asked for).
//!
//! Each call goes to the [`TcpConn`] the guard dereferences to, whose own
//! impls go to its [`TcpStream`](tokio::net::TcpStream): one path for the
//! bytes, whether the user holds the guard or the connection. Nothing is
//! buffered here, so no byte can stay behind in the guard when it goes back
//! to the pool. (No `AsyncBufRead`: neither the stream nor the connection
//! has a buffer to lend.)

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::conn::TcpConn;
use super::manager::TcpManager;
use super::ping::Ping;
use crate::Pooled;

/// The connection the guard dereferences to, pinned (both are `Unpin`).
fn conn<'g, P: Ping>(guard: Pin<&'g mut Pooled<'_, TcpManager<P>>>) -> Pin<&'g mut TcpConn> {
    Pin::new(&mut **guard.get_mut())
}

impl<P: Ping> AsyncRead for Pooled<'_, TcpManager<P>> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        conn(self).poll_read(cx, buf)
    }
}

impl<P: Ping> AsyncWrite for Pooled<'_, TcpManager<P>> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        conn(self).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        conn(self).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        conn(self).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        conn(self).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        <TcpConn as AsyncWrite>::is_write_vectored(self)
    }
}
