//! [`Resolve`]: how a name becomes the addresses behind it.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;

/// What a name resolved to: its addresses and, where the resolver knows
/// it, how long the answer may be trusted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The addresses, each a key of the pool.
    pub addrs: Vec<SocketAddr>,
    /// The answer's time to live (a DNS record's TTL): the next resolution
    /// comes no later than this. `None`: the interval alone decides.
    pub ttl: Option<Duration>,
}

/// Resolves a `host:port` name into addresses. Implement it to use another
/// resolver (one that reports TTLs, a service registry) or, in tests, to
/// script the answers.
///
/// A resolver is user code: a panic or an error keeps the addresses of
/// the last good answer, and so does an answer with no addresses.
#[async_trait]
pub trait Resolve: Send + Sync + 'static {
    /// The addresses `name` (`host:port`) stands for now.
    async fn resolve(&self, name: &str) -> io::Result<Resolved>;
}

/// The system resolver, through tokio's `lookup_host`: no TTL, so the
/// interval alone decides when to resolve again.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SystemResolver;

#[async_trait]
impl Resolve for SystemResolver {
    async fn resolve(&self, name: &str) -> io::Result<Resolved> {
        let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host(name).await?.collect();
        addrs.sort_unstable();
        addrs.dedup();
        Ok(Resolved { addrs, ttl: None })
    }
}
