//! The manager: the factory/close trait a user implements for a kind of connection.

use std::fmt::Debug;
use std::hash::Hash;

use async_trait::async_trait;

/// Makes, checks and closes connections for a [`Pool`](crate::Pool).
///
/// One manager serves every key of a pool: `connect(key)` dials the
/// destination `key` names (a host, an address, a DSN…). A pool with a single
/// destination uses `Key = ()` and gets [`Pool::get`](crate::Pool::get)
/// without a key argument.
///
/// The pool never calls the manager while holding its lock, and never calls
/// `connect` from a getter's task: dials run in tasks of their own, so a getter
/// that gives up does not cancel the dial, and the connection it produces is
/// handed to the next getter or kept idle.
///
/// ```
/// use connpool::{Manager, async_trait};
///
/// struct Numbers;
///
/// #[async_trait]
/// impl Manager for Numbers {
///     type Key = ();
///     type Connection = u64;
///     type Error = std::io::Error;
///
///     async fn connect(&self, _key: &()) -> Result<u64, std::io::Error> {
///         Ok(42)
///     }
/// }
/// ```
#[async_trait]
pub trait Manager: Send + Sync + 'static {
    /// Names a destination. Each key has its own idle list, open count and
    /// wait queues. Cloned once per dial (never on checkout or return).
    type Key: Eq + Hash + Clone + Debug + Send + Sync + 'static;
    /// The pooled connection.
    type Connection: Send + 'static;
    /// What `connect` and `ping` fail with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens a new connection to `key`. Bounded by the pool's `connect_timeout`.
    async fn connect(&self, key: &Self::Key) -> Result<Self::Connection, Self::Error>;

    /// Checks that `conn` still works with a round trip (for example
    /// `SELECT 1`, an HTTP/2 PING, a gRPC health check). The default does
    /// nothing and succeeds. Used by the health check before lending and by
    /// background keepalive.
    ///
    /// The pool drops this future at its timeout (`ping_timeout`,
    /// `keepalive_timeout`) or when the getter waiting on it gives up. If
    /// that can leave the connection mid-exchange (a ping written, its answer
    /// not read), make [`is_broken`](Manager::is_broken) report it: the pool
    /// asks after every failed or abandoned ping, and closes a broken
    /// connection instead of reusing it.
    async fn ping(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        let _ = conn;
        Ok(())
    }

    /// A cheap, synchronous check that `conn` is obviously dead (its peer
    /// closed it, its driver task ended…). Called on every return and on
    /// every checkout from the idle list, outside the pool's lock: it must not
    /// block or do I/O. The default says `false`.
    fn is_broken(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        false
    }

    /// Ends `conn` (a graceful goodbye, if the protocol has one). Runs in a
    /// task of its own; the connection no longer counts against the caps
    /// while it runs. The default drops it.
    async fn close(&self, conn: Self::Connection) {
        drop(conn);
    }
}
