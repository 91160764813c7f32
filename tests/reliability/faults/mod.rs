//! Fault injection under load: 64 tasks call through a
//! pool whose every connection goes through `support::fault::FaultProxy`, to
//! the in-process TCP echo server, to a throwaway PostgreSQL
//! (`--features postgres`) and to an in-process tonic server with the
//! health service (`--features grpc`; the request is a unary health
//! `Check`). For each fault — black hole, reset, a delay per
//! chunk beyond the callers' op timeout, close after N bytes:
//!
//! - while it is on, every call (a checkout, then one request under the
//!   caller's own op timeout) ends with an answer or a typed error within
//!   `CHECKOUT + OP`; the largest overshoot is measured and bounded by
//!   `PAST_DEADLINE_LIMIT`;
//! - once it clears, the pool serves again: the first success comes within
//!   the backoff cap + the connect timeout (+ slack), and each of 64 fresh
//!   callers is served within that + one call's deadline;
//! - afterwards nothing is lent, waiting or dialing and the counts add up.
//!
//! And with `Duration::ZERO`, no caller gets a connection the far end
//! already dropped: 32 idle connections are severed (half-open: no FIN, no
//! RST, so `health` cannot tell), and every one of 64 callers' first
//! request succeeds; the same scenario with `None` lends dead
//! connections (the control that shows the check is what protects).
//!
//! Targets implement [`Target`]. gRPC connections are lent shared: one
//! connection carries several callers (up to the server's
//! `MAX_CONCURRENT_STREAMS`), so a target says how many borrowers fill one of
//! its connections ([`Target::borrowers_per_conn`]) and the severed test
//! holds that many per connection to open its `SEVERED` connections; it
//! counts the severed connections a caller's first request failed on as
//! well as the callers (see `grpc`).
//!
//! Real I/O, real time. The fault windows are fixed lengths of real time (a
//! fault has to be on for a while); every wait for an outcome is a bounded
//! poll; the timed assertions are generous upper bounds.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::Duration;

use connpool::{Manager, Pool, async_trait};
use tokio::time::Instant;

use crate::support;
use crate::support::check_counts;

#[cfg(feature = "grpc")]
mod grpc;
#[cfg(feature = "postgres")]
mod pg;
mod severed;
mod tcp;
mod under_load;

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const TASKS: usize = 64;
const MAX_OPEN: usize = 16;
const CHECKOUT: Duration = ms(400);
/// A caller's own timeout on its request.
const OP: Duration = ms(300);
const CONNECT: Duration = ms(300);
const PING: Duration = ms(100);
const BACKOFF_BASE: Duration = ms(20);
const BACKOFF_CAP: Duration = ms(400);
/// How long each fault stays on.
const FAULT_FOR: Duration = ms(1200);
/// A delay per chunk that no request survives.
const DELAY: Duration = ms(400);
/// Bytes a connection may still carry under `Fault::CloseAfter`.
const CLOSE_AFTER: usize = 100;
/// Upper bound of how far past `CHECKOUT + OP` any call may end.
const PAST_DEADLINE_LIMIT: Duration = ms(500);
/// Slack on the recovery bounds (scheduling on a loaded 2-core machine).
const SLACK: Duration = ms(500);
/// Bound of a wait for something a working pool does in milliseconds.
const WAIT_LIMIT: Duration = Duration::from_secs(5);

/// What a fault test runs against: a server, a manager to reach it through
/// the proxy, and one request. (gRPC: a unary call.)
#[async_trait]
trait Target: Send + Sync + 'static {
    type M: Manager<Key = Self::Key>;
    type Key: Clone + Debug + Send + Sync + 'static;
    /// How the figures name it.
    fn name(&self) -> &'static str;
    /// The real server.
    fn upstream(&self) -> SocketAddr;
    /// A manager and the key that reach the server at `addr` (the proxy).
    fn manager(&self, addr: SocketAddr) -> (Self::M, Self::Key);
    /// One request on `conn`; `n` makes it unique.
    async fn op(conn: &mut <Self::M as Manager>::Connection, n: u64) -> Result<(), String>;
    /// Borrowers that fill one connection (1: lent exclusively).
    fn borrowers_per_conn(&self) -> usize {
        1
    }
    /// Tells connections apart (its local address), where the connection
    /// type tells it.
    fn conn_id(_conn: &<Self::M as Manager>::Connection) -> Option<SocketAddr> {
        None
    }
}

fn builder<T: Target>(
    target: &T,
    addr: SocketAddr,
    health: Option<Duration>,
) -> connpool::Builder<T::M> {
    let (manager, _) = target.manager(addr);
    Pool::builder(manager)
        .max_open(MAX_OPEN)
        .max_connecting(2)
        .checkout_timeout(CHECKOUT)
        .connect_timeout(CONNECT)
        .health_check(health)
        .ping_timeout(PING)
        .backoff(BACKOFF_BASE, BACKOFF_CAP)
}

/// Waits (bounded) until nothing is lent, waiting or dialing.
async fn quiet<M: Manager>(pool: &Pool<M>, keys: &[M::Key]) {
    let start = Instant::now();
    loop {
        let s = pool.state();
        if s.lent == 0 && s.waiting == 0 && s.dialing == 0 && s.pinging == 0 && s.recycling == 0 {
            check_counts(pool, keys);
            return;
        }
        assert!(start.elapsed() < WAIT_LIMIT, "pool never settled: {s:?}");
        tokio::time::sleep(ms(5)).await;
    }
}

/// Runs a test body on a 2-worker runtime of its own, alone in the process
/// (`support::alone`): each test runs 64 callers against real servers with
/// timed bounds; several at once on two cores would only measure each other.
fn serial<F: std::future::Future<Output = ()>>(body: F) {
    let _alone = support::alone();
    support::multi_thread(2, body);
}
