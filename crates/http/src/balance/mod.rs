//! Many backends behind one name: the name resolved into addresses, each a
//! key of the pool, and tower's power-of-two-choices balancer spreading
//! calls over them.
//!
//! A service often runs as many replicas behind one DNS name. A pool keyed
//! by the name would open its connections to whichever replicas the first
//! dials reached and keep them; [`Balanced`] instead resolves the name
//! now and every `interval` (sooner when the resolver reports a shorter
//! TTL), keys the pool by each address, and lets
//! [`tower::balance::p2c::Balance`] send each call to the less loaded of
//! two addresses picked at random, the load being each address's calls in
//! flight ([`HttpService`](crate::service::HttpService)'s [`Load`](tower::load::Load)).
//!
//! - **A new address** starts taking calls with the first resolution that
//!   returns it (within one interval). With
//!   [`min_idle`](connpool_core::Builder::min_idle) set, its connections are dialed
//!   at once, before the first call picks it.
//! - **An address that disappears** from the answers drains: it takes no
//!   new call, its idle connections are closed at once
//!   ([`Pool::close_key`](connpool_core::Pool::close_key)) and its lent ones when
//!   their calls end, and `min_idle` does not refill it. A call sent to it
//!   just before it left may still get a connection (a new dial, or a
//!   slot it waited for in the queue): that one is closed too, once the
//!   balancer has let go of the address and the call has its response.
//! - **A resolution that fails** (or returns no address, or panics) keeps
//!   the last good answer, so a resolver outage does not empty the set.
//! - **A backend that fails calls** (errors, 5xx responses, gRPC
//!   `UNAVAILABLE`) again and again while its connections stay up is
//!   ejected: it takes no call for a while, longer each time, then is
//!   back on its own ([`Ejection`]: by default 5 failures in a row, 30 s
//!   growing to 300 s, at most 10 % of the addresses out, at least one).
//!   Without it, a backend that fails fast would draw *more* calls, its
//!   calls in flight being fewer.
//! - **A backend that dies** costs the calls in flight on it, and those
//!   sent to it before its first failed dial: its connections are broken
//!   and closed, its key backs off, and while it does, its address is
//!   not ready, so the balancer sends every call to the others, while
//!   its readiness check waits for the pool's probes of the key (within
//!   the probe delay of each failure): the first probe that connects
//!   makes it ready again. Put a retry layer in front where those few
//!   calls matter.
//!
//! How it works with the pool's other settings:
//!
//! - [`max_open_per_key`](connpool_core::Builder::max_open_per_key) is per
//!   replica: size it for one replica's share of the load (with 8 replicas
//!   and 400 calls in flight at most, 50 calls per replica: one HTTP/2
//!   connection at a stream limit of 100). `max_open` caps the whole fleet.
//! - [`max_lifetime`](connpool_core::Builder::max_lifetime) (with jitter) closes
//!   long-lived connections over time, so even a fleet behind a load
//!   balancer (one address) spreads again after it changes. Re-resolution
//!   is what moves the calls when the addresses themselves change.
//! - When the pool is the wrong tool: many processes, each with a pool of
//!   `max_open` connections to a database, can exceed the server's
//!   `max_connections` (PostgreSQL's default is 100); past that, put a
//!   server-side pooler (PgBouncer, pgcat) in front and give each process a
//!   small pool.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use connpool_http::pool::Pool;
//! use connpool_http::balance::Balanced;
//! use connpool_http::HttpManager;
//! use tonic_health::pb::HealthCheckRequest;
//! use tonic_health::pb::health_client::HealthClient;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = HttpManager::http2().with_body::<tonic::body::Body>();
//! let pool = Pool::builder(manager).max_open_per_key(4).build().await?;
//! let every = Duration::from_secs(30);
//! let service = Balanced::new(pool, "backend.internal:50051", every);
//! let mut client = HealthClient::new(service);
//! client.check(HealthCheckRequest::default()).await?;
//! # Ok(())
//! # }
//! ```

mod discover;
mod outliers;
mod replica;
mod resolve;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::util::BoxService;
use tower::{BoxError, Service, ServiceExt};

use discover::Addresses;
pub use discover::MIN_RESOLVE_INTERVAL;
pub use outliers::Ejection;
use outliers::Outliers;
pub use resolve::Resolve;
use resolve::SystemResolver;

use super::Origin;
use crate::service::{BodyOf, HttpManager};
use connpool_core::Pool;
use connpool_tcp::boxed::in_place;

/// How many calls may queue for the balancer's task before callers wait
/// (`poll_ready`) for room.
const QUEUE: usize = 1024;

type Inner<M> =
    BoxService<Request<BodyOf<M>>, Response<<M as HttpManager>::ResponseBody>, BoxError>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
/// What a call through [`Balanced`] resolves to.
type Called<M> = BoxFuture<Result<Response<<M as HttpManager>::ResponseBody>, BoxError>>;

/// A cheap-to-clone service that spreads calls over the addresses behind a
/// name, each a key of one pool. See the [module docs](self).
///
/// Calls go through a [`Buffer`]: one task runs the balancer and
/// another resolves the name; both end when the last clone is dropped,
/// and every address is then drained as one that left the answers.
pub struct Balanced<M: HttpManager<Key = Origin>> {
    inner: Buffer<Request<BodyOf<M>>, Called<M>>,
    fleet: Arc<Outliers>,
}

impl<M: HttpManager<Key = Origin>> Clone for Balanced<M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            fleet: Arc::clone(&self.fleet),
        }
    }
}

impl<M: HttpManager<Key = Origin>> fmt::Debug for Balanced<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balanced").finish_non_exhaustive()
    }
}

impl<M: HttpManager<Key = Origin>> Balanced<M> {
    /// Spreads calls over the addresses `name` (`host:port`) resolves to,
    /// resolved by the system resolver (tokio's `lookup_host`, which reports
    /// no TTL) now and every `interval`. Spawns its two tasks on the current
    /// runtime.
    pub fn new(pool: Pool<M>, name: impl Into<String>, interval: Duration) -> Self {
        Self::with_resolver(pool, name, SystemResolver, interval)
    }

    /// [`new`](Self::new) with `resolver` instead of the system's: one that
    /// reports TTLs, a service registry, or scripted answers in tests.
    pub fn with_resolver(
        pool: Pool<M>,
        name: impl Into<String>,
        resolver: impl Resolve,
        interval: Duration,
    ) -> Self {
        let fleet = Outliers::new();
        let addresses = Addresses::watch(pool, name, resolver, interval, Arc::clone(&fleet));
        let balance = Balance::new(addresses).map_err(Into::<BoxError>::into);
        let boxed: Inner<M> = BoxService::new(balance);
        let (inner, worker) = Buffer::pair(boxed.map_future(boxed_future::<M, _>), QUEUE);
        tokio::spawn(worker);
        Self { inner, fleet }
    }

    /// Ejects addresses whose calls fail as `ejection` says, instead of
    /// [`Ejection::default`] (for every clone: they share one balancer).
    pub fn with_ejection(self, ejection: Ejection) -> Self {
        self.fleet.set(ejection);
        self
    }

    /// How many times an address was ejected (see [`Ejection`]).
    pub fn ejections(&self) -> u64 {
        self.fleet.ejections()
    }
}

fn boxed_future<M, F>(f: F) -> Called<M>
where
    M: HttpManager<Key = Origin>,
    F: Future<Output = Result<Response<<M as HttpManager>::ResponseBody>, BoxError>>
        + Send
        + 'static,
{
    Box::pin(f)
}

impl<M: HttpManager<Key = Origin>> Service<Request<BodyOf<M>>> for Balanced<M> {
    type Response = Response<<M as HttpManager>::ResponseBody>;
    type Error = BoxError;
    type Future = Called<M>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<BodyOf<M>>) -> Self::Future {
        in_place(|| self.inner.call(request))
    }
}
