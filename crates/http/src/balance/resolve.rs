//! [`Resolve`]: how a name becomes the addresses behind it.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;

/// Resolves a `host:port` name into addresses. Implement it to use another
/// resolver (one that reports TTLs, a service registry) or, in tests, to
/// script the answers.
///
/// A resolver is user code: a panic or an error keeps the addresses of
/// the last good answer, and so does an answer with no addresses.
#[async_trait]
pub trait Resolve: Send + Sync + 'static {
    /// The addresses `name` (`host:port`) stands for now, each a key of
    /// the pool, and the answer's time to live where the resolver knows
    /// it (a DNS record's TTL): the next resolution comes no later than
    /// that. `None`: the interval alone decides.
    async fn resolve(&self, name: &str) -> io::Result<(Vec<SocketAddr>, Option<Duration>)>;
}

/// The system resolver, through tokio's `lookup_host`: no TTL, so the
/// interval alone decides when to resolve again.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SystemResolver;

#[async_trait]
impl Resolve for SystemResolver {
    async fn resolve(&self, name: &str) -> io::Result<(Vec<SocketAddr>, Option<Duration>)> {
        let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host(name).await?.collect();
        addrs.sort_unstable();
        addrs.dedup();
        Ok((addrs, None))
    }
}
