//! [`Http2Conn`]: the pooled handle to one HTTP/2 connection.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::uri::{Authority, Scheme, Uri};
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;

use crate::h2_frames::FrameState;

/// A pooled HTTP/2 connection (a handle to it: cheap to clone, each
/// borrower of a shared connection holds its own): hyper's [`SendRequest`]
/// plus what the server said about the connection.
pub struct Http2Conn<B = Full<Bytes>> {
    pub(super) send: SendRequest<B>,
    pub(super) frames: Arc<FrameState>,
    pub(super) scheme: Scheme,
    pub(super) authority: Option<Authority>,
    pub(super) local: SocketAddr,
    pub(super) peer: SocketAddr,
}

impl<B> Clone for Http2Conn<B> {
    fn clone(&self) -> Self {
        Self {
            send: self.send.clone(),
            frames: Arc::clone(&self.frames),
            scheme: self.scheme.clone(),
            authority: self.authority.clone(),
            local: self.local,
            peer: self.peer,
        }
    }
}

impl<B> fmt::Debug for Http2Conn<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http2Conn")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl<B: Body + 'static> Http2Conn<B> {
    /// Sends `request` on this connection. A request whose URI has no
    /// authority (just a path) gets the connection's scheme (`http`, or
    /// `https` over TLS) and the destination's `host:port`. Dropping the returned future cancels the request (the
    /// stream is reset; the connection stays usable).
    pub fn send_request(
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
            && let Some(authority) = &self.authority
        {
            let mut parts = request.uri().clone().into_parts();
            parts.scheme = Some(self.scheme.clone());
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

impl<B: crate::service::RequestBody> crate::service::HttpConnection for Http2Conn<B> {
    type Body = B;

    fn send(
        &mut self,
        request: Request<B>,
    ) -> impl Future<Output = hyper::Result<Response<Incoming>>> + Send {
        Http2Conn::send_request(self, request)
    }

    fn try_send(
        &mut self,
        request: Request<B>,
    ) -> impl Future<Output = Result<Response<Incoming>, crate::service::Unsent<B>>> + Send {
        Http2Conn::try_send(self, request)
    }

    fn is_closed(&self) -> bool {
        Http2Conn::is_closed(self)
    }

    fn note_unanswered(&self) {
        self.frames.note_unanswered();
    }

    fn note_answered(&self) {
        self.frames.note_answered();
    }
}

impl<B> Http2Conn<B> {
    /// hyper's handle, for everything else it offers.
    pub fn send_request_handle(&mut self) -> &mut SendRequest<B> {
        &mut self.send
    }

    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS`, from its latest
    /// `SETTINGS` frame that set it; `None`: no limit set.
    pub fn peer_max_concurrent_streams(&self) -> Option<u32> {
        self.frames.peer_max_concurrent_streams()
    }

    /// Whether the server sent `GOAWAY`: requests in flight finish, new ones
    /// are refused; the pool lends this connection to no one new.
    pub fn is_draining(&self) -> bool {
        self.frames.goaway_received()
    }

    /// Whether no new request can go through this connection: closed,
    /// draining, its socket ended, or three calls in a row through
    /// [`HttpService`](crate::service::HttpService) got no response by
    /// their deadline (the server, or the network to it, is silent).
    pub fn is_closed(&self) -> bool {
        self.send.is_closed() || self.frames.is_unusable()
    }

    /// What the frame watcher learned about the connection.
    #[cfg_attr(not(any(feature = "grpc", feature = "http1")), allow(dead_code))]
    pub(crate) fn frame_state(&self) -> &FrameState {
        &self.frames
    }

    /// The error code of the server's last `GOAWAY`, if one arrived (0:
    /// `NO_ERROR`, a graceful shutdown; 0xb: `ENHANCE_YOUR_CALM`, which
    /// gRPC servers send as `too_many_pings`).
    pub fn goaway_error_code(&self) -> Option<u32> {
        self.frames.goaway_error_code()
    }

    /// The connection's local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}
