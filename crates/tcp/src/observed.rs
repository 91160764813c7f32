//! [`Observed`]: a stream whose every read, write and flush an
//! [`Observer`] sees, bytes unchanged. The one I/O wrapper of the
//! connections that watch their bytes: the TCP connection (a read or
//! write left waiting), Redis (the end of its socket), PostgreSQL (the
//! session's state, from the protocol's messages) and HTTP/2 (the peer's
//! frame headers).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What an [`Observer`] is shown. Each observer reads the fields it
/// needs: with some managers' features off, a field may have no reader.
#[allow(dead_code)]
pub enum Event<'a> {
    /// A read brought `bytes`; `eof`: none, though it had room (the end
    /// of the stream).
    Read { bytes: &'a [u8], eof: bool },
    /// A write took the first `n` bytes of `bufs`.
    Wrote { bufs: &'a [IoSlice<'a>], n: usize },
    /// A flush ended.
    Flushed,
    /// A read (`read`) or a write or flush is left waiting (`Pending`).
    Waiting { read: bool },
    /// A read, write, flush or shutdown failed.
    Failed(&'a io::Error),
}

/// Sees what goes through an [`Observed`] stream.
pub trait Observer {
    /// Called after every poll of the stream that is not a shutdown's
    /// success.
    fn see(&mut self, event: Event<'_>);
}

/// `io`, its reads and writes shown to `observer` (see the module docs).
#[derive(Debug)]
pub struct Observed<S, O> {
    pub io: S,
    pub observer: O,
}

impl<S, O> Observed<S, O> {
    pub fn new(io: S, observer: O) -> Self {
        Self { io, observer }
    }
}

impl<S: AsyncRead + Unpin, O: Observer + Unpin> AsyncRead for Observed<S, O> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) => {
                let bytes = &buf.filled()[before..];
                let eof = room && bytes.is_empty();
                this.observer.see(Event::Read { bytes, eof });
            }
            Poll::Ready(Err(e)) => this.observer.see(Event::Failed(e)),
            Poll::Pending => this.observer.see(Event::Waiting { read: true }),
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin, O: Observer + Unpin> AsyncWrite for Observed<S, O> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.observer.see(match &polled {
            Poll::Ready(Ok(n)) => Event::Wrote { bufs, n: *n },
            Poll::Ready(Err(e)) => Event::Failed(e),
            Poll::Pending => Event::Waiting { read: false },
        });
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.observer.see(match &polled {
            Poll::Ready(Ok(())) => Event::Flushed,
            Poll::Ready(Err(e)) => Event::Failed(e),
            Poll::Pending => Event::Waiting { read: false },
        });
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_shutdown(cx);
        if let Poll::Ready(Err(e)) = &polled {
            this.observer.see(Event::Failed(e));
        }
        polled
    }
}

impl Event<'_> {
    /// The bytes a write took, in order (for an observer that reads what
    /// was sent).
    pub fn written<'b>(bufs: &'b [IoSlice<'_>], mut n: usize) -> impl Iterator<Item = &'b [u8]> {
        bufs.iter().map_while(move |b| {
            if n == 0 {
                return None;
            }
            let take = n.min(b.len());
            n -= take;
            Some(&b[..take])
        })
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Writes down what it sees.
    #[derive(Default)]
    struct Notes(Vec<String>);

    impl Observer for Notes {
        fn see(&mut self, event: Event<'_>) {
            self.0.push(match event {
                Event::Read { bytes, eof } => format!("read {bytes:?} eof {eof}"),
                Event::Wrote { bufs, n } => {
                    let bytes: Vec<u8> = Event::written(bufs, n).flatten().copied().collect();
                    format!("wrote {bytes:?}")
                }
                Event::Flushed => "flushed".into(),
                Event::Waiting { read } => format!("waiting read {read}"),
                Event::Failed(e) => format!("failed {e}"),
            });
        }
    }

    /// Bytes pass through unchanged; each read, write, flush, wait and end
    /// is seen, a write's bytes as far as it took them.
    #[tokio::test]
    async fn every_read_and_write_is_seen_bytes_unchanged() {
        let (near, far) = tokio::io::duplex(64);
        let mut io = Observed::new(near, Notes::default());
        let mut far = Observed::new(far, Notes::default());
        io.write_all(b"abcdef").await.unwrap();
        let mut got = [0u8; 6];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abcdef");
        io.flush().await.unwrap();
        assert_eq!(
            io.observer.0,
            ["wrote [97, 98, 99, 100, 101, 102]", "flushed"]
        );
        drop(io);
        assert_eq!(far.read(&mut got).await.unwrap(), 0);
        let seen = far.observer.0;
        assert_eq!(
            seen,
            [
                "read [97, 98, 99, 100, 101, 102] eof false",
                "read [] eof true"
            ]
        );
    }

    /// A write that waits (the pipe full) is seen waiting, then the part
    /// it took.
    #[tokio::test]
    async fn a_write_left_waiting_is_seen() {
        let (near, _far) = tokio::io::duplex(2);
        let mut io = Observed::new(near, Notes::default());
        let wrote =
            tokio::time::timeout(std::time::Duration::from_millis(50), io.write_all(b"abc"));
        assert!(wrote.await.is_err(), "the pipe holds 2 bytes");
        let seen = &io.observer.0;
        assert_eq!(seen.first().unwrap(), "wrote [97, 98]", "{seen:?}");
        assert_eq!(seen.last().unwrap(), "waiting read false", "{seen:?}");
    }
}
