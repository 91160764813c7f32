//! [`PooledBody`]: a response body that holds its connection's place in the
//! pool until it ends.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

use super::{HttpConnection, HttpManager, InFlight, ServiceError};
use connpool_core::Pooled;

/// The body of a response from [`HttpService`](super::HttpService): hyper's
/// body, plus the pooled handle its request borrowed. The handle goes back
/// to the pool when the body ends (its last frame, or an error) or is
/// dropped, so the stream's slot on the connection is counted exactly as
/// long as the stream is open.
///
/// The call's deadline, if it has one, holds for the body too: past it,
/// the body fails with [`ServiceError::TimedOut`] and gives its connection
/// back unfinished (an HTTP/1.1 connection is then closed, not reused).
pub struct PooledBody<M: HttpManager> {
    body: Incoming,
    conn: Option<(Pooled<'static, M>, InFlight)>,
    /// The call's deadline and its length, while the body holds its
    /// connection.
    deadline: Option<(Pin<Box<Sleep>>, Duration)>,
    /// The deadline passed: the body says so once, then ends.
    expired: bool,
}

impl<M: HttpManager> PooledBody<M> {
    pub(super) fn new(
        body: Incoming,
        conn: Pooled<'_, M>,
        call: InFlight,
        deadline: Option<(tokio::time::Instant, Duration)>,
    ) -> Self {
        let open = !body.is_end_stream();
        let conn = open.then(|| (Pooled::into_owned(conn), call));
        let deadline = deadline
            .filter(|_| open)
            .map(|(at, after)| (Box::pin(tokio::time::sleep_until(at)), after));
        Self {
            body,
            conn,
            deadline,
            expired: false,
        }
    }

    /// Whether the body still holds its connection's place (it has not
    /// ended).
    pub fn holds_connection(&self) -> bool {
        self.conn.is_some()
    }
}

impl<M: HttpManager> Body for PooledBody<M> {
    type Data = Bytes;
    type Error = ServiceError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        if let Some((sleep, after)) = &mut this.deadline
            && sleep.as_mut().poll(cx).is_ready()
        {
            let after = *after;
            // Given back unfinished: not reused if HTTP/1.1.
            this.conn = None;
            this.deadline = None;
            this.expired = true;
            return Poll::Ready(Some(Err(ServiceError::TimedOut { after })));
        }
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
            this.deadline = None;
        }
        frame.map_err(ServiceError::Request)
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.body.is_end_stream()
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
