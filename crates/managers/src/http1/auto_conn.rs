//! [`AutoConn`]: an HTTP/1.1 connection or a handle to an HTTP/2 one, as
//! the server chose.

use bytes::Bytes;
use http::{Request, Response, Version};
use http_body_util::Full;
use hyper::body::Incoming;

use super::conn::Http1Conn;
use crate::http2::Http2Conn;
use crate::service::{HttpConnection, RequestBody, Unsent};

/// A pooled connection of [`AutoManager`](super::AutoManager): HTTP/1.1
/// (lent exclusively) or HTTP/2 (lent shared), as the server chose in ALPN.
#[derive(Debug)]
#[non_exhaustive]
pub enum AutoConn<B = Full<Bytes>> {
    /// HTTP/1.1.
    Http1(Http1Conn<B>),
    /// HTTP/2: a handle to the connection.
    Http2(Http2Conn<B>),
    /// What a clone of an HTTP/1.1 connection is: nothing (an HTTP/1.1
    /// connection carries one request at a time, so the pool never shares
    /// one, and never clones it). Fails every request.
    Unshared,
}

/// HTTP/2 handles are cloned for each borrower; an HTTP/1.1 connection
/// cannot be (see [`AutoConn::Unshared`]).
impl<B> Clone for AutoConn<B> {
    fn clone(&self) -> Self {
        match self {
            AutoConn::Http2(h2) => AutoConn::Http2(h2.clone()),
            AutoConn::Http1(_) | AutoConn::Unshared => AutoConn::Unshared,
        }
    }
}

impl<B> AutoConn<B> {
    /// The HTTP version the server chose.
    pub fn version(&self) -> Version {
        match self {
            AutoConn::Http2(_) => Version::HTTP_2,
            _ => Version::HTTP_11,
        }
    }

    /// The HTTP/1.1 connection, if it is one.
    pub fn as_http1_mut(&mut self) -> Option<&mut Http1Conn<B>> {
        match self {
            AutoConn::Http1(c) => Some(c),
            _ => None,
        }
    }

    /// The HTTP/2 handle, if it is one.
    pub fn as_http2_mut(&mut self) -> Option<&mut Http2Conn<B>> {
        match self {
            AutoConn::Http2(c) => Some(c),
            _ => None,
        }
    }

    /// Whether the connection can take another request.
    pub(super) fn is_usable(&self) -> bool {
        match self {
            AutoConn::Http1(c) => c.is_reusable(),
            AutoConn::Http2(c) => !c.is_closed(),
            AutoConn::Unshared => false,
        }
    }
}

impl<B: RequestBody> AutoConn<B> {
    /// Sends `request` in the version the server chose (through
    /// [`HttpService`](crate::service::HttpService), a request that met a
    /// closed connection is sent again; here it fails). A request whose
    /// URI has no authority gets the connection's destination.
    pub async fn send_request(&mut self, request: Request<B>) -> hyper::Result<Response<Incoming>> {
        HttpConnection::send(self, request).await
    }
}

/// A request on [`AutoConn::Unshared`] fails as one on a closed HTTP/1.1
/// connection does (hyper's "canceled" error; hyper makes its errors only
/// itself, so it comes from a connection that is gone before it began).
async fn refuse<B: RequestBody>(request: Request<B>) -> hyper::Result<Response<Incoming>> {
    let (io, _) = tokio::io::duplex(1);
    let (mut send, driver) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await?;
    drop(driver);
    send.send_request(request).await
}

impl<B: RequestBody> HttpConnection for AutoConn<B> {
    type Body = B;

    async fn send(&mut self, request: Request<B>) -> hyper::Result<Response<Incoming>> {
        match self {
            AutoConn::Http1(c) => c.send(request).await,
            AutoConn::Http2(c) => HttpConnection::send(c, request).await,
            AutoConn::Unshared => refuse(request).await,
        }
    }

    async fn try_send(&mut self, request: Request<B>) -> Result<Response<Incoming>, Unsent<B>> {
        match self {
            AutoConn::Http1(c) => c.try_send(request).await,
            AutoConn::Http2(c) => c.try_send(request).await,
            AutoConn::Unshared => refuse(request).await.map_err(|e| (e, None)),
        }
    }

    fn is_closed(&self) -> bool {
        !self.is_usable()
    }

    fn body_finished(&mut self) {
        if let AutoConn::Http1(c) = self {
            c.body_finished();
        }
    }

    fn note_unanswered(&self) {
        if let AutoConn::Http2(c) = self {
            HttpConnection::note_unanswered(c);
        }
    }

    fn note_answered(&self) {
        if let AutoConn::Http2(c) = self {
            HttpConnection::note_answered(c);
        }
    }
}
