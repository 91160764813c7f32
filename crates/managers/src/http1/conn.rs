//! [`Http1Conn`]: one pooled HTTP/1.1 connection, and what the server said
//! about its keep-alive; [`Http1Body`]: a response body that tells the
//! connection when it was read to its end.

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http::uri::{Authority, PathAndQuery, Uri};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::keepalive::{closes, verdict};

/// Where the connection's latest exchange is. Shared with the response
/// body, which is read after the borrower may have let go of the connection.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Ready for a request: the last response (if any) was read to its end
    /// at `since`.
    Idle { since: Instant },
    /// A request is in flight or its response body is not read to its end:
    /// the connection cannot carry the next request yet.
    Busy,
}

type SharedPhase = Arc<Mutex<Phase>>;

/// A request that failed, and the request itself if hyper gave it back
/// because none of it was written.
pub(crate) struct Failure<B> {
    pub(crate) error: hyper::Error,
    pub(crate) unsent: Option<Request<B>>,
}

/// A pooled HTTP/1.1 connection: hyper's [`SendRequest`] plus what the
/// server said about keeping it alive. Lent exclusively: one request at a
/// time, each response read to its end before the next request.
pub struct Http1Conn<B = Full<Bytes>> {
    pub(super) send: SendRequest<B>,
    phase: SharedPhase,
    /// The server said this is the last response (`Connection: close`, an
    /// HTTP/1.0 response, `Keep-Alive: max` reached), the last request
    /// said so (hyper closes the connection after its response), or an
    /// exchange failed.
    retiring: bool,
    /// From `Keep-Alive: timeout=N`, shortened: how long it stays reusable
    /// after a response.
    idle_limit: Option<Duration>,
    /// From `Keep-Alive: max=M`: requests the server still takes.
    remaining: Option<u32>,
    requests: u64,
    /// `Host` for requests that carry neither that header nor an authority.
    host: Option<HeaderValue>,
    pub(super) local: SocketAddr,
    pub(super) peer: SocketAddr,
    tls: bool,
}

impl<B> fmt::Debug for Http1Conn<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http1Conn")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .field("tls", &self.tls)
            .field("requests", &self.requests)
            .field("retiring", &self.retiring)
            .field("idle_limit", &self.idle_limit)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl<B> Http1Conn<B> {
    pub(super) fn new(
        send: SendRequest<B>,
        authority: Option<Authority>,
        local: SocketAddr,
        peer: SocketAddr,
        tls: bool,
    ) -> Self {
        Self {
            send,
            phase: Arc::new(Mutex::new(Phase::Idle {
                since: Instant::now(),
            })),
            retiring: false,
            idle_limit: None,
            remaining: None,
            requests: 0,
            host: authority.and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
            local,
            peer,
            tls,
        }
    }

    /// Whether the connection can carry another request: not closed, the
    /// last response read to its end, nothing either side said against it
    /// (`Connection: close` in a request or a response, an HTTP/1.0
    /// exchange without keep-alive, `Keep-Alive: max` used up, its
    /// `Keep-Alive: timeout` passed), no failed exchange. The pool asks on
    /// every return and checkout, and closes a connection that cannot.
    pub fn is_reusable(&self) -> bool {
        if self.retiring || self.send.is_closed() {
            return false;
        }
        match *self.phase.lock() {
            Phase::Busy => false,
            Phase::Idle { since } => self.idle_limit.is_none_or(|limit| since.elapsed() < limit),
        }
    }

    /// Requests sent on this connection.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// How long the connection stays reusable after a response, from the
    /// server's `Keep-Alive: timeout=N` (shortened: see the module docs).
    pub fn keep_alive_idle_limit(&self) -> Option<Duration> {
        self.idle_limit
    }

    /// Requests the server still takes on this connection, from its
    /// `Keep-Alive: max=M`.
    pub fn keep_alive_remaining(&self) -> Option<u32> {
        self.remaining
    }

    /// Whether the connection is over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The connection's local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// hyper's handle, for everything else it offers. A request sent
    /// through it directly is not seen by the connection's keep-alive
    /// bookkeeping.
    pub fn send_request_handle(&mut self) -> &mut SendRequest<B> {
        &mut self.send
    }

    /// The response body of the latest request was read to its end.
    pub(crate) fn body_finished(&self) {
        finish(&self.phase);
    }
}

impl<B: Body + 'static> Http1Conn<B> {
    /// Sends `request` and returns the response, whose body must be read to
    /// its end before the connection carries another request (a connection
    /// given back with its body unread, or dropped half-read, is closed,
    /// not reused). A request whose URI has no authority (just a path) gets
    /// the destination's `host:port` as its `Host`; an absolute URI is sent
    /// in origin form (its path), its authority as `Host`.
    ///
    /// Waits first until the connection can take the request (hyper's
    /// `ready`): after the previous response's body ended, so a second
    /// request sent while that body is still held unread waits for it.
    /// Dropping the returned future closes the connection (HTTP/1 cannot
    /// abandon one request and keep its connection).
    pub async fn send_request(
        &mut self,
        request: Request<B>,
    ) -> hyper::Result<Response<Http1Body>> {
        let phase = Arc::clone(&self.phase);
        match self.exchange(request).await {
            Ok(response) => Ok(response.map(|body| Http1Body::new(body, phase))),
            Err(failure) => Err(failure.error),
        }
    }

    /// Sends `request`; on failure, gives it back if none of it was written.
    pub(crate) async fn exchange(
        &mut self,
        mut request: Request<B>,
    ) -> Result<Response<Incoming>, Failure<B>> {
        self.prepare(&mut request);
        if let Err(error) = self.send.ready().await {
            self.retiring = true;
            return Err(Failure {
                error,
                unsent: Some(request),
            });
        }
        // Busy until the response body ends: dropped here, the connection
        // is broken (hyper closes it too).
        *self.phase.lock() = Phase::Busy;
        self.requests += 1;
        self.retiring |= closes(request.version(), request.headers());
        match self.send.try_send_request(request).await {
            Ok(response) => {
                self.observe(&response);
                Ok(response)
            }
            Err(mut e) => {
                self.retiring = true;
                let unsent = e.take_message();
                Err(Failure {
                    error: e.into_error(),
                    unsent,
                })
            }
        }
    }

    /// Origin form and a `Host` header, as an HTTP/1.1 server expects.
    fn prepare(&self, request: &mut Request<B>) {
        let uri = request.uri();
        if !request.headers().contains_key(HOST) {
            let host = match (uri.host(), uri.port()) {
                (Some(host), Some(port)) => HeaderValue::from_str(&format!("{host}:{port}")).ok(),
                (Some(host), None) => HeaderValue::from_str(host).ok(),
                (None, _) => self.host.clone(),
            };
            if let Some(host) = host {
                request.headers_mut().insert(HOST, host);
            }
        }
        let uri = request.uri();
        if uri.authority().is_some() || uri.path().is_empty() {
            let path = uri
                .path_and_query()
                .filter(|p| !p.as_str().is_empty())
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"));
            *request.uri_mut() = Uri::from(path);
        }
    }

    /// Takes in what the response says about the connection.
    fn observe(&mut self, response: &Response<Incoming>) {
        let v = verdict(response.status(), response.version(), response.headers());
        self.retiring |= v.close;
        if v.idle_limit.is_some() {
            self.idle_limit = v.idle_limit;
        }
        // `max=M` counts the requests the server takes after this one; a
        // response without it uses one of those announced before.
        self.remaining = v.max.or(self.remaining.map(|r| r.saturating_sub(1)));
        self.retiring |= self.remaining == Some(0);
        if response.body().is_end_stream() {
            self.body_finished();
        }
    }
}

fn finish(phase: &Mutex<Phase>) {
    *phase.lock() = Phase::Idle {
        since: Instant::now(),
    };
}

/// The body of a response from [`Http1Conn::send_request`]: hyper's body,
/// which tells its connection when it was read to its end (only then can
/// the connection carry another request).
pub struct Http1Body {
    body: Incoming,
    /// `None` once the body ended.
    phase: Option<SharedPhase>,
}

impl Http1Body {
    fn new(body: Incoming, phase: SharedPhase) -> Self {
        let phase = (!body.is_end_stream()).then_some(phase);
        Self { body, phase }
    }

    /// hyper's body.
    pub fn into_inner(self) -> Incoming {
        self.body
    }
}

impl Body for Http1Body {
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
            // An error leaves the phase busy: the connection is not reused.
            Poll::Ready(Some(Err(_))) => {
                this.phase = None;
                false
            }
            Poll::Pending => false,
        };
        if ended && let Some(phase) = this.phase.take() {
            finish(&phase);
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

impl fmt::Debug for Http1Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http1Body")
            .field("body", &self.body)
            .field("ended", &self.phase.is_none())
            .finish()
    }
}

impl<B: crate::service::RequestBody> crate::service::HttpConnection for Http1Conn<B> {
    type Body = B;

    async fn send(&mut self, request: Request<B>) -> hyper::Result<Response<Incoming>> {
        self.exchange(request).await.map_err(|f| f.error)
    }

    async fn try_send(
        &mut self,
        request: Request<B>,
    ) -> Result<Response<Incoming>, crate::service::Unsent<B>> {
        self.exchange(request)
            .await
            .map_err(|f| (f.error, f.unsent))
    }

    fn is_closed(&self) -> bool {
        !self.is_reusable()
    }

    fn body_finished(&mut self) {
        Http1Conn::body_finished(self);
    }
}
