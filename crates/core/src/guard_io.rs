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

/// Poll methods that pass their call to the connection the guard
/// dereferences to, pinned (it is `Unpin`).
macro_rules! forward {
    ($($poll:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {$(
        fn $poll(self: Pin<&mut Self>, cx: &mut Context<'_>, $($arg: $ty),*) -> Poll<$out> {
            Pin::new(&mut **self.get_mut()).$poll(cx, $($arg),*)
        }
    )*};
}

impl<M: Manager> AsyncRead for Pooled<'_, M>
where
    M::Connection: AsyncRead + Unpin,
{
    forward!(poll_read(buf: &mut ReadBuf<'_>) -> io::Result<()>;);
}

impl<M: Manager> AsyncWrite for Pooled<'_, M>
where
    M::Connection: AsyncWrite + Unpin,
{
    forward! {
        poll_write(buf: &[u8]) -> io::Result<usize>;
        poll_flush() -> io::Result<()>;
        poll_shutdown() -> io::Result<()>;
        poll_write_vectored(bufs: &[io::IoSlice<'_>]) -> io::Result<usize>;
    }

    fn is_write_vectored(&self) -> bool {
        <M::Connection as AsyncWrite>::is_write_vectored(self)
    }
}

impl<M: Manager> Stream for Pooled<'_, M>
where
    M::Connection: Stream + Unpin,
{
    type Item = <M::Connection as Stream>::Item;

    forward!(poll_next() -> Option<Self::Item>;);

    fn size_hint(&self) -> (usize, Option<usize>) {
        <M::Connection as Stream>::size_hint(self)
    }
}

impl<M: Manager, T> Sink<T> for Pooled<'_, M>
where
    M::Connection: Sink<T> + Unpin,
{
    type Error = <M::Connection as Sink<T>>::Error;

    forward! {
        poll_ready() -> Result<(), Self::Error>;
        poll_flush() -> Result<(), Self::Error>;
        poll_close() -> Result<(), Self::Error>;
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        Pin::new(&mut **self.get_mut()).start_send(item)
    }
}
