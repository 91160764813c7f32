//! [`GrpcService`]: [`HttpService`] for tonic clients, failing calls with
//! the gRPC status codes a tonic `Channel` (and grpc-go) would give, so
//! retry policies and callers see `UNAVAILABLE` where a call may be tried
//! again.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::time::Duration;

use http::{HeaderMap, Request, Response};
use tonic::{Code, Status};

use crate::Origin;
use crate::service::{BodyOf, HttpManager, HttpService, RequestTimeout, ServiceError};
use connpool_core::{Error, Pool};

/// The [`Status`] of a call that failed through the pool (see the table
/// on [`GrpcService`]).
pub(crate) fn status_of(e: &ServiceError) -> Status {
    let code = match e {
        ServiceError::Pool(Error::Closed) => Code::Cancelled,
        ServiceError::Pool(_) => Code::Unavailable,
        ServiceError::Request(e) | ServiceError::NotRetried { error: e, .. } => request_code(e),
        ServiceError::NoAuthority(_) => Code::InvalidArgument,
        ServiceError::TimedOut { .. } => Code::DeadlineExceeded,
    };
    Status::new(code, e.to_string())
}

/// The code of a request that failed on its connection.
fn request_code(e: &hyper::Error) -> Code {
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(h2) = err.downcast_ref::<h2::Error>()
            && let Some(reason) = h2.reason()
        {
            return match reason {
                h2::Reason::REFUSED_STREAM => Code::Unavailable,
                h2::Reason::CANCEL => Code::Cancelled,
                h2::Reason::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
                h2::Reason::INADEQUATE_SECURITY => Code::PermissionDenied,
                _ => Code::Internal,
            };
        }
        source = err.source();
    }
    // No reset reason: the connection itself failed (closed, reset, timed
    // out): a transport failure, which gRPC reports as unavailable.
    Code::Unavailable
}

/// An [`HttpService`] whose calls fail with a [`tonic::Status`] carrying
/// the gRPC code a tonic `Channel` would give (see *Failures* below): the
/// transport to give a generated tonic client. Everything else is
/// [`HttpService`]'s: a shared connection borrowed per call, held until
/// the response body ends.
///
/// ```no_run
/// use connpool::Pool;
/// use connpool::managers::grpc::{GrpcManager, GrpcService};
/// use tonic_health::pb::HealthCheckRequest;
/// use tonic_health::pb::health_client::HealthClient;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(GrpcManager::new()).build().await?;
/// let mut client = HealthClient::new(GrpcService::new(pool, "127.0.0.1:50051"));
/// match client.check(HealthCheckRequest::default()).await {
///     Err(status) if status.code() == tonic::Code::Unavailable => { /* try again later */ }
///     other => println!("{other:?}"),
/// }
/// # Ok(())
/// # }
/// ```
///
/// # Failures
///
/// A call that fails through the pool has the code a tonic `Channel` gives
/// (the message is the error's own `Display`, so it says what happened):
///
/// | failure | code | as a tonic `Channel` / grpc-go gives it |
/// |---|---|---|
/// | the dial failed ([`Error::Connect`]) | `UNAVAILABLE` | a failed connect |
/// | the key backs off after failed dials ([`Error::Backoff`]) | `UNAVAILABLE` | grpc-go's transient failure |
/// | no connection within the checkout deadline ([`Error::Timeout`]), too many waiters | `UNAVAILABLE` | waiting for a ready connection |
/// | the pool is closed ([`Error::Closed`]) | `CANCELLED` | grpc-go's "the client connection is closing" |
/// | the request failed on its connection (or on a reused one the server had closed, and was not sent again) | by HTTP/2 reset reason, as tonic maps it (`REFUSED_STREAM`: `UNAVAILABLE`, `CANCEL`: `CANCELLED`, `ENHANCE_YOUR_CALM`: `RESOURCE_EXHAUSTED`, `INADEQUATE_SECURITY`: `PERMISSION_DENIED`, other reasons: `INTERNAL`); the connection closed or timed out under it: `UNAVAILABLE` | the same |
/// | a request URI without an authority (a service routing by authority) | `INVALID_ARGUMENT` | |
/// | the call's deadline passed (`grpc-timeout`, [`HttpService::timeout`]) | `DEADLINE_EXCEEDED` | grpc-go's (tonic's own timeout gives `CANCELLED`) |
pub struct GrpcService<M: HttpManager> {
    inner: HttpService<M>,
}

impl<M: HttpManager> Clone for GrpcService<M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<M: HttpManager> fmt::Debug for GrpcService<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GrpcService").field(&self.inner).finish()
    }
}

impl<M: HttpManager> GrpcService<M> {
    /// Every call goes to `origin` ([`HttpService::new`]).
    pub fn new(pool: Pool<M>, origin: impl Into<Origin>) -> Self {
        Self {
            inner: HttpService::new(pool, origin),
        }
    }

    /// Each call goes to its URI's authority ([`HttpService::by_authority`]).
    pub fn by_authority(pool: Pool<M>) -> Self {
        Self {
            inner: HttpService::by_authority(pool),
        }
    }

    /// The [`HttpService`] underneath.
    pub fn http2(&self) -> &HttpService<M> {
        &self.inner
    }
}

impl<M: HttpManager> From<HttpService<M>> for GrpcService<M> {
    fn from(inner: HttpService<M>) -> Self {
        Self { inner }
    }
}

impl<M: HttpManager> tower::load::Load for GrpcService<M> {
    type Metric = usize;

    /// Calls in flight ([`HttpService::in_flight`]).
    fn load(&self) -> usize {
        self.inner.in_flight()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<M: HttpManager> tower::Service<Request<BodyOf<M>>> for GrpcService<M> {
    /// The response, its body failing with the [`Status`] a `Channel`
    /// would give (a stream reset after the headers as its reason's code,
    /// the call's deadline as `DEADLINE_EXCEEDED`); the body still holds
    /// the call's place on its connection until it ends
    /// ([`PooledBody`](crate::service::PooledBody)).
    type Response = Response<tonic::body::Body>;
    type Error = Status;
    type Future = BoxFuture<Result<Self::Response, Status>>;

    /// Always ready (see [`HttpService`]).
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    /// The call's `grpc-timeout` (tonic's `Request::set_timeout`) is its
    /// deadline, with the service's own and a [`RequestTimeout`]: the
    /// shortest applies, and past it the call fails `DEADLINE_EXCEEDED`.
    fn call(&mut self, mut request: Request<BodyOf<M>>) -> Self::Future {
        if let Some(grpc) = grpc_timeout(request.headers()) {
            let own = request.extensions().get::<RequestTimeout>().map(|t| t.0);
            let limit = own.map_or(grpc, |own| own.min(grpc));
            request.extensions_mut().insert(RequestTimeout(limit));
        }
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await.map_err(|e| status_of(&e))?;
            Ok(response.map(|body| {
                tonic::body::Body::new(http_body_util::BodyExt::map_err(body, |e| status_of(&e)))
            }))
        })
    }
}

/// The `grpc-timeout` header's duration (gRPC over HTTP/2: at most eight
/// digits and a unit, `H`, `M`, `S`, `m`, `u` or `n`); `None` if absent or
/// malformed (as grpc-go, which then sends the call without a deadline).
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_values() {
        let of = |v: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-timeout", http::HeaderValue::from_static(v));
            grpc_timeout(&headers)
        };
        assert_eq!(of("3S"), Some(Duration::from_secs(3)));
        assert_eq!(of("250m"), Some(Duration::from_millis(250)));
        assert_eq!(of("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(of("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "S", "3", "3s", "123456789S", "-1S", "1.5S"] {
            assert_eq!(of(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
    }
}
