//! [`HttpBody`]: a response body that tells its HTTP/1.1 connection when
//! it was read to its end.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::h1::{SharedState, finish};

/// The body of a response from [`HttpConn::send_request`](super::HttpConn::send_request): hyper's body,
/// which tells an HTTP/1.1 connection when it was read to its end (only
/// then can the connection carry another request).
pub struct HttpBody {
    body: Incoming,
    /// The HTTP/1.1 connection's state, until the body ends (`None` on
    /// HTTP/2, whose streams end on their own).
    state: Option<SharedState>,
}

impl HttpBody {
    /// `state`: the HTTP/1.1 connection's, told when the body ends.
    pub(super) fn new(body: Incoming, state: Option<SharedState>) -> Self {
        let state = state.filter(|_| !body.is_end_stream());
        Self { body, state }
    }

    /// hyper's body.
    pub fn into_inner(self) -> Incoming {
        self.body
    }
}

impl Body for HttpBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        let ended = match &frame {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => this.body.is_end_stream(),
            // An error leaves the connection busy: it is not reused.
            Poll::Ready(Some(Err(_))) => {
                this.state = None;
                false
            }
            Poll::Pending => false,
        };
        if ended && let Some(state) = this.state.take() {
            finish(&state);
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

impl fmt::Debug for HttpBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpBody")
            .field("body", &self.body)
            .finish()
    }
}
