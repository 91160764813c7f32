//! [`HttpBody`]: a response body that tells its connection when it was
//! read to its end, and holds its call's place in the pool until then.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Sleep;

use super::h1::{SharedState, finish};
use crate::HttpError;

/// What a response body of a call through the pool holds until it ends:
/// the call's place on its connection (the pooled handle, the service's
/// count of calls in flight), given back when it is dropped.
pub(crate) trait Lease: Send {
    /// The body was read to its end: an HTTP/1.1 connection may carry the
    /// next request.
    fn finished(&mut self);

    /// The call's deadline passed while the body was read.
    fn timed_out(&mut self) {}
}

/// The body of a response: hyper's body, which tells an HTTP/1.1
/// connection when it was read to its end (only then can the connection
/// carry another request).
///
/// From [`HttpService`](crate::service::HttpService), it also holds the
/// pooled handle its request borrowed, given back to the pool when the body
/// ends (its last frame, or an error) or is dropped, so the stream's slot
/// on the connection is counted exactly as long as the stream is open. The
/// call's deadline, if it has one, holds for the body too: past it, the
/// body fails with [`HttpError::TimedOut`] and gives its connection back
/// unfinished (an HTTP/1.1 connection is then closed, not reused).
pub struct HttpBody {
    body: Incoming,
    /// The HTTP/1.1 connection's state, until the body ends (`None` on
    /// HTTP/2, whose streams end on their own, and through the service,
    /// whose lease tells the connection).
    state: Option<SharedState>,
    /// The call's place in the pool, while the body holds it. (In a mutex
    /// only so that the body is `Sync` as hyper's is: it is reached through
    /// `&mut self`, never locked.)
    lease: Option<Mutex<Box<dyn Lease>>>,
    /// The call's deadline and its length, while the body holds its
    /// connection.
    deadline: Option<(Pin<Box<Sleep>>, Duration)>,
    /// The deadline passed: the body says so once, then ends.
    expired: bool,
}

impl HttpBody {
    /// `state`: the HTTP/1.1 connection's, told when the body ends.
    pub(super) fn new(body: Incoming, state: Option<SharedState>) -> Self {
        let state = state.filter(|_| !body.is_end_stream());
        Self {
            body,
            state,
            lease: None,
            deadline: None,
            expired: false,
        }
    }

    /// A body holding `lease` until it ends, and failing at `deadline`.
    pub(crate) fn leased(
        body: Incoming,
        lease: Box<dyn Lease>,
        deadline: Option<(tokio::time::Instant, Duration)>,
    ) -> Self {
        // (A body empty at once was seen by the connection with the
        // response head.)
        let open = !body.is_end_stream();
        let deadline = deadline
            .filter(|_| open)
            .map(|(at, after)| (Box::pin(tokio::time::sleep_until(at)), after));
        Self {
            body,
            state: None,
            lease: open.then(|| Mutex::new(lease)),
            deadline,
            expired: false,
        }
    }

    /// The whole body, read to its end (which gives its connection back).
    pub async fn bytes(self) -> Result<Bytes, HttpError> {
        Ok(self.collect().await?.to_bytes())
    }

    /// The whole body as text, read to its end; bytes that are not UTF-8
    /// become `U+FFFD` (as reqwest's `text`).
    pub async fn text(self) -> Result<String, HttpError> {
        let bytes = self.bytes().await?;
        Ok(match String::from_utf8(bytes.into()) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// The whole body, read to its end, as JSON for `T`
    /// ([`HttpError::Json`] says where it did not fit).
    #[cfg(feature = "json")]
    #[cfg_attr(docsrs, doc(cfg(feature = "json")))]
    pub async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.bytes().await?).map_err(HttpError::Json)
    }

    /// Whether the body still holds its connection's place in the pool (a
    /// response from [`HttpService`](crate::service::HttpService) whose
    /// body has not ended).
    pub fn holds_connection(&self) -> bool {
        self.lease.is_some()
    }
}

impl Body for HttpBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        if let Some((sleep, after)) = &mut this.deadline
            && sleep.as_mut().poll(cx).is_ready()
        {
            let after = *after;
            if let Some(lease) = &mut this.lease {
                lease
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner)
                    .timed_out();
            }
            // Given back unfinished: not reused if HTTP/1.1.
            this.lease = None;
            this.deadline = None;
            this.expired = true;
            return Poll::Ready(Some(Err(HttpError::TimedOut { after })));
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
            // request. One dropped before, or failed, is not reused (a
            // connection-level failure shows on the connection itself,
            // which the pool checks when the handle returns).
            if clean {
                if let Some(state) = this.state.take() {
                    finish(&state);
                }
                if let Some(lease) = &mut this.lease {
                    lease
                        .get_mut()
                        .unwrap_or_else(PoisonError::into_inner)
                        .finished();
                }
            }
            this.state = None;
            this.lease = None;
            this.deadline = None;
        }
        frame.map_err(HttpError::Request)
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl fmt::Debug for HttpBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpBody")
            .field("body", &self.body)
            .field("holds_connection", &self.lease.is_some())
            .finish()
    }
}
