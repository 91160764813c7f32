//! The guard is its connection's I/O: a [`Pooled`] whose connection is
//! [`AsyncRead`] / [`AsyncWrite`] (a TCP or TLS stream) is one too, and one
//! whose connection is a [`Stream`] / [`Sink`] (a WebSocket) is one too,
//! for every manager, the user's own included. So a checked-out
//! connection can be handed to generic code (`tokio::io::copy`, codecs,
//! `StreamExt::next`) without detaching it from the pool.
//!
//! Each call goes to the connection the guard dereferences to: one path
//! for the bytes, whether the user holds the guard or the connection, and
//! nothing buffered here that could stay behind when the guard goes back.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::guard::Pooled;
use crate::manager::Manager;

/// The connection the guard dereferences to, pinned (it is `Unpin`).
fn conn<'g, M>(guard: Pin<&'g mut Pooled<'_, M>>) -> Pin<&'g mut M::Connection>
where
    M: Manager,
    M::Connection: Unpin,
{
    Pin::new(&mut **guard.get_mut())
}

impl<M> AsyncRead for Pooled<'_, M>
where
    M: Manager,
    M::Connection: AsyncRead + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        conn(self).poll_read(cx, buf)
    }
}

impl<M> AsyncWrite for Pooled<'_, M>
where
    M: Manager,
    M::Connection: AsyncWrite + Unpin,
{
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
        <M::Connection as AsyncWrite>::is_write_vectored(self)
    }
}

impl<M> Stream for Pooled<'_, M>
where
    M: Manager,
    M::Connection: Stream + Unpin,
{
    type Item = <M::Connection as Stream>::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        conn(self).poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        <M::Connection as Stream>::size_hint(self)
    }
}

impl<M, T> Sink<T> for Pooled<'_, M>
where
    M: Manager,
    M::Connection: Sink<T> + Unpin,
{
    type Error = <M::Connection as Sink<T>>::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        conn(self).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        conn(self).start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        conn(self).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        conn(self).poll_close(cx)
    }
}
