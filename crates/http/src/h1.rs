//! An HTTP/1.1 connection: its handshake, and [`Http1Conn`], the
//! connection and what the server said about its keep-alive.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{HOST, HeaderValue};
use http::uri::{Authority, PathAndQuery, Uri};
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::client::conn::TrySendError;
use hyper::client::conn::http1::{Builder as H1Builder, SendRequest};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::keepalive::{closes, verdict};
use crate::HttpError;
use crate::Origin;
use crate::service::RequestBody;

/// Where the connection's latest exchange is.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Ready for a request: the last response (if any) was read to its end
    /// at `since`.
    Idle { since: Instant },
    /// A request is in flight or its response body is not read to its end:
    /// the connection cannot carry the next request yet.
    Busy,
}

/// What the connection's exchanges told about its future. Shared with the
/// response future and body, which end after the borrower may have let go
/// of the connection.
#[derive(Debug)]
pub(super) struct State {
    phase: Phase,
    /// The server said this is the last response (`Connection: close`, an
    /// HTTP/1.0 response, `Keep-Alive: max` reached), the last request
    /// said so (hyper closes the connection after its response), or an
    /// exchange failed.
    retiring: bool,
    /// The server said its last response was the last (`Connection:
    /// close`, an HTTP/1.0 response, `Keep-Alive: max` reached).
    server_closes: bool,
    /// From `Keep-Alive: timeout=N`, shortened: how long it stays reusable
    /// after a response.
    idle_limit: Option<Duration>,
    /// From `Keep-Alive: max=M`: requests the server still takes.
    remaining: Option<u32>,
}

pub(super) type SharedState = Arc<Mutex<State>>;

/// A request that failed, and the request itself if hyper gave it back
/// because none of it was written.
pub(crate) struct Failure<B> {
    pub(crate) error: hyper::Error,
    pub(crate) unsent: Option<Request<B>>,
}

/// An HTTP/1.1 connection: hyper's [`SendRequest`] plus what the server
/// said about keeping it alive. Lent exclusively: one request at a time,
/// each response read to its end before the next request.
pub(crate) struct Http1Conn<B> {
    send: SendRequest<B>,
    state: SharedState,
    fixed: Arc<Fixed>,
}

/// What never changes for a connection: kept once, so the connection is
/// small to move (the pool's guard, with the connection in it, moves on
/// every checkout and return).
#[derive(Debug)]
pub(crate) struct Fixed {
    /// `Host` for requests that carry neither that header nor an authority.
    host: Option<HeaderValue>,
    pub(crate) local: SocketAddr,
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
}

impl<B> fmt::Debug for Http1Conn<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http1Conn")
            .field("local", &self.fixed.local)
            .field("peer", &self.fixed.peer)
            .field("tls", &self.fixed.tls)
            .field("state", &*self.state.lock())
            .finish_non_exhaustive()
    }
}

impl<B> Http1Conn<B> {
    fn new(
        send: SendRequest<B>,
        authority: Option<Authority>,
        local: SocketAddr,
        peer: SocketAddr,
        tls: bool,
    ) -> Self {
        let state = State {
            phase: Phase::Idle {
                since: Instant::now(),
            },
            retiring: false,
            server_closes: false,
            idle_limit: None,
            remaining: None,
        };
        Self {
            send,
            state: Arc::new(Mutex::new(state)),
            fixed: Arc::new(Fixed {
                host: authority.and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
                local,
                peer,
                tls,
            }),
        }
    }

    /// Whether the connection can carry another request: not closed, the
    /// last response read to its end, nothing either side said against it
    /// (`Connection: close` in a request or a response, an HTTP/1.0
    /// exchange without keep-alive, `Keep-Alive: max` used up, its
    /// `Keep-Alive: timeout` passed), no failed exchange. The pool asks on
    /// every return and checkout, and closes a connection that cannot.
    pub(crate) fn is_reusable(&self) -> bool {
        if self.send.is_closed() {
            return false;
        }
        let state = self.state.lock();
        match state.phase {
            _ if state.retiring => false,
            Phase::Busy => false,
            Phase::Idle { since } => state.idle_limit.is_none_or(|limit| since.elapsed() < limit),
        }
    }

    /// How long the connection stays reusable after a response, from the
    /// server's `Keep-Alive: timeout=N` (shortened: see the module docs).
    pub(crate) fn keep_alive_idle_limit(&self) -> Option<Duration> {
        self.state.lock().idle_limit
    }

    /// Requests the server still takes on this connection, from its
    /// `Keep-Alive: max=M`.
    pub(crate) fn keep_alive_remaining(&self) -> Option<u32> {
        self.state.lock().remaining
    }

    /// Its addresses, and whether it is over TLS.
    pub(crate) fn fixed(&self) -> &Arc<Fixed> {
        &self.fixed
    }

    /// Whether the server said this connection takes no further request
    /// (`Connection: close`, an HTTP/1.0 response, `Keep-Alive: max`
    /// used up), the last request said so, or an exchange failed.
    pub(crate) fn is_retiring(&self) -> bool {
        self.state.lock().retiring
    }

    /// Whether the server ended the connection in the normal course: its
    /// last response, read to its end, said it was the last
    /// (`Connection: close`, HTTP/1.0, `Keep-Alive: max` used up), or the
    /// `Keep-Alive: timeout` it gave has passed.
    pub(crate) fn ended_by_server(&self) -> bool {
        let state = self.state.lock();
        match state.phase {
            Phase::Busy => false,
            Phase::Idle { since } => {
                state.server_closes
                    || state
                        .idle_limit
                        .is_some_and(|limit| since.elapsed() >= limit)
            }
        }
    }

    /// The state its response body reports the end to.
    pub(super) fn state(&self) -> SharedState {
        Arc::clone(&self.state)
    }

    /// The response body of the latest request was read to its end.
    pub(crate) fn body_finished(&self) {
        finish(&self.state);
    }

    /// Whether hyper's connection takes a request now (tower's
    /// `poll_ready`); a failure retires the connection.
    pub(super) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<hyper::Result<()>> {
        let ready = self.send.poll_ready(cx);
        if let Poll::Ready(Err(_)) = ready {
            self.state.lock().retiring = true;
        }
        ready
    }
}

impl<B: RequestBody> Http1Conn<B> {
    /// Sends `request`; on failure, gives it back if none of it was written.
    pub(crate) async fn exchange(
        &mut self,
        request: Request<B>,
    ) -> Result<Response<Incoming>, Failure<B>> {
        if let Err(error) = self.send.ready().await {
            self.state.lock().retiring = true;
            return Err(Failure {
                error,
                unsent: Some(request),
            });
        }
        let sent = self.start(request).await;
        end(&self.state, sent)
    }

    /// Sends `request` on a connection that is ready for it: hyper's
    /// future, which borrows nothing (tower's `call`); [`end`] takes in its
    /// outcome.
    pub(super) fn start(
        &mut self,
        mut request: Request<B>,
    ) -> impl Future<Output = Result<Response<Incoming>, TrySendError<Request<B>>>> + Send + use<B>
    {
        self.prepare(&mut request);
        // Busy until the response body ends: dropped before, the
        // connection is broken (hyper closes it too).
        let mut state = self.state.lock();
        state.phase = Phase::Busy;
        state.retiring |= closes(request.version(), request.headers());
        drop(state);
        self.send.try_send_request(request)
    }

    /// Origin form and a `Host` header, as an HTTP/1.1 server expects.
    fn prepare(&self, request: &mut Request<B>) {
        let uri = request.uri();
        if !request.headers().contains_key(HOST) {
            let host = match uri.authority() {
                None => self.fixed.host.clone(),
                // The connection's own `host:port`, the common case: its
                // value, shared.
                Some(a)
                    if self
                        .fixed
                        .host
                        .as_ref()
                        .is_some_and(|h| h.as_bytes() == a.as_str().as_bytes()) =>
                {
                    self.fixed.host.clone()
                }
                Some(_) => match (uri.host(), uri.port()) {
                    (Some(host), Some(port)) => {
                        HeaderValue::from_str(&format!("{host}:{port}")).ok()
                    }
                    (Some(host), None) => HeaderValue::from_str(host).ok(),
                    (None, _) => self.fixed.host.clone(),
                },
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
}

/// Takes in the outcome of a request sent by [`Http1Conn::start`]: what the
/// response says about the connection, or a failure that retires it (with
/// the request, if hyper gave it back unwritten).
#[expect(
    clippy::result_large_err,
    reason = "the unsent request comes back by value, as hyper gives it back, to be sent again"
)]
pub(super) fn end<B>(
    state: &Mutex<State>,
    sent: Result<Response<Incoming>, TrySendError<Request<B>>>,
) -> Result<Response<Incoming>, Failure<B>> {
    match sent {
        Ok(response) => {
            observe(state, &response);
            Ok(response)
        }
        Err(mut e) => {
            state.lock().retiring = true;
            let unsent = e.take_message();
            Err(Failure {
                error: e.into_error(),
                unsent,
            })
        }
    }
}

/// Takes in what a response says about its connection.
fn observe(state: &Mutex<State>, response: &Response<Incoming>) {
    let v = verdict(response.status(), response.version(), response.headers());
    let mut state = state.lock();
    state.retiring |= v.close;
    if v.idle_limit.is_some() {
        state.idle_limit = v.idle_limit;
    }
    // `max=M` counts the requests the server takes after this one; a
    // response without it uses one of those announced before.
    state.remaining = v.max.or(state.remaining.map(|r| r.saturating_sub(1)));
    state.retiring |= state.remaining == Some(0);
    state.server_closes |= v.close || state.remaining == Some(0);
    if response.body().is_end_stream() {
        state.phase = Phase::Idle {
            since: Instant::now(),
        };
    }
}

/// The response body ended: the connection can carry the next request.
pub(super) fn finish(state: &Mutex<State>) {
    state.lock().phase = Phase::Idle {
        since: Instant::now(),
    };
}

/// The HTTP/1.1 handshake over `io` (no round trip), its connection driven
/// by a task of its own (which ends with the connection).
pub(crate) async fn handshake<B, T>(
    io: T,
    origin: &Origin,
    local: SocketAddr,
    peer: SocketAddr,
    tls: bool,
) -> Result<Http1Conn<B>, HttpError>
where
    B: RequestBody,
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (send, driver) = H1Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(HttpError::Handshake)?;
    let origin_name = origin.to_string();
    tokio::spawn(async move {
        if let Err(e) = driver.await {
            tracing::debug!(origin = %origin_name, error = %e, "HTTP/1.1 connection ended");
        }
    });
    Ok(Http1Conn::new(
        send,
        origin.destination().to_string().parse().ok(),
        local,
        peer,
        tls,
    ))
}

impl<B> Http1Conn<B> {
    /// Fails if the connection cannot carry another request, else waits
    /// until hyper's connection takes one. An idle connection's driver
    /// keeps reading its socket, so a server's close (FIN or reset) is
    /// already seen here.
    pub(crate) async fn ready(&mut self) -> Result<(), HttpError> {
        if !self.is_reusable() {
            return Err(HttpError::NotReusable);
        }
        self.send.ready().await.map_err(HttpError::NotReady)
    }
}
