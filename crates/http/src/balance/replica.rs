//! [`Replica`]: one address's service, which a balancer passes over while
//! the pool backs off from its key, or while it is ejected.

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use connpool_core::Pool;
use http::Request;
use tokio::time::Sleep;

use super::outliers::{self, Health, Outliers};
use crate::Origin;
use crate::service::{BodyOf, HttpManager, HttpService};

/// How long a replica whose probe failed waits before it looks again
/// (its next probe waits for the pool's probe of the key if that is near,
/// and fails at once otherwise).
const RECHECK: Duration = Duration::from_millis(50);

/// One address behind the name: its [`HttpService`], and whether a
/// balancer may send it calls. Its load is its calls in flight.
///
/// Once a dial to its address failed, it is not ready until the pool can
/// lend a connection for it again: it checks out a connection itself (a
/// probe, not a user's call) and is ready only if that works. While the
/// pool backs off from the key, that checkout waits for the pool's probe
/// of it when one is near and looks again [`RECHECK`] after failing
/// otherwise, so a backend that comes back is found as soon as by a
/// user's getter, not at the backoff's end. So a
/// dead backend costs the calls that were on it or sent to it before its
/// first failed dial, and no call after.
///
/// Invariant: once the balancer has dropped it (its address left the
/// answers, or the balancer ended) and its last call has its response,
/// its key's connections are closed (`Retire`): a call the balancer sent
/// it just before the address left may have dialed after the drain that
/// the resolution started, and that connection must not stay idle.
pub(crate) struct Replica<M: HttpManager<Key = Origin>> {
    service: HttpService<M>,
    key: Origin,
    probe: Probe,
    retire: Arc<Retire<M>>,
    /// Its calls' outcomes; while it is ejected, it is not ready.
    health: Arc<Health>,
}

/// Drains a key when dropped: no `min_idle` refill, idle connections
/// closed now, lent ones when they come back.
struct Retire<M: HttpManager<Key = Origin>> {
    pool: Pool<M>,
    key: Origin,
}

impl<M: HttpManager<Key = Origin>> Drop for Retire<M> {
    fn drop(&mut self) {
        let _ = self.pool.set_min_idle_for(&self.key, 0);
        self.pool.close_key(&self.key);
    }
}

/// A call's future, holding its replica's [`Retire`] until it is done,
/// and recording its outcome in the replica's [`Health`].
pub(crate) struct Call<M: HttpManager<Key = Origin>> {
    inner: <HttpService<M> as tower::Service<Request<BodyOf<M>>>>::Future,
    _retire: Arc<Retire<M>>,
    health: Arc<Health>,
}

impl<M: HttpManager<Key = Origin>> Future for Call<M> {
    type Output =
        <<HttpService<M> as tower::Service<Request<BodyOf<M>>>>::Future as Future>::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = ready!(self.inner.as_mut().poll(cx));
        self.health.record(
            out.as_ref()
                .is_ok_and(|response| !outliers::failed(response)),
        );
        Poll::Ready(out)
    }
}

/// Where a replica's readiness check stands.
enum Probe {
    /// Nothing under way: look at the key.
    Idle,
    /// Look again when this fires.
    Wait(Pin<Box<Sleep>>),
    /// A checkout under way; `true` when it got a connection.
    Checkout(Pin<Box<dyn Future<Output = bool> + Send>>),
}

impl<M: HttpManager<Key = Origin>> Replica<M> {
    pub(super) fn new(service: HttpService<M>, addr: SocketAddr, fleet: &Arc<Outliers>) -> Self {
        let key = Origin::from(addr);
        let retire = Arc::new(Retire {
            pool: service.pool().clone(),
            key: key.clone(),
        });
        Self {
            service,
            key,
            probe: Probe::Idle,
            retire,
            health: Health::new(fleet),
        }
    }

    /// What to do about the key: nothing (`Idle`), wait, or probe.
    fn look(&self) -> Probe {
        if let Some(until) = self.health.out_until() {
            return Probe::Wait(Box::pin(tokio::time::sleep_until(until)));
        }
        let Some(key) = self.service.pool().key_state(&self.key) else {
            return Probe::Idle;
        };
        if key.backoff_left.is_some() || (key.dial_failures_in_a_row > 0 && key.open == 0) {
            let (pool, key) = (self.service.pool().clone(), self.key.clone());
            Probe::Checkout(Box::pin(async move { pool.get_for(&key).await.is_ok() }))
        } else {
            Probe::Idle
        }
    }
}

impl<M: HttpManager<Key = Origin>> fmt::Debug for Replica<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replica")
            .field("key", &self.key)
            .field("in_flight", &self.service.in_flight())
            .finish_non_exhaustive()
    }
}

impl<M: HttpManager<Key = Origin>> tower::Service<Request<BodyOf<M>>> for Replica<M> {
    type Response = <HttpService<M> as tower::Service<Request<BodyOf<M>>>>::Response;
    type Error = <HttpService<M> as tower::Service<Request<BodyOf<M>>>>::Error;
    type Future = Call<M>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            self.probe = match &mut self.probe {
                Probe::Idle => match self.look() {
                    Probe::Idle => return Poll::Ready(Ok(())),
                    next => next,
                },
                Probe::Wait(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    Probe::Idle
                }
                Probe::Checkout(checkout) => {
                    if ready!(checkout.as_mut().poll(cx)) {
                        self.probe = Probe::Idle;
                        return Poll::Ready(Ok(()));
                    }
                    Probe::Wait(Box::pin(tokio::time::sleep(RECHECK)))
                }
            };
        }
    }

    fn call(&mut self, request: Request<BodyOf<M>>) -> Self::Future {
        Call {
            inner: self.service.call(request),
            _retire: Arc::clone(&self.retire),
            health: Arc::clone(&self.health),
        }
    }
}

impl<M: HttpManager<Key = Origin>> tower::load::Load for Replica<M> {
    type Metric = usize;

    fn load(&self) -> usize {
        self.service.in_flight()
    }
}
