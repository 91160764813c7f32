//! What [`HttpService`](super::HttpService) needs of a manager and its
//! connections. Public traits in a private module: bounds of the service's
//! public API that users can neither name nor implement (the managers of
//! this crate implement them), so they can change without breaking anyone.

use std::error::Error as StdError;
use std::future::Future;

use std::time::Duration;

use http::uri::Scheme;
use http::{HeaderMap, Request, Response, Uri};
use http_body::Body;
use hyper::body::Incoming;

use crate::HttpBody;
use crate::{HttpError, Origin};
use connpool_core::{Manager, Single};

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
/// ([`HttpConn`](crate::HttpConn)).
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

/// A manager whose pool [`HttpService`](super::HttpService) can call
/// through: keyed by [`Origin`] (or one origin, a [`Single`]'s), with
/// connections that send HTTP requests; and what a call through its pool
/// answers with (the HTTP manager's [`HttpBody`] and [`HttpError`]; the
/// gRPC manager's tonic body and [`tonic::Status`]).
pub trait HttpManager: Manager<Connection: HttpConnection, Error = HttpError> {
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

    /// The key of a request to `uri` from a service of `key`: `key`, or
    /// for a URI that says `https`, the `https` origin of its host (never
    /// in plaintext).
    fn route(&self, key: &Self::Key, uri: &Uri) -> Result<Self::Key, HttpError>;
}

/// The key a request to `uri` goes to from a service of `origin`.
pub(crate) fn over_tls_if_asked(origin: &Origin, uri: &Uri) -> Origin {
    if uri.scheme() == Some(&Scheme::HTTPS) && origin.scheme() != Some("https") {
        Origin::https(origin.destination().clone())
    } else {
        origin.clone()
    }
}

impl<M: HttpManager<Key = Origin>> HttpManager for Single<M> {
    type ResponseBody = M::ResponseBody;
    type CallError = M::CallError;

    fn deadline(headers: &HeaderMap) -> Option<Duration> {
        M::deadline(headers)
    }

    fn answer(
        outcome: Result<Response<HttpBody>, HttpError>,
    ) -> Result<Response<Self::ResponseBody>, Self::CallError> {
        M::answer(outcome)
    }

    /// The one origin; a URI that says `https` to a pool of a plaintext
    /// origin is refused ([`HttpError::NoTls`]): it is never sent in
    /// plaintext.
    fn route(&self, _: &(), uri: &Uri) -> Result<(), HttpError> {
        let origin = self.key();
        if over_tls_if_asked(origin, uri) != *origin {
            return Err(HttpError::NoTls {
                origin: over_tls_if_asked(origin, uri).to_string(),
            });
        }
        Ok(())
    }
}

impl<B: RequestBody> HttpManager for crate::HttpManager<B> {
    type ResponseBody = HttpBody;
    type CallError = HttpError;

    fn route(&self, key: &Origin, uri: &Uri) -> Result<Origin, HttpError> {
        Ok(over_tls_if_asked(key, uri))
    }

    fn answer(
        outcome: Result<Response<HttpBody>, HttpError>,
    ) -> Result<Response<HttpBody>, HttpError> {
        outcome
    }
}

/// The request body of `M`'s connections.
pub type BodyOf<M> = <<M as Manager>::Connection as HttpConnection>::Body;
