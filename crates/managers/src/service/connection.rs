//! What [`HttpService`](super::HttpService) needs of a manager and its
//! connections. Public traits in a private module: bounds of the service's
//! public API that users can neither name nor implement (the managers of
//! this crate implement them), so they can change without breaking anyone.

use std::error::Error as StdError;
use std::future::Future;

use std::time::Duration;

use http::{HeaderMap, Request, Response};
use http_body::Body;
use hyper::body::Incoming;

use crate::http::HttpBody;
use crate::{HttpError, Origin};
use connpool_core::Manager;

/// A request body hyper's HTTP/2 client can send (tonic's body and
/// `http_body_util`'s bodies are ones).
pub trait RequestBody:
    Body<Data: Send, Error: Into<Box<dyn StdError + Send + Sync>>> + Send + Unpin + 'static
{
}

impl<B> RequestBody for B where
    B: Body<Data: Send, Error: Into<Box<dyn StdError + Send + Sync>>> + Send + Unpin + 'static
{
}

/// A pooled connection that sends HTTP requests: what [`HttpService`](super::HttpService)
/// needs of a manager's connections
/// ([`HttpConn`](crate::http::HttpConn)).
pub trait HttpConnection: Send + Unpin + 'static {
    /// The request body type.
    type Body: RequestBody;

    /// Sends `request`. A request whose URI has no authority gets the
    /// connection's destination.
    fn send(
        &mut self,
        request: Request<Self::Body>,
    ) -> impl Future<Output = hyper::Result<Response<Incoming>>> + Send;

    /// Sends `request`; on failure, gives it back too if none of it was
    /// written (so it can go to another connection whatever its method).
    /// The default gives nothing back.
    fn try_send(
        &mut self,
        request: Request<Self::Body>,
    ) -> impl Future<Output = Result<Response<Incoming>, Unsent<Self::Body>>> + Send {
        let sent = self.send(request);
        async move { sent.await.map_err(|error| (error, None)) }
    }

    /// Whether no new request can go through this connection.
    fn is_closed(&self) -> bool;

    /// The body of the latest response was read to its end (an HTTP/1.1
    /// connection can carry the next request only then). The default does
    /// nothing.
    fn body_finished(&mut self) {}

    /// A call got no response head by its deadline: on a multiplexed
    /// connection, a missed reply (enough in a row, and it is lent no
    /// more). The default does nothing (an HTTP/1.1 connection cut short
    /// is closed anyway).
    fn note_unanswered(&self) {}

    /// A call got its response head. The default does nothing.
    fn note_answered(&self) {}
}

/// A request's error, and the request if none of it was written.
pub type Unsent<B> = (hyper::Error, Option<Request<B>>);

/// A manager whose pool [`HttpService`](super::HttpService) can call through: keyed by
/// [`Origin`], with connections that send HTTP requests; and what a call
/// through its pool answers with (the HTTP manager's [`HttpBody`] and
/// [`HttpError`]; the gRPC manager's tonic body and [`tonic::Status`]).
pub trait HttpManager:
    Manager<Key = Origin, Connection: HttpConnection, Error = HttpError>
{
    /// The body of a call's response.
    type ResponseBody: Send + 'static;
    /// The error of a call, and of its response body.
    type CallError: std::error::Error + Send + Sync + 'static;

    /// The call's own deadline, read from its request's headers. The
    /// default: none.
    fn deadline(headers: &HeaderMap) -> Option<Duration> {
        let _ = headers;
        None
    }

    /// A call's outcome as the service answers it.
    fn answer(
        outcome: Result<Response<HttpBody>, HttpError>,
    ) -> Result<Response<Self::ResponseBody>, Self::CallError>;
}

impl<B: RequestBody> HttpManager for crate::http::HttpManager<B> {
    type ResponseBody = HttpBody;
    type CallError = HttpError;

    fn answer(
        outcome: Result<Response<HttpBody>, HttpError>,
    ) -> Result<Response<HttpBody>, HttpError> {
        outcome
    }
}

/// The request body of `M`'s connections.
pub type BodyOf<M> = <<M as Manager>::Connection as HttpConnection>::Body;
