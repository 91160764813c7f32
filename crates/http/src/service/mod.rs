//! [`HttpService`], a per-call [`tower::Service`] over a pool of HTTP
//! connections: of the [`http`](crate) manager (HTTP/1.1, HTTP/2,
//! or either), or of the `grpc` manager, the transport for tonic generated
//! clients.
//!
//! [`HttpService`] checks out a shared handle for each request (the pool's
//! FIFO wait, checkout deadline and backoff apply as for
//! [`Pool::get_for`]), sends the request on it, and **holds the borrow until
//! the response body ends or is dropped**: a streaming call keeps its
//! stream slot for its whole life, a finished one frees it at once. So the
//! pool's count of borrowers on each connection is the number of streams
//! open on it, and a new connection is dialed only when every connection of
//! the key carries as many calls as the server allows
//! (`MAX_CONCURRENT_STREAMS`) or the pool's
//! [`max_borrowers`](connpool_core::Builder::max_borrowers). A connection that
//! failed under a request (closed, draining, timed out) is marked broken
//! and replaced. A request the server did not process (a graceful
//! `GOAWAY` that came before it, `REFUSED_STREAM`) goes again on another
//! connection (the rules: [`HttpService::retries`]).
//!
//! No connection escapes the pool through this service: the handle it
//! borrows never leaves it, so every call is counted.
//!
//! # Deadlines
//!
//! A call can have a deadline, as reqwest's `timeout`: the service's own
//! ([`HttpService::timeout`]; a clone of the service with another deadline
//! serves calls that need one), and over the gRPC manager's pool a call's
//! `grpc-timeout` (tonic's `Request::set_timeout`); the shorter applies.
//! It bounds the whole call: the checkout (under the pool's own checkout
//! deadline too), the request, the response head and the body;
//! past it the call fails with [`HttpError::TimedOut`], which names it.
//! A connection the call leaves in the middle of an exchange is never lent
//! in that state: an HTTP/1.1 one is closed (its late response would be
//! the next request's), an HTTP/2 stream is reset. Three calls in a row
//! that got no response head by their deadline on one HTTP/2 (or gRPC)
//! connection retire it, as a silent one (a partition, a frozen server):
//! it is lent no more, and calls go to a new connection, which after a
//! partition is served as soon as it heals, where the old one resumes
//! only when TCP sends its data again, seconds later. (A response resets
//! the count: a server that is merely slow on some calls keeps its
//! connection.) Without a deadline a call waits as long as its server
//! does: give one to every call whose server might stop answering.
//!
//! Over connections lent exclusively (HTTP/1.1), the borrow is the
//! connection itself: it goes back when the response body was read to its
//! end, and a body dropped before its end closes it (its unread bytes would
//! be the next request's response). A request that met a connection the
//! server had closed while it was idle is sent again on another, when
//! that is safe (the rules: [`HttpService::retries`]).
//!
//! Three ways to pick the connection's key, an [`Origin`]:
//!
//! - [`HttpService::new`]: one origin for every request (a tonic client
//!   of one backend; requests may carry a bare path).
//! - [`HttpService::by_authority`]: each request's URI scheme and
//!   authority (`https://host:port/...`) is its key, so one pool and one
//!   service serve many hosts, each with several connections.
//! - Over a pool of one origin (`Single::new(HttpManager::new(), origin)`),
//!   [`HttpService::new`] with the key `()`, as every connpool service is
//!   built from a pool of one key.
//!
//! Either way a request whose URI says `https` goes only over TLS: to the
//! `https` origin of its host, which a manager without a TLS configuration
//! refuses (its error's `NoTls`) before anything is dialed. `http://h:p`
//! and `https://h:p` are different keys and never share a connection.
//!
//! A tonic client takes the service as it is (tonic implements its
//! `GrpcService` for tower services). Pool with the gRPC manager (feature
//! `grpc`: health checks, gRPC's PING policy): over its pool the service's
//! calls fail with the gRPC status codes a tonic `Channel` gives
//! ([`grpc`](crate::grpc#failures)) and answer with tonic's body. (Over an
//! `HttpManager::http2()` pool for tonic's body type, the errors are
//! [`HttpError`]s, which reach tonic as `UNKNOWN`.)
//!
//! ```no_run
//! use connpool_http::pool::Pool;
//! use connpool_http::grpc::GrpcManager;
//! use connpool_http::service::HttpService;
//! use tonic_health::pb::HealthCheckRequest;
//! use tonic_health::pb::health_client::HealthClient;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::builder(GrpcManager::new()).max_open_per_key(8).build().await?;
//! let mut client = HealthClient::new(HttpService::new(pool, "127.0.0.1:50051"));
//! let reply = client.check(HealthCheckRequest::default()).await?;
//! println!("{:?}", reply.get_ref().status());
//! # Ok(())
//! # }
//! ```
//!
//! [`Pool::get_for`]: connpool_core::Pool::get_for

mod connection;
mod requests;
mod retry;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

#[cfg(feature = "grpc")]
pub(crate) use connection::over_tls_if_asked;
pub(crate) use connection::{BodyOf, HttpConnection, HttpManager, RequestBody, Unsent};
pub use requests::{Everyday, RequestBuilder};

/// The request and response types of the `http` crate, and the body
/// types, so that a request built by hand needs no other dependency.
pub use bytes::Bytes;
pub use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, header};
pub use http_body_util::{Empty, Full};

use super::{HttpError, Origin};
use crate::{HttpBody, Lease};
use connpool_core::{Pool, Pooled, Waiting};
use connpool_tcp::boxed::in_place;
use connpool_tcp::deadline::Deadline;

/// How [`HttpService`] picks a request's key.
#[derive(Clone, Debug)]
enum Route<K> {
    /// One key for every request (its origin, or its `https` origin for
    /// a URI that says so).
    To(K),
    /// The request URI's scheme and authority (port from the scheme if
    /// absent), as this reads it (a pool keyed by origin).
    ByAuthority(fn(&Uri) -> Result<K, HttpError>),
}

/// A cheap-to-clone [`tower::Service`] that sends each request on a pooled
/// HTTP connection (HTTP/2 shared, HTTP/1.1 exclusive) and keeps the
/// connection's place until the response body ends or is dropped. See the [module docs](self).
///
/// It counts its calls in flight (shared by its clones): a call counts from
/// [`call`](tower::Service::call) until its response body ends or is
/// dropped, or it fails. That count is its [`Load`](tower::load::Load), so a
/// balancer over several services sends each call to the least busy.
pub struct HttpService<M: HttpManager> {
    pool: Pool<M>,
    route: Route<M::Key>,
    in_flight: Arc<AtomicUsize>,
    retries: Arc<AtomicU64>,
    deadline: Deadline,
}

impl<M: HttpManager> Clone for HttpService<M> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            route: self.route.clone(),
            in_flight: Arc::clone(&self.in_flight),
            retries: Arc::clone(&self.retries),
            deadline: self.deadline,
        }
    }
}

impl<M: HttpManager> fmt::Debug for HttpService<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpService")
            .field("route", &self.route)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<M: HttpManager> HttpService<M> {
    /// Every request goes to `key`'s host: an origin (`"host:port"`, or
    /// with a scheme: see [`Origin`]), or `()` for a pool of one origin
    /// (`Single::new(HttpManager::new(), origin)`). A request whose URI
    /// has no authority (a bare path, as tonic sends) gets the origin's. A
    /// request whose URI says `https` goes to the `https` origin of that
    /// host, whatever the origin's scheme (a pool of one plaintext origin
    /// refuses it): never in plaintext.
    pub fn new(pool: Pool<M>, key: impl Into<M::Key>) -> Self {
        Self {
            pool,
            route: Route::To(key.into()),
            in_flight: Arc::default(),
            retries: Arc::default(),
            deadline: Deadline::default(),
        }
    }

    /// A deadline for every call, from [`call`](tower::Service::call) to
    /// the end of its response body (as reqwest's `timeout`): see the
    /// [module docs](self#deadlines). Over the gRPC manager's pool, a
    /// call's `grpc-timeout`, if shorter, applies instead. Default: none. A clone of the service is
    /// cheap (it shares the pool and the counts): one with its own
    /// deadline serves calls that need another.
    ///
    /// ```no_run
    /// # use connpool_http::service::HttpService;
    /// # async fn run(service: HttpService<connpool_http::HttpManager>) {
    /// use std::time::Duration;
    /// use tower::ServiceExt;
    ///
    /// let slow = service.clone().timeout(Duration::from_secs(30));
    /// let request = http::Request::get("http://127.0.0.1:8080/report")
    ///     .body(http_body_util::Full::default())
    ///     .unwrap();
    /// let response = slow.oneshot(request).await;
    /// # }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = self.deadline.per_call(timeout);
        self
    }

    /// A clone whose calls share one deadline, `at` (and each its own
    /// [`timeout`](HttpService::timeout), if sooner): several requests of
    /// a request under its budget.
    pub fn deadline(&self, at: impl Into<tokio::time::Instant>) -> Self {
        let mut bound = self.clone();
        bound.deadline = self.deadline.shared(at.into());
        bound
    }

    /// Calls in flight through this service and its clones.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Requests sent again, through this service and its clones, because
    /// the connection they were sent on turned out closed by the server,
    /// or (HTTP/2) the server did not process them.
    ///
    /// On a shared (HTTP/2) connection, a request the server did not
    /// process goes again whatever its method (RFC 9113 §8.7): hyper gave
    /// it back unsent, or its stream was refused (`REFUSED_STREAM`, or a
    /// `GOAWAY` naming a last stream below it: a server restarting
    /// gracefully) and its body can be replayed; at most five times.
    ///
    /// Go's `shouldRetryRequest`: a request is sent again, on another
    /// connection, when it failed on a connection lent exclusively and
    /// *reused* (not fresh), because the connection was closed (hyper's
    /// incomplete message, a canceled or closed dispatch, a reset, a broken
    /// pipe or an early EOF) before any response came, and it is safe to
    /// send twice: hyper gave it back unwritten, or (Go's `isReplayable`)
    /// its method is GET, HEAD, OPTIONS or TRACE or it carries an
    /// `Idempotency-Key` or `X-Idempotency-Key` header, and its body can
    /// be replayed (a `Full<Bytes>`, `Empty<Bytes>` or `String` body,
    /// cloned cheaply; the copy has the method, URI, version and headers,
    /// not the extensions). Again for as long as each attempt meets a
    /// reused connection that turns out closed (each is retired), so a
    /// request that finds every idle connection stale ends on a fresh
    /// dial; a failure on a fresh connection is the caller's. A request
    /// that may not be sent again fails with [`HttpError::NotRetried`],
    /// which says why.
    ///
    /// A fresh connection closed under its first request, before any
    /// response, tells of a server (or a load balancer in front of one)
    /// that accepts connections and answers none: the pool counts it as a
    /// refused dial ([`Pooled::mark_refused`]), so the origin backs off and
    /// is probed (gets fail with `Error::Backoff` meanwhile, or wait for a
    /// probe on its way) instead of a new connection per try.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
    /// The pool the requests borrow from.
    pub fn pool(&self) -> &Pool<M> {
        &self.pool
    }

    fn key(&self, uri: &Uri) -> Result<M::Key, HttpError> {
        match &self.route {
            Route::To(key) => self.pool.manager().route(key, uri),
            Route::ByAuthority(of_uri) => of_uri(uri),
        }
    }
}

impl<M: HttpManager<Key = Origin>> HttpService<M> {
    /// Each request goes to its URI's scheme and authority
    /// (`https://host:port`; without a port, 443 for `https` and 80
    /// otherwise), a key of the pool of its own ([`Origin`]: a URI without
    /// a scheme is dialed as the manager is configured). A request without
    /// an authority fails with [`HttpError::NoAuthority`].
    pub fn by_authority(pool: Pool<M>) -> Self {
        Self {
            pool,
            route: Route::ByAuthority(|uri| {
                Origin::of_uri(uri).ok_or_else(|| HttpError::NoAuthority(uri.to_string()))
            }),
            in_flight: Arc::default(),
            retries: Arc::default(),
            deadline: Deadline::default(),
        }
    }
}

impl<M: HttpManager> tower::load::Load for HttpService<M> {
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

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The call's place in the pool: its connection's handle, its count in
/// the service's calls in flight, and (with a deadline) where to count a
/// deadline that passes while the body is read.
impl<M: HttpManager> Lease for (Pooled<'static, M>, InFlight, Option<(Pool<M>, M::Key)>) {
    fn finished(&mut self) {
        self.0.body_finished();
    }

    fn timed_out(&mut self) {
        if let Some((pool, key)) = &self.2 {
            pool.count_timeout(key, Waiting::Reply);
        }
    }
}

impl<M: HttpManager> tower::Service<Request<BodyOf<M>>> for HttpService<M> {
    /// The response, its body holding the call's place on its connection
    /// until it ends: an [`HttpBody`] (the gRPC manager's: tonic's body,
    /// failing with a `Status`).
    type Response = Response<M::ResponseBody>;
    /// [`HttpError`] (the gRPC manager's: the [`tonic::Status`] a tonic
    /// `Channel` gives, see [`grpc`](crate::grpc)).
    type Error = M::CallError;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    /// Always ready: a call waits for its connection in the pool's FIFO
    /// queue, under the pool's checkout deadline.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BodyOf<M>>) -> Self::Future {
        let pool = self.pool.clone();
        let key = self.key(request.uri());
        let in_flight = InFlight::start(&self.in_flight);
        let retries = Arc::clone(&self.retries);
        let mut limit = self.deadline.start();
        if let Some(own) = M::deadline(request.headers()) {
            let at = tokio::time::Instant::now() + own;
            if limit.is_none_or(|(limit, _)| at < limit) {
                limit = Some((at, own));
            }
        }
        // The exchange is made inside the boxed future, not moved into it:
        // it is large, and a move is a copy of it.
        let Some((at, after)) = limit else {
            return in_place(move || async move {
                M::answer(exchange(pool, key, request, in_flight, retries, None).await)
            });
        };
        in_place(move || async move {
            let call = exchange(pool, key, request, in_flight, retries, Some((at, after)));
            M::answer(
                tokio::time::timeout_at(at, call)
                    .await
                    .unwrap_or(Err(HttpError::TimedOut { after })),
            )
        })
    }
}

/// One call: a connection for `key`, the request sent on it (again on
/// another while it meets stale ones), the response with its body holding
/// the connection. `deadline`: when the body must have ended.
async fn exchange<M: HttpManager>(
    pool: Pool<M>,
    key: Result<M::Key, HttpError>,
    request: Request<BodyOf<M>>,
    in_flight: InFlight,
    retries: Arc<AtomicU64>,
    deadline: Option<(tokio::time::Instant, Duration)>,
) -> Result<Response<HttpBody>, HttpError> {
    let key = key?;
    let mut request = request;
    let mut unprocessed = 0;
    loop {
        let got = match deadline {
            Some((at, after)) => match tokio::time::timeout_at(at, pool.get_for(&key)).await {
                Ok(got) => got,
                Err(_) => {
                    pool.count_timeout(&key, Waiting::Connection);
                    return Err(HttpError::TimedOut { after });
                }
            },
            None => pool.get_for(&key).await,
        };
        let mut conn = got.map_err(|e| HttpError::Pool(Box::new(e)))?;
        // Only an exclusively lent connection lent before can be stale
        // in the way a retry cures; on a shared one, a stream the server
        // did not process may go again (see `retry`).
        let shared = Pooled::is_shared(&conn);
        let reused = !shared && Pooled::uses(&conn) > 1;
        let replay = if reused {
            Some(retry::replay(&request))
        } else if shared && unprocessed < retry::MAX_UNPROCESSED {
            retry::replay_unprocessed(&request).map(Ok)
        } else {
            None
        };
        // The response head by the deadline, or the call ends here, and
        // counts against its connection (see `HttpConnection::note_unanswered`).
        let sending = conn.try_send(request);
        let sent = match deadline {
            Some((at, after)) => {
                let Ok(sent) = tokio::time::timeout_at(at, sending).await else {
                    conn.note_unanswered();
                    pool.count_timeout(&key, Waiting::Reply);
                    return Err(HttpError::TimedOut { after });
                };
                sent
            }
            None => sending.await,
        };
        // A request that failed in a way that leaves its connection
        // unusable: the connection is not lent again.
        if let Err((e, _)) = &sent
            && (conn.is_closed() || e.is_closed() || e.is_timeout())
        {
            Pooled::mark_broken(&mut conn);
        }
        let (error, unsent) = match sent {
            Ok(response) => {
                conn.note_answered();
                let counts = deadline.map(|_| (pool.clone(), key.clone()));
                let lease = Box::new((Pooled::into_owned(conn), in_flight, counts));
                return Ok(response.map(|b| HttpBody::leased(b, lease, deadline)));
            }
            Err(failed) => failed,
        };
        let again = if shared {
            unprocessed < retry::MAX_UNPROCESSED
                && (unsent.is_some() || retry::was_not_processed(&error))
        } else if reused {
            retry::is_stale(&error)
        } else {
            // A new connection closed under its first request: what a load
            // balancer does for a backend that is down. Retrying on new
            // connections would be a connection per try; the key backs off.
            if retry::is_stale(&error) {
                Pooled::mark_refused(&mut conn);
            }
            false
        };
        if !again {
            return Err(HttpError::Request(error));
        }
        unprocessed += u32::from(shared);
        request = match (unsent, replay) {
            (Some(request), _) => request,
            (None, Some(Ok(request))) => request,
            (None, Some(Err(reason))) => {
                return Err(HttpError::NotRetried { error, reason });
            }
            (None, None) => return Err(HttpError::Request(error)),
        };
        Pooled::count_retry(&conn);
        retries.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(?key, error = %error, "request met a connection the server had closed: sent again");
    }
}
