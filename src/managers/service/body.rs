//! [`PooledBody`]: a response body that holds its connection's place in the
//! pool until it ends.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::{HttpConnection, HttpManager, InFlight};
use crate::Pooled;

/// The body of a response from [`Http2Service`](super::Http2Service): hyper's
/// body, plus the pooled handle its request borrowed. The handle goes back
/// to the pool when the body ends (its last frame, or an error) or is
/// dropped, so the stream's slot on the connection is counted exactly as
/// long as the stream is open.
pub struct PooledBody<M: HttpManager> {
    body: Incoming,
    conn: Option<(Pooled<'static, M>, InFlight)>,
}

impl<M: HttpManager> PooledBody<M> {
    pub(super) fn new(body: Incoming, conn: Pooled<'_, M>, call: InFlight) -> Self {
        let conn = (!body.is_end_stream()).then(|| (Pooled::into_owned(conn), call));
        Self { body, conn }
    }

    /// Whether the body still holds its connection's place (it has not
    /// ended).
    pub fn holds_connection(&self) -> bool {
        self.conn.is_some()
    }
}

impl<M: HttpManager> Body for PooledBody<M> {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        let (ended, clean) = match &frame {
            Poll::Ready(None) => (true, true),
            Poll::Ready(Some(Err(_))) => (true, false),
            Poll::Ready(Some(Ok(_))) => (this.body.is_end_stream(), true),
            Poll::Pending => (false, false),
        };
        if ended {
            // Read to its end: an HTTP/1.1 connection may carry the next
            // request (one dropped before, or failed, is not reused).
            if clean && let Some((conn, _)) = &mut this.conn {
                conn.body_finished();
            }
            // A connection-level failure shows on the connection itself,
            // which the pool checks (`is_broken`) when the handle returns.
            this.conn = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<M: HttpManager> fmt::Debug for PooledBody<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBody")
            .field("body", &self.body)
            .field("holds_connection", &self.conn.is_some())
            .finish()
    }
}
