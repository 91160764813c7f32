//! [`GrpcConn`]: the pooled handle to one HTTP/2 connection, which tonic
//! clients take as their transport.

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::task::{Context, Poll};

use http::{Request, Response};
use hyper::body::Incoming;
use tonic::body::Body;

use crate::Origin;
use crate::h2_frames::FrameState;
use crate::http::Http2Conn;
use crate::service::HttpConnection;

/// A pooled gRPC connection: a handle to one HTTP/2 connection, and the
/// [`tower::Service`] that sends gRPC calls (HTTP/2 requests with tonic's
/// body) on it, which tonic clients take as their transport
/// (`HealthClient::new(conn.clone())`). Requests with a bare path get the
/// connection's destination. It does not reconnect: a call on a closed
/// connection fails. Cheap to clone: each borrower of a shared connection
/// holds its own handle.
///
/// A clone kept past the guard's drop still works (the connection lives
/// while any handle does), but the pool no longer counts that call against
/// the connection's stream limit, and a connection closed by the pool ends
/// it; to have every call counted, call through
/// [`HttpService`](crate::service::HttpService) over the pool instead.
#[derive(Clone)]
pub struct GrpcConn {
    conn: Http2Conn<Body>,
    /// Where it was dialed: the key whose keepalive backs off if the server
    /// says `too_many_pings`.
    pub(super) dest: Origin,
    /// Whether its `too_many_pings` was taken into account (once per
    /// connection, whichever handle sees it first).
    pub(super) calm_counted: Arc<AtomicBool>,
}

impl GrpcConn {
    pub(super) fn new(conn: Http2Conn<Body>, dest: Origin) -> Self {
        Self {
            conn,
            dest,
            calm_counted: Arc::default(),
        }
    }

    /// The connection's local address (tells connections apart).
    pub fn local_addr(&self) -> SocketAddr {
        self.conn.local_addr()
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.conn.peer_addr()
    }

    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS`, from its latest
    /// `SETTINGS` frame that set it; `None`: no limit set.
    pub fn peer_max_concurrent_streams(&self) -> Option<u32> {
        self.frame_state().peer_max_concurrent_streams()
    }

    /// Whether the server sent `GOAWAY`: calls in flight finish, new ones
    /// fail; the pool lends this connection to no one new.
    pub fn is_draining(&self) -> bool {
        self.conn.is_draining()
    }

    /// Whether no new call can go through: draining, or the connection
    /// ended (it does not reconnect: the pool dials anew).
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// What the frame watcher learned about the connection.
    pub(crate) fn frame_state(&self) -> &FrameState {
        self.conn.frame_state()
    }

    /// The error code of the server's last `GOAWAY`, if one arrived (0:
    /// `NO_ERROR`, a graceful shutdown; 0xb: `ENHANCE_YOUR_CALM`, a
    /// server's `too_many_pings`).
    pub fn goaway_error_code(&self) -> Option<u32> {
        self.frame_state().goaway_error_code()
    }
}

impl fmt::Debug for GrpcConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcConn")
            .field("local", &self.local_addr())
            .field("peer", &self.peer_addr())
            .field("frames", self.frame_state())
            .finish_non_exhaustive()
    }
}

impl HttpConnection for GrpcConn {
    type Body = Body;

    fn send(
        &mut self,
        request: Request<Body>,
    ) -> impl Future<Output = hyper::Result<Response<Incoming>>> + Send {
        self.conn.send_request(request)
    }

    fn try_send(
        &mut self,
        request: Request<Body>,
    ) -> impl Future<Output = Result<Response<Incoming>, crate::service::Unsent<Body>>> + Send {
        self.conn.try_send(request)
    }

    fn is_closed(&self) -> bool {
        GrpcConn::is_closed(self)
    }

    fn note_unanswered(&self) {
        self.conn.frame_state().note_unanswered();
    }

    fn note_answered(&self) {
        self.conn.frame_state().note_answered();
    }
}

type ResponseFuture = Pin<Box<dyn Future<Output = hyper::Result<Response<Incoming>>> + Send>>;

impl tower::Service<Request<Body>> for GrpcConn {
    type Response = Response<Incoming>;
    type Error = hyper::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.conn.send_request_handle().poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> ResponseFuture {
        Box::pin(self.conn.send_request(request))
    }
}
