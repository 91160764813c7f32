//! A per-call [`tower::Service`] over a pool of HTTP/2 connections: the
//! transport for tonic generated clients and for plain HTTP/2 requests.
//!
//! [`Http2Service`] checks out a shared handle for each request (the pool's
//! FIFO wait, checkout deadline and backoff apply as for
//! [`Pool::get_for`]), sends the request on it, and **holds the borrow until
//! the response body ends or is dropped**: a streaming call keeps its
//! stream slot for its whole life, a finished one frees it at once. So the
//! pool's count of borrowers on each connection is the number of streams
//! open on it, and a new connection is dialed only when every connection of
//! the key carries as many calls as the server allows
//! (`MAX_CONCURRENT_STREAMS`) or the pool's
//! [`max_borrowers`](crate::Builder::max_borrowers). A connection that
//! failed under a request (closed, draining, timed out) is marked broken
//! and replaced.
//!
//! No connection escapes the pool through this service: the handle it
//! borrows never leaves it, so every call is counted.
//!
//! Two ways to pick the connection's key:
//!
//! - [`Http2Service::new`]: one destination for every request (a tonic
//!   client of one backend; requests may carry a bare path).
//! - [`Http2Service::by_authority`]: each request's URI authority
//!   (`http://host:port/...`) is its key, so one pool and one service serve
//!   many hosts, each with several connections.
//!
//! A tonic client takes the service as it is (tonic implements its
//! `GrpcService` for tower services): build the pool's manager for tonic's
//! body type.
//!
//! ```no_run
//! use connpool::Pool;
//! use connpool::managers::http2::Http2Manager;
//! use connpool::managers::service::Http2Service;
//! use tonic_health::pb::HealthCheckRequest;
//! use tonic_health::pb::health_client::HealthClient;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = Http2Manager::new().with_body::<tonic::body::Body>();
//! let pool = Pool::builder(manager).max_open_per_key(8).build().await?;
//! let mut client = HealthClient::new(Http2Service::new(pool, "127.0.0.1:50051"));
//! let reply = client.check(HealthCheckRequest::default()).await?;
//! println!("{:?}", reply.get_ref().status());
//! # Ok(())
//! # }
//! ```
//!
//! [`Pool::get_for`]: crate::Pool::get_for

mod body;
mod error;

use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use http::uri::Scheme;
use http::{Request, Response, Uri};
use http_body::Body;

pub use body::PooledBody;
pub use error::ServiceError;

use super::http2::Http2Manager;
use super::tcp::Destination;
use crate::{Pool, Pooled};

/// A request body an [`Http2Manager`]'s connections can send: what hyper's
/// HTTP/2 client needs of it (tonic's body and `http_body_util`'s bodies
/// are ones).
pub trait RequestBody:
    Body<Data: Send, Error: Into<Box<dyn StdError + Send + Sync>>> + Send + Unpin + 'static
{
}

impl<B> RequestBody for B where
    B: Body<Data: Send, Error: Into<Box<dyn StdError + Send + Sync>>> + Send + Unpin + 'static
{
}

/// How [`Http2Service`] picks a request's key.
#[derive(Clone, Debug)]
enum Route {
    /// One destination for every request.
    To(Destination),
    /// The request URI's authority (port from the scheme if absent).
    ByAuthority,
}

/// A cheap-to-clone [`tower::Service`] that sends each request on a pooled
/// HTTP/2 connection and keeps the connection's place until the response
/// body ends or is dropped. See the [module docs](self).
///
/// It counts its calls in flight (shared by its clones): a call counts from
/// [`call`](tower::Service::call) until its response body ends or is
/// dropped, or it fails. That count is its [`Load`](tower::load::Load), so a
/// balancer over several services sends each call to the least busy.
pub struct Http2Service<B: RequestBody> {
    pool: Pool<Http2Manager<B>>,
    route: Route,
    in_flight: Arc<AtomicUsize>,
}

impl<B: RequestBody> Clone for Http2Service<B> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            route: self.route.clone(),
            in_flight: Arc::clone(&self.in_flight),
        }
    }
}

impl<B: RequestBody> fmt::Debug for Http2Service<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http2Service")
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl<B: RequestBody> Http2Service<B> {
    /// Every request goes to `destination`. A request whose URI has no
    /// authority (a bare path, as tonic sends) gets the destination's.
    pub fn new(pool: Pool<Http2Manager<B>>, destination: impl Into<Destination>) -> Self {
        Self {
            pool,
            route: Route::To(destination.into()),
            in_flight: Arc::default(),
        }
    }

    /// Each request goes to its URI's authority (`host:port`; without a
    /// port, 443 for `https` and 80 otherwise), a key of the pool of its
    /// own. A request without an authority fails with
    /// [`ServiceError::NoAuthority`].
    pub fn by_authority(pool: Pool<Http2Manager<B>>) -> Self {
        Self {
            pool,
            route: Route::ByAuthority,
            in_flight: Arc::default(),
        }
    }

    /// Calls in flight through this service and its clones.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The pool the requests borrow from.
    pub fn pool(&self) -> &Pool<Http2Manager<B>> {
        &self.pool
    }

    fn key(&self, uri: &Uri) -> Result<Destination, ServiceError> {
        match &self.route {
            Route::To(destination) => Ok(destination.clone()),
            Route::ByAuthority => destination_of(uri),
        }
    }
}

impl<B: RequestBody> tower::load::Load for Http2Service<B> {
    type Metric = usize;

    /// Calls in flight through this service and its clones.
    fn load(&self) -> usize {
        self.in_flight()
    }
}

/// One call counted in flight until dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The key a URI names: its authority, with the scheme's default port.
fn destination_of(uri: &Uri) -> Result<Destination, ServiceError> {
    let host = uri
        .host()
        .ok_or_else(|| ServiceError::NoAuthority(uri.to_string()))?;
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme() == Some(&Scheme::HTTPS) {
            443
        } else {
            80
        });
    // `host()` keeps an IPv6 address's brackets, as `host:port` needs them.
    Ok(Destination::from(format!("{host}:{port}")))
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<B: RequestBody> tower::Service<Request<B>> for Http2Service<B> {
    type Response = Response<PooledBody<B>>;
    type Error = ServiceError;
    type Future = BoxFuture<Result<Self::Response, ServiceError>>;

    /// Always ready: a call waits for its connection in the pool's FIFO
    /// queue, under the pool's checkout deadline.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ServiceError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let pool = self.pool.clone();
        let key = self.key(request.uri());
        let in_flight = InFlight::start(&self.in_flight);
        Box::pin(async move {
            let key = key?;
            let mut conn = pool.get_for(&key).await.map_err(ServiceError::Pool)?;
            match conn.send_request(request).await {
                Ok(response) => Ok(response.map(|body| PooledBody::new(body, conn, in_flight))),
                Err(e) => {
                    if conn.is_closed() || e.is_closed() || e.is_timeout() {
                        Pooled::mark_broken(&mut conn);
                    }
                    Err(ServiceError::Request(e))
                }
            }
        })
    }
}
