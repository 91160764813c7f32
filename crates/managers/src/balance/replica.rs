//! [`Replica`]: one address's service, which a balancer passes over while
//! the pool backs off from its key.

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::Request;
use tokio::time::Sleep;

use crate::Origin;
use crate::service::{BodyOf, HttpManager, HttpService, ServiceError};

/// How often a replica whose key is in backoff, or whose probe failed,
/// looks again.
const BACKOFF_RECHECK: Duration = Duration::from_millis(50);

/// One address behind the name: its [`HttpService`], and whether a
/// balancer may send it calls. Its load is its calls in flight.
///
/// Once a dial to its address failed, it is not ready until the pool can
/// lend a connection for it again: while the pool backs off from the key it
/// waits, and when the backoff ends it checks out a connection itself (a
/// probe, not a user's call) and is ready only if that works. So a dead
/// backend costs the calls that were on it or sent to it before its first
/// failed dial, and no call after.
pub(crate) struct Replica<M: HttpManager> {
    service: HttpService<M>,
    key: Origin,
    probe: Probe,
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

impl<M: HttpManager> Replica<M> {
    pub(super) fn new(service: HttpService<M>, addr: SocketAddr) -> Self {
        Self {
            service,
            key: Origin::from(addr),
            probe: Probe::Idle,
        }
    }

    /// What to do about the key: nothing (`Idle`), wait, or probe.
    fn look(&self) -> Probe {
        let Some(key) = self.service.pool().key_state(&self.key) else {
            return Probe::Idle;
        };
        if key.in_backoff {
            Probe::Wait(Box::pin(tokio::time::sleep(BACKOFF_RECHECK)))
        } else if key.dial_failures_in_a_row > 0 && key.open == 0 {
            let (pool, key) = (self.service.pool().clone(), self.key.clone());
            Probe::Checkout(Box::pin(async move { pool.get_for(&key).await.is_ok() }))
        } else {
            Probe::Idle
        }
    }
}

impl<M: HttpManager> fmt::Debug for Replica<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replica")
            .field("key", &self.key)
            .field("in_flight", &self.service.in_flight())
            .finish_non_exhaustive()
    }
}

impl<M: HttpManager> tower::Service<Request<BodyOf<M>>> for Replica<M> {
    type Response = <HttpService<M> as tower::Service<Request<BodyOf<M>>>>::Response;
    type Error = ServiceError;
    type Future = <HttpService<M> as tower::Service<Request<BodyOf<M>>>>::Future;

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
                    Probe::Wait(Box::pin(tokio::time::sleep(BACKOFF_RECHECK)))
                }
            };
        }
    }

    fn call(&mut self, request: Request<BodyOf<M>>) -> Self::Future {
        self.service.call(request)
    }
}

impl<M: HttpManager> tower::load::Load for Replica<M> {
    type Metric = usize;

    fn load(&self) -> usize {
        self.service.in_flight()
    }
}
