//! [`HttpConn`]: an HTTP/1.1 connection or a handle to an HTTP/2 one, as
//! the manager and the server chose.

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Version};
use http_body_util::Full;
use hyper::body::Incoming;

use super::HttpBody;
use super::h1::{self, Fixed, Http1Conn};
use super::h2::Http2Conn;
use crate::HttpError;
use crate::h2_frames::FrameState;
use crate::service::{HttpConnection, RequestBody, Unsent};

/// A pooled HTTP connection of [`HttpManager`](super::HttpManager):
/// HTTP/1.1 (lent exclusively: one request at a time, each response read
/// to its end before the next) or a handle to an HTTP/2 connection (lent
/// shared; cheap to clone, each borrower holds its own), as the manager
/// and the server chose.
pub struct HttpConn<B = Full<Bytes>> {
    version: Inner<B>,
}

enum Inner<B> {
    Http1(Http1Conn<B>),
    Http2(Http2Conn<B>),
    /// What a clone of an HTTP/1.1 connection is: nothing (an HTTP/1.1
    /// connection carries one request at a time, so the pool never shares
    /// one, and never clones it). Fails every request; keeps the
    /// connection's addresses.
    Unshared(Arc<Fixed>),
}

impl<B> From<Http1Conn<B>> for HttpConn<B> {
    fn from(conn: Http1Conn<B>) -> Self {
        Self {
            version: Inner::Http1(conn),
        }
    }
}

impl<B> From<Http2Conn<B>> for HttpConn<B> {
    fn from(conn: Http2Conn<B>) -> Self {
        Self {
            version: Inner::Http2(conn),
        }
    }
}

/// HTTP/2 handles are cloned for each borrower; an HTTP/1.1 connection is
/// never shared, so the pool never clones one.
impl<B> Clone for HttpConn<B> {
    fn clone(&self) -> Self {
        let version = match &self.version {
            Inner::Http2(h2) => Inner::Http2(h2.clone()),
            Inner::Http1(c) => Inner::Unshared(Arc::clone(c.fixed())),
            Inner::Unshared(fixed) => Inner::Unshared(Arc::clone(fixed)),
        };
        Self { version }
    }
}

impl<B> fmt::Debug for HttpConn<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Inner::Http1(c) => c.fmt(f),
            Inner::Http2(c) => c.fmt(f),
            Inner::Unshared(fixed) => f
                .debug_struct("HttpConn")
                .field("local", &fixed.local)
                .field("peer", &fixed.peer)
                .field("unshared", &true)
                .finish(),
        }
    }
}

impl<B> HttpConn<B> {
    /// The HTTP version: [`Version::HTTP_11`] or [`Version::HTTP_2`].
    pub fn version(&self) -> Version {
        match self.version {
            Inner::Http2(_) => Version::HTTP_2,
            _ => Version::HTTP_11,
        }
    }

    /// Whether the connection can carry another request: not closed, and
    /// nothing either side said against it. HTTP/1.1: the last response
    /// read to its end, no `Connection: close` in a request or a response,
    /// no HTTP/1.0 exchange without keep-alive, `Keep-Alive: max` not used
    /// up, its `Keep-Alive: timeout` not passed, no failed exchange.
    /// HTTP/2: no `GOAWAY` from the server, its socket not ended, and not
    /// three calls in a row through
    /// [`HttpService`](crate::service::HttpService) without a response by
    /// their deadline (the server, or the network to it, is silent). The
    /// pool asks on every return and checkout, and closes a connection
    /// that cannot.
    pub fn is_reusable(&self) -> bool {
        match &self.version {
            Inner::Http1(c) => c.is_reusable(),
            Inner::Http2(c) => !c.is_closed(),
            Inner::Unshared(_) => false,
        }
    }

    /// Whether the server ended the connection in the normal course, not
    /// broken: HTTP/1.1, its last response (read to its end) was the last
    /// or its `Keep-Alive: timeout` passed; HTTP/2, a `GOAWAY` without
    /// error (`NO_ERROR`) closed it.
    pub fn ended_by_server(&self) -> bool {
        match &self.version {
            Inner::Http1(c) => c.ended_by_server(),
            Inner::Http2(_) => self.goaway_error_code() == Some(0),
            Inner::Unshared(_) => false,
        }
    }

    /// Whether the server said it takes no new request on this connection
    /// (requests in flight finish): HTTP/2 `GOAWAY`; HTTP/1.1
    /// `Connection: close`, an HTTP/1.0 response, `Keep-Alive: max` used
    /// up (or the last request said `Connection: close`, or one failed).
    pub fn is_draining(&self) -> bool {
        match &self.version {
            Inner::Http1(c) => c.is_retiring(),
            Inner::Http2(c) => c.is_draining(),
            Inner::Unshared(_) => true,
        }
    }

    /// HTTP/2: the error code of the server's last `GOAWAY`, if one arrived
    /// (0: `NO_ERROR`, a graceful shutdown; 0xb: `ENHANCE_YOUR_CALM`, which
    /// gRPC servers send as `too_many_pings`). HTTP/1.1: `None`.
    pub fn goaway_error_code(&self) -> Option<u32> {
        self.frame_state().and_then(FrameState::goaway_error_code)
    }

    /// HTTP/2: the server's `SETTINGS_MAX_CONCURRENT_STREAMS`, from its
    /// latest `SETTINGS` frame that set it (`None`: no limit set).
    /// HTTP/1.1: `Some(1)`, one request at a time.
    pub fn peer_max_concurrent_streams(&self) -> Option<u32> {
        match self.frame_state() {
            Some(frames) => frames.peer_max_concurrent_streams(),
            None => Some(1),
        }
    }

    /// HTTP/1.1: how long the connection stays reusable after a response,
    /// from the server's `Keep-Alive: timeout=N` (shortened: see the
    /// [module docs](super)). HTTP/2: `None`.
    pub fn keep_alive_idle_limit(&self) -> Option<Duration> {
        match &self.version {
            Inner::Http1(c) => c.keep_alive_idle_limit(),
            _ => None,
        }
    }

    /// HTTP/1.1: requests the server still takes on this connection, from
    /// its `Keep-Alive: max=M`. HTTP/2: `None`.
    pub fn keep_alive_remaining(&self) -> Option<u32> {
        match &self.version {
            Inner::Http1(c) => c.keep_alive_remaining(),
            _ => None,
        }
    }

    /// Whether the connection is over TLS.
    pub fn is_tls(&self) -> bool {
        match &self.version {
            Inner::Http1(c) => c.fixed().tls,
            Inner::Http2(c) => c.is_tls(),
            Inner::Unshared(fixed) => fixed.tls,
        }
    }

    /// The connection's local address (tells connections apart).
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs().0
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.addrs().1
    }

    fn addrs(&self) -> (SocketAddr, SocketAddr) {
        match &self.version {
            Inner::Http1(c) => (c.fixed().local, c.fixed().peer),
            Inner::Http2(c) => (c.local_addr(), c.peer_addr()),
            Inner::Unshared(fixed) => (fixed.local, fixed.peer),
        }
    }

    /// The key an HTTP/2 connection was dialed for.
    #[cfg(feature = "grpc")]
    pub(crate) fn origin(&self) -> Option<&crate::Origin> {
        match &self.version {
            Inner::Http2(c) => Some(c.origin()),
            _ => None,
        }
    }

    /// Ends an HTTP/2 connection for every handle (the pool's close: a
    /// clone a borrower kept does not hold it open); an HTTP/1.1 connection
    /// ends when dropped.
    pub(crate) fn end(&self) {
        if let Inner::Http2(c) = &self.version {
            c.end();
        }
    }

    /// What the frame watcher learned about an HTTP/2 connection.
    pub(crate) fn frame_state(&self) -> Option<&FrameState> {
        match &self.version {
            Inner::Http2(c) => Some(c.frame_state()),
            _ => None,
        }
    }
}

impl<B: RequestBody> HttpConn<B> {
    /// Sends `request` and returns the response. A request whose URI has
    /// no authority (just a path) gets the connection's destination; over
    /// HTTP/1.1 an absolute URI is sent in origin form (its path), its
    /// authority as `Host`.
    ///
    /// Over HTTP/1.1 the response body must be read to its end before the
    /// connection carries another request (a connection given back with
    /// its body unread, or dropped half-read, is closed, not reused), and
    /// dropping the returned future closes the connection (HTTP/1 cannot
    /// abandon one request and keep its connection). Over HTTP/2 dropping
    /// it cancels the request (the stream is reset; the connection stays
    /// usable).
    ///
    /// Here a request that meets a connection the server had closed fails;
    /// through [`HttpService`](crate::service::HttpService) it is sent
    /// again where that is safe (see the [module docs](super)).
    pub async fn send_request(&mut self, request: Request<B>) -> hyper::Result<Response<HttpBody>> {
        match &mut self.version {
            Inner::Http1(c) => {
                let state = c.state();
                let response = c.exchange(request).await.map_err(|f| f.error)?;
                Ok(response.map(|body| HttpBody::new(body, Some(state))))
            }
            Inner::Http2(c) => {
                let response = c.send_request(request).await?;
                Ok(response.map(|body| HttpBody::new(body, None)))
            }
            Inner::Unshared(_) => refuse(request)
                .await
                .map(|r| r.map(|b| HttpBody::new(b, None))),
        }
    }

    /// Fails if the connection cannot take another request, else waits
    /// until it can (the manager's ping: no round trip).
    pub(crate) async fn ready(&mut self) -> Result<(), HttpError> {
        match &mut self.version {
            Inner::Http1(c) => c.ready().await,
            Inner::Http2(c) => c.ready().await,
            Inner::Unshared(_) => Err(HttpError::NotReusable),
        }
    }
}

/// A request on a clone of an HTTP/1.1 connection fails as one on a closed
/// connection does (hyper's "canceled" error; hyper makes its errors only
/// itself, so it comes from a connection that is gone before it began).
async fn refuse<B: RequestBody>(request: Request<B>) -> hyper::Result<Response<Incoming>> {
    let (io, _) = tokio::io::duplex(1);
    let (mut send, driver) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await?;
    drop(driver);
    send.send_request(request).await
}

impl<B: RequestBody> HttpConnection for HttpConn<B> {
    type Body = B;

    async fn send(&mut self, request: Request<B>) -> hyper::Result<Response<Incoming>> {
        match &mut self.version {
            Inner::Http1(c) => c.exchange(request).await.map_err(|f| f.error),
            Inner::Http2(c) => c.send_request(request).await,
            Inner::Unshared(_) => refuse(request).await,
        }
    }

    async fn try_send(&mut self, request: Request<B>) -> Result<Response<Incoming>, Unsent<B>> {
        match &mut self.version {
            Inner::Http1(c) => c.exchange(request).await.map_err(|f| (f.error, f.unsent)),
            Inner::Http2(c) => c.try_send(request).await,
            Inner::Unshared(_) => refuse(request).await.map_err(|e| (e, None)),
        }
    }

    fn is_closed(&self) -> bool {
        !self.is_reusable()
    }

    fn body_finished(&mut self) {
        if let Inner::Http1(c) = &self.version {
            c.body_finished();
        }
    }

    fn note_unanswered(&self) {
        if let Some(frames) = self.frame_state() {
            frames.note_unanswered();
        }
    }

    fn note_answered(&self) {
        if let Some(frames) = self.frame_state() {
            frames.note_answered();
        }
    }
}

/// The future of a request sent through [`HttpConn`]'s `tower::Service`.
type ResponseFuture = Pin<Box<dyn Future<Output = hyper::Result<Response<HttpBody>>> + Send>>;

/// A checked-out connection is a [`tower::Service`], as hyper's
/// `SendRequest` is: a transport to build a client on (a tonic client
/// takes it as it is: `HealthClient::new(conn.clone())` on a shared
/// HTTP/2 connection). It does not reconnect: a request on a closed
/// connection fails. HTTP/1.1: `poll_ready` waits until the previous
/// response was read to its end.
///
/// A clone kept past the guard's drop still works (the connection lives
/// while any handle does), but the pool no longer counts that request
/// against the connection's stream limit, and a connection closed by the
/// pool ends it; to have every request counted, call through
/// [`HttpService`](crate::service::HttpService) over the pool instead.
impl<B: RequestBody> tower::Service<Request<B>> for HttpConn<B> {
    type Response = Response<HttpBody>;
    type Error = hyper::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<hyper::Result<()>> {
        match &mut self.version {
            Inner::Http1(c) => c.poll_ready(cx),
            Inner::Http2(c) => c.send_request_handle().poll_ready(cx),
            // The call fails instead.
            Inner::Unshared(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        match &mut self.version {
            Inner::Http1(c) => {
                let state = c.state();
                let sent = c.start(request);
                Box::pin(async move {
                    let response = h1::end(&state, sent.await).map_err(|f| f.error)?;
                    Ok(response.map(|body| HttpBody::new(body, Some(state))))
                })
            }
            Inner::Http2(c) => {
                let sent = c.send_request(request);
                Box::pin(async move { Ok(sent.await?.map(|body| HttpBody::new(body, None))) })
            }
            Inner::Unshared(_) => Box::pin(async move {
                let response = refuse(request).await?;
                Ok(response.map(|body| HttpBody::new(body, None)))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use connpool_core::Pooled;

    use super::*;
    use crate::HttpManager;

    /// The pool's guard moves with the connection in it on every checkout
    /// and return: at 128 bytes or less a move is a few stores, above it a
    /// `memcpy` call. What a connection never changes stays behind an `Arc`.
    #[test]
    fn a_lent_connection_is_small_to_move() {
        assert_eq!(size_of::<HttpConn>(), 40);
        assert!(size_of::<Pooled<'static, HttpManager>>() <= 128);
    }
}
