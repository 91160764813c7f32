//! An HTTP/2 connection: its setup (the handshake, then the wait for the
//! server's first `SETTINGS`) and [`Http2Conn`], the handle each borrower
//! holds.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, Scheme, Uri};
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::client::conn::http2::{Builder as H2Builder, SendRequest};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::AbortHandle;

use crate::HttpError;
use crate::Origin;
use crate::h2_frames::{
    DeadOnArrival, FrameState, SettingsWait, await_settings, dead_on_arrival, watcher,
};
use crate::service::RequestBody;

/// hyper's HTTP/2 keepalive and the wait for `SETTINGS`, as
/// the pool's keepalive settings and [`HttpManager`](super::HttpManager)'s
/// set them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Http2Settings {
    pub(crate) keep_alive_interval: Option<Duration>,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) keep_alive_while_idle: bool,
    pub(crate) settings_timeout: Duration,
}

/// hyper's executor for a connection's per-request tasks. Each future is
/// boxed before it is spawned, as tonic's `Channel` does: the task's cell
/// then holds a pointer, where a future spawned as it is would be copied
/// by tokio when the task starts and again when it finishes.
#[derive(Debug, Clone, Copy)]
struct BoxedSpawn;

impl<F> hyper::rt::Executor<F> for BoxedSpawn
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(Box::pin(future));
    }
}

/// The HTTP/2 handshake over `io` (a TCP stream, or TLS that chose `h2`),
/// its connection driven by a task of its own, then the wait for the
/// server's first `SETTINGS`: a peer that sends none is not speaking
/// HTTP/2, and one that is already draining or closed would fail every
/// request.
pub(crate) async fn setup<B, T>(
    settings: &Http2Settings,
    io: T,
    scheme: Scheme,
    origin: &Origin,
    local: SocketAddr,
    peer: SocketAddr,
) -> Result<Http2Conn<B>, HttpError>
where
    B: RequestBody,
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let watcher = watcher(io);
    let frames = crate::h2_frames::state(&watcher);

    let mut builder = H2Builder::new(BoxedSpawn);
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(settings.keep_alive_interval)
        .keep_alive_timeout(settings.keep_alive_timeout)
        .keep_alive_while_idle(settings.keep_alive_while_idle);
    let (send, driver) = builder
        .handshake(TokioIo::new(watcher))
        .await
        .map_err(HttpError::Handshake)?;
    let origin_name = origin.to_string();
    let driver = tokio::spawn(async move {
        if let Err(e) = driver.await {
            tracing::debug!(origin = %origin_name, error = %e, "HTTP/2 connection ended");
        }
    });
    if let Err(why) = await_settings(&frames, settings.settings_timeout).await {
        driver.abort();
        return Err(match why {
            SettingsWait::Closed => HttpError::ClosedBeforeSettings,
            SettingsWait::TimedOut => HttpError::NoSettings {
                waited: settings.settings_timeout,
            },
        });
    }
    if let Some(DeadOnArrival { goaway, debug_data }) = dead_on_arrival(&frames, send.is_closed()) {
        driver.abort();
        return Err(HttpError::ClosedDuringSetup { goaway, debug_data });
    }
    Ok(Http2Conn {
        send,
        frames,
        fixed: Arc::new(Fixed {
            driver: driver.abort_handle(),
            scheme,
            authority: origin.destination().to_string().parse().ok(),
            #[cfg(feature = "grpc")]
            origin: origin.clone(),
            local,
            peer,
        }),
    })
}

/// A handle to one HTTP/2 connection (cheap to clone, each borrower of a
/// shared connection holds its own): hyper's [`SendRequest`] plus what the
/// server said about the connection.
pub(crate) struct Http2Conn<B> {
    send: SendRequest<B>,
    frames: Arc<FrameState>,
    fixed: Arc<Fixed>,
}

/// What a connection's handles share and never change: kept once, so a
/// handle is small to clone and to move (the pool's guard, with the handle
/// in it, moves on every checkout and return).
struct Fixed {
    /// The task that drives the connection: the pool's close ends it, and
    /// with it the connection, whoever still holds a handle.
    driver: AbortHandle,
    scheme: Scheme,
    authority: Option<Authority>,
    /// The key it was dialed for.
    #[cfg(feature = "grpc")]
    origin: Origin,
    local: SocketAddr,
    peer: SocketAddr,
}

impl<B> Clone for Http2Conn<B> {
    fn clone(&self) -> Self {
        Self {
            send: self.send.clone(),
            frames: Arc::clone(&self.frames),
            fixed: Arc::clone(&self.fixed),
        }
    }
}

impl<B> fmt::Debug for Http2Conn<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http2Conn")
            .field("local", &self.fixed.local)
            .field("peer", &self.fixed.peer)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl<B: Body + 'static> Http2Conn<B> {
    /// Sends `request` on this connection. A request whose URI has no
    /// authority (just a path) gets the connection's scheme (`http`, or
    /// `https` over TLS) and the destination's `host:port`. Dropping the
    /// returned future cancels the request (the stream is reset; the
    /// connection stays usable).
    pub(crate) fn send_request(
        &mut self,
        mut request: Request<B>,
    ) -> impl Future<Output = hyper::Result<Response<Incoming>>> + use<B> {
        self.prepare(&mut request);
        self.send.send_request(request)
    }

    /// Sends `request`; on failure, gives it back too if hyper had not
    /// begun to send it (the connection closed or went away first).
    pub(crate) fn try_send(
        &mut self,
        mut request: Request<B>,
    ) -> impl Future<Output = Result<Response<Incoming>, crate::service::Unsent<B>>> + use<B> {
        self.prepare(&mut request);
        let sent = self.send.try_send_request(request);
        async move {
            sent.await.map_err(|mut e| {
                let unsent = e.take_message();
                (e.into_error(), unsent)
            })
        }
    }

    /// The connection's scheme and authority for a request with a bare
    /// path.
    fn prepare(&self, request: &mut Request<B>) {
        if request.uri().authority().is_none()
            && let Some(authority) = &self.fixed.authority
        {
            let mut parts = request.uri().clone().into_parts();
            parts.scheme = Some(self.fixed.scheme.clone());
            parts.authority = Some(authority.clone());
            if parts.path_and_query.is_none() {
                parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
            }
            if let Ok(uri) = Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
}

impl<B> Http2Conn<B> {
    /// hyper's handle (tower's `poll_ready`).
    pub(crate) fn send_request_handle(&mut self) -> &mut SendRequest<B> {
        &mut self.send
    }

    /// Fails if the connection is closed or draining, else waits until it
    /// can take a request.
    pub(crate) async fn ready(&mut self) -> Result<(), HttpError> {
        if self.is_closed() {
            return Err(HttpError::Closed {
                goaway: self.frames.goaway_error_code(),
            });
        }
        self.send.ready().await.map_err(HttpError::NotReady)
    }

    /// Ends the connection (its socket closes), for every handle: requests
    /// on clones fail at once.
    pub(crate) fn end(&self) {
        self.fixed.driver.abort();
    }

    /// The key it was dialed for.
    #[cfg(feature = "grpc")]
    pub(crate) fn origin(&self) -> &Origin {
        &self.fixed.origin
    }

    /// Whether the connection is over TLS.
    pub(crate) fn is_tls(&self) -> bool {
        self.fixed.scheme == Scheme::HTTPS
    }

    /// Whether the server sent `GOAWAY`: requests in flight finish, new ones
    /// are refused; the pool lends this connection to no one new.
    pub(crate) fn is_draining(&self) -> bool {
        self.frames.goaway_received()
    }

    /// Whether no new request can go through this connection: closed,
    /// draining, its socket ended, or three calls in a row through
    /// [`HttpService`](crate::service::HttpService) got no response by
    /// their deadline (the server, or the network to it, is silent).
    pub(crate) fn is_closed(&self) -> bool {
        self.send.is_closed() || self.frames.is_unusable()
    }

    /// What the frame watcher learned about the connection.
    pub(crate) fn frame_state(&self) -> &FrameState {
        &self.frames
    }

    /// The connection's local address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.fixed.local
    }

    /// The server's address.
    pub(crate) fn peer_addr(&self) -> SocketAddr {
        self.fixed.peer
    }
}
