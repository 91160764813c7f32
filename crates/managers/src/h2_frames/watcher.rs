//! [`FrameWatcher`]: the IO wrapper that feeds what it reads to a [`Parser`].

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::parser::Parser;
use super::state::{DROPPED, EOF, FAILED, FrameState};

/// An IO wrapper that passes bytes through unchanged and parses the frame
/// headers of what it reads (the peer's side of an HTTP/2 connection) into a
/// shared [`FrameState`]. See the [module docs](super).
///
/// Reads that end the stream (0 bytes into a non-empty buffer) or fail, a
/// failed write, and dropping the watcher all mark the state closed.
pub struct FrameWatcher<T> {
    io: T,
    parser: Parser,
    state: Arc<FrameState>,
}

impl<T> FrameWatcher<T> {
    /// Watches `io` (a fresh connection: its first byte read must be the
    /// start of a frame, as the server's side of an HTTP/2 connection is).
    pub fn new(io: T) -> Self {
        Self {
            io,
            parser: Parser::default(),
            state: Arc::new(FrameState::new()),
        }
    }

    /// What the watcher learned, shared.
    pub fn state(&self) -> Arc<FrameState> {
        Arc::clone(&self.state)
    }
}

impl<T> fmt::Debug for FrameWatcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameWatcher")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<T> Drop for FrameWatcher<T> {
    fn drop(&mut self) {
        self.state.end(DROPPED);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FrameWatcher<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let asked = buf.remaining() > 0;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if new.is_empty() {
                    if asked {
                        this.state.end(EOF);
                    }
                } else {
                    this.parser.feed(new, &this.state);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                this.state.end(FAILED);
                Poll::Ready(Err(e))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> FrameWatcher<T> {
    fn check<R>(&self, r: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if let Poll::Ready(Err(_)) = &r {
            self.state.end(FAILED);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FrameWatcher<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.check(r)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_flush(cx);
        this.check(r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_shutdown(cx);
        this.check(r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.check(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
