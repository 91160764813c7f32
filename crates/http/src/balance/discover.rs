//! [`Addresses`]: the addresses behind a name as a [`Discover`] stream of
//! per-address services, kept current by a task that resolves the name
//! again and again.
//!
//! [`Discover`]: tower::discover::Discover

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::mpsc;
use tower::discover::Change;

use super::outliers::Outliers;
use super::replica::Replica;
use super::resolve::Resolve;
use crate::Origin;
use crate::service::{HttpManager, HttpService};
use connpool_core::Pool;
use futures_util::FutureExt;

/// The shortest wait between two resolutions, whatever a TTL says (a TTL
/// of 0 would otherwise make the task spin).
pub const MIN_RESOLVE_INTERVAL: Duration = Duration::from_secs(1);

/// The services of the addresses behind a name, as tower's balancers
/// discover them: a [`Change::Insert`] for each new address (a [`Replica`]:
/// an [`HttpService`] keyed by it), a [`Change::Remove`] for each one gone.
/// Dropping it stops the task that resolves the name.
pub(crate) struct Addresses<M: HttpManager<Key = Origin>> {
    changes: mpsc::UnboundedReceiver<Change<SocketAddr, Replica<M>>>,
}

impl<M: HttpManager<Key = Origin>> fmt::Debug for Addresses<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Addresses").finish_non_exhaustive()
    }
}

impl<M: HttpManager<Key = Origin>> Stream for Addresses<M> {
    type Item = Result<Change<SocketAddr, Replica<M>>, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().changes.poll_recv(cx).map(|c| c.map(Ok))
    }
}

impl<M: HttpManager<Key = Origin>> Addresses<M> {
    /// Resolves `name` with `resolver` now and then every `interval` (or
    /// sooner, when an answer's TTL is shorter; never more often than
    /// [`MIN_RESOLVE_INTERVAL`]), in a task spawned on the current runtime,
    /// which ends when the stream is dropped.
    pub(crate) fn watch(
        pool: Pool<M>,
        name: impl Into<String>,
        resolver: impl Resolve,
        interval: Duration,
        fleet: Arc<Outliers>,
    ) -> Self {
        let (tx, changes) = mpsc::unbounded_channel();
        let watch = Watch {
            pool,
            name: name.into(),
            resolver: Arc::new(resolver),
            interval: interval.max(MIN_RESOLVE_INTERVAL),
            current: BTreeSet::new(),
            tx,
            fleet,
        };
        tokio::spawn(watch.run());
        Self { changes }
    }
}

/// The resolving task's state.
struct Watch<M: HttpManager<Key = Origin>, R> {
    pool: Pool<M>,
    name: String,
    resolver: Arc<R>,
    interval: Duration,
    current: BTreeSet<SocketAddr>,
    tx: mpsc::UnboundedSender<Change<SocketAddr, Replica<M>>>,
    fleet: Arc<Outliers>,
}

impl<M: HttpManager<Key = Origin>, R: Resolve> Watch<M, R> {
    async fn run(mut self) {
        loop {
            let resolving = std::panic::AssertUnwindSafe(self.resolver.resolve(&self.name));
            let ttl = match resolving.catch_unwind().await {
                Ok(Ok((addrs, ttl))) if !addrs.is_empty() => {
                    self.apply(addrs);
                    ttl
                }
                Ok(Ok(_)) => {
                    tracing::warn!(name = %self.name, "resolved to no addresses; keeping the last answer");
                    None
                }
                Ok(Err(e)) => {
                    tracing::warn!(name = %self.name, error = %e, "resolving failed; keeping the last answer");
                    None
                }
                Err(panic) => {
                    let panic = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("a panic with a non-string payload");
                    tracing::error!(key = ?self.name, %panic, "Resolve::resolve panicked");
                    None
                }
            };
            let wait = ttl
                .map_or(self.interval, |ttl| ttl.min(self.interval))
                .max(MIN_RESOLVE_INTERVAL);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.tx.closed() => return,
            }
        }
    }

    /// Announces what changed.
    fn apply(&mut self, addrs: Vec<SocketAddr>) {
        let next: BTreeSet<SocketAddr> = addrs.into_iter().collect();
        for gone in self.current.difference(&next) {
            tracing::debug!(name = %self.name, addr = %gone, "address left");
            let _ = self.tx.send(Change::Remove(*gone));
            // Drain: no new borrower (the balancer dropped its service),
            // idle connections closed now, lent ones as they come back, and
            // no refill for `min_idle`.
            let key = Origin::from(*gone);
            let _ = self.pool.set_min_idle_for(&key, 0);
            self.pool.close_key(&key);
        }
        for new in next.difference(&self.current) {
            tracing::debug!(name = %self.name, addr = %new, "address joined");
            let min_idle = self.pool.limits().min_idle;
            if min_idle > 0 {
                // Tracked from now on, so the pool dials its `min_idle`
                // before the first call picks it.
                let _ = self.pool.set_min_idle_for(&Origin::from(*new), min_idle);
            }
            let replica =
                Replica::new(HttpService::new(self.pool.clone(), *new), *new, &self.fleet);
            let _ = self.tx.send(Change::Insert(*new, replica));
        }
        self.current = next;
    }
}
