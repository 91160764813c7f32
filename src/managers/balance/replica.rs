//! [`Replica`]: one address's service, which a balancer passes over while
//! the pool backs off from its key.

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::Request;
use tokio::time::Sleep;

use crate::managers::service::{Http2Service, RequestBody, ServiceError};
use crate::managers::tcp::Destination;

/// How often a replica whose key is in backoff, or whose probe failed,
/// looks again.
const BACKOFF_RECHECK: Duration = Duration::from_millis(50);

/// One address behind the name: its [`Http2Service`], and whether a
/// balancer may send it calls. Its load is its calls in flight.
///
/// Once a dial to its address failed, it is not ready until the pool can
/// lend a connection for it again: while the pool backs off from the key it
/// waits, and when the backoff ends it checks out a connection itself (a
/// probe, not a user's call) and is ready only if that works. So a dead
/// backend costs the calls that were on it or sent to it before its first
/// failed dial, and no call after.
pub struct Replica<B: RequestBody> {
    service: Http2Service<B>,
    key: Destination,
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

impl<B: RequestBody> Replica<B> {
    pub(super) fn new(service: Http2Service<B>, addr: SocketAddr) -> Self {
        Self {
            service,
            key: Destination::from(addr),
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

impl<B: RequestBody> fmt::Debug for Replica<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replica")
            .field("key", &self.key)
            .field("in_flight", &self.service.in_flight())
            .finish_non_exhaustive()
    }
}

impl<B: RequestBody> tower::Service<Request<B>> for Replica<B> {
    type Response = <Http2Service<B> as tower::Service<Request<B>>>::Response;
    type Error = ServiceError;
    type Future = <Http2Service<B> as tower::Service<Request<B>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ServiceError>> {
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

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.service.call(request)
    }
}

impl<B: RequestBody> tower::load::Load for Replica<B> {
    type Metric = usize;

    fn load(&self) -> usize {
        self.service.in_flight()
    }
}
