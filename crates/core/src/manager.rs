//! The manager: the factory/close trait a user implements for a kind of connection.

use std::fmt::Debug;
use std::hash::Hash;
use std::time::Duration;

use async_trait::async_trait;

use crate::reason::CloseReason;

/// How a connection is lent: exclusively (one borrower at a time, the
/// default) or shared by up to [`max_borrowers`](Lending::max_borrowers)
/// borrowers at once. Returned by [`Manager::lending`].
///
/// A shared connection stays in the pool while it is lent: each borrower gets
/// a handle made by the connection's `Clone` (so a shared connection must be
/// a cheap handle to state shared behind it, like hyper's `SendRequest` or
/// tonic's `Channel`; the clone is made under the pool's lock, so it must not
/// block). The pool clamps the limit to its
/// [`max_borrowers`](crate::Builder::max_borrowers) cap, and treats a limit
/// of 0 or 1 as exclusive.
///
/// Which shared connection of a key takes a borrower: by default an idle one
/// before one that has borrowers, then the least loaded with room, so the
/// load spreads over the connections the key has open.
/// [`fill_first`](Lending::fill_first) does the opposite, for a protocol
/// whose connection carries pipelined commands more cheaply than several
/// connections do: the fullest connection with room, and an idle one only
/// when every connection with borrowers is full.
///
/// ```
/// use connpool::Lending;
///
/// let shared = Lending::<std::sync::Arc<String>>::shared(100);
/// assert_eq!(shared.max_borrowers(), 100);
/// assert!(!shared.fills_first());
/// assert!(shared.fill_first().fills_first());
/// assert_eq!(Lending::<String>::exclusive().max_borrowers(), 1);
/// ```
pub struct Lending<C> {
    max_borrowers: usize,
    /// How a borrower's handle is made (`C::clone`); `None`: exclusive.
    share: Option<Share<C>>,
    fill_first: bool,
    busy: Option<Busy<C>>,
}

/// Makes a borrower's handle to a shared connection.
pub(crate) type Share<C> = fn(&C) -> C;

/// Whether a shared connection would make a new borrower wait behind
/// another's work.
pub(crate) type Busy<C> = fn(&C) -> bool;

impl<C> Lending<C> {
    /// One borrower at a time; the borrower holds the connection itself.
    pub fn exclusive() -> Self {
        Self {
            max_borrowers: 1,
            share: None,
            fill_first: false,
            busy: None,
        }
    }

    /// The fullest shared connection of the key that has room takes the
    /// next borrower, and an idle connection takes one only when every
    /// connection with borrowers is full: the borrowers fill as few
    /// connections as they can, and a spare one empties, rests idle and
    /// closes at its idle timeout.
    ///
    /// For a protocol whose server answers one connection's pipelined
    /// commands more cheaply than the same commands over several
    /// connections: Redis (connpool's `RedisManager` sets it), 64 tasks doing `GET`s on one connection instead of two.
    /// Not for HTTP/2 or gRPC, whose servers serve each connection from its
    /// own task: spreading over the open connections is faster there.
    /// (No effect on exclusive lending.)
    pub fn fill_first(mut self) -> Self {
        self.fill_first = true;
        self
    }

    /// A shared connection for which `busy` says `true` (one borrower holds
    /// it for work that the others' requests would wait behind, such as a
    /// PostgreSQL transaction) takes a new borrower only when the key may
    /// not dial (at its cap, or in backoff) and no dial of it is on its way:
    /// while the pool may open another connection, a getter waits for that
    /// one instead. `busy` is asked under the pool's lock, for each shared
    /// connection of the key a getter could join: it must be cheap and only
    /// read the connection's state (a flag, a lock's state), never block;
    /// a panic counts as not busy. (No effect on exclusive lending.)
    pub fn busy_when(mut self, busy: fn(&C) -> bool) -> Self {
        self.busy = Some(busy);
        self
    }

    /// The [`busy_when`](Lending::busy_when) test, if set.
    pub(crate) fn busy(&self) -> Option<Busy<C>> {
        self.busy
    }

    /// Whether [`fill_first`](Lending::fill_first) was set.
    pub fn fills_first(&self) -> bool {
        self.fill_first
    }

    /// How many borrowers may hold the connection at once (1: exclusive).
    pub fn max_borrowers(&self) -> usize {
        self.share.map_or(1, |_| self.max_borrowers)
    }

    /// The limit clamped to `cap`, and how handles are made if it is above 1.
    pub(crate) fn clamped(&self, cap: usize) -> (usize, Option<Share<C>>) {
        let n = self.max_borrowers.min(cap);
        match self.share {
            Some(share) if n > 1 => (n, Some(share)),
            _ => (1, None),
        }
    }
}

impl<C: Clone> Lending<C> {
    /// Up to `max_borrowers` borrowers at once, each holding its own clone
    /// of the connection.
    pub fn shared(max_borrowers: usize) -> Self {
        Self {
            max_borrowers,
            share: Some(C::clone),
            ..Self::exclusive()
        }
    }
}

impl<C> Clone for Lending<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Lending<C> {}

impl<C> std::fmt::Debug for Lending<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.share.is_none() {
            return f.write_str("Lending::Exclusive");
        }
        let fill = if self.fill_first { ".fill_first()" } else { "" };
        let busy = self.busy.map_or("", |_| ".busy_when(..)");
        write!(f, "Lending::Shared({}){fill}{busy}", self.max_borrowers)
    }
}

/// The pool's liveness settings, as its [`Builder`](crate::Builder) took
/// them, handed to [`Manager::liveness`] when the pool is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_max_missed: u32,
    pub(crate) ping_timeout: Duration,
}

impl Liveness {
    /// [`keepalive_interval`](crate::Builder::keepalive_interval): how long
    /// a connection may be silent before its peer is asked; `None`: never.
    pub fn keepalive_interval(&self) -> Option<Duration> {
        self.keepalive_interval
    }

    /// [`keepalive_max_missed`](crate::Builder::keepalive_max_missed): how
    /// many unanswered asks in a row declare the peer dead.
    pub fn keepalive_max_missed(&self) -> u32 {
        self.keepalive_max_missed
    }

    /// [`ping_timeout`](crate::Builder::ping_timeout): how long one ask
    /// may wait for its answer.
    pub fn ping_timeout(&self) -> Duration {
        self.ping_timeout
    }

    /// The liveness settings of `set`.
    pub(crate) fn of(set: &crate::settings::Settings) -> Self {
        Self {
            keepalive_interval: set.keepalive_interval,
            keepalive_max_missed: set.keepalive_max_missed,
            ping_timeout: set.ping_timeout,
        }
    }
}

/// The liveness settings of a pool built with the defaults: what a
/// manager used before (or without) a pool goes by.
impl Default for Liveness {
    fn default() -> Self {
        Self::of(&crate::settings::Settings::default())
    }
}

/// What [`Manager::health`] says of a connection.
///
/// ```
/// use connpool::Health;
///
/// assert!(Health::ServerChanged.is_broken());
/// assert!(!Health::NeedsRecycle.is_broken());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Fit to be lent again as it is.
    Ready,
    /// Fit to be lent again once [`Manager::recycle`] has reset it (asked of
    /// a connection lent exclusively, on its return; a shared connection is
    /// never recycled).
    NeedsRecycle,
    /// Dead: closed instead of being lent again
    /// ([`closed_broken`](crate::Counters::closed_broken)).
    Broken,
    /// Dead because its server is no longer what its key names: a
    /// PostgreSQL primary demoted to a standby (a write failed with
    /// `25006`), a server restarting after a crash (`57P02`), a Redis master
    /// turned replica (`READONLY`). Then every connection of the key made
    /// before it is closed as [`Pool::close_key`](crate::Pool::close_key)
    /// closes them (idle ones at once, lent ones at their return, dials and
    /// keepalive pings in flight when they end), counted in
    /// [`Counters::key_clears`](crate::Counters::key_clears) and logged at
    /// `warn`, and the next dial finds the server anew (the clear of
    /// MongoDB's connection pools). A report from a connection that such a
    /// clear already retired clears nothing more; one from a connection
    /// dialed since, within the key's failure memory (the backoff cap),
    /// says the dials still reach the wrong server: it is a failed dial
    /// too ([`ConnectError::ServerChanged`](crate::ConnectError::ServerChanged)),
    /// and the key backs off and is probed, one connection at a time. Heeded wherever `health`
    /// is asked: on a return, at a checkout from the idle list, after the
    /// health check before lending, a recycle and a keepalive ping.
    ServerChanged,
    /// Done in the normal course: its server or protocol ended it (an
    /// HTTP/1.1 response with `Connection: close`, an HTTP/2 `GOAWAY`
    /// without error, a WebSocket Close from the server). Closed as a
    /// broken one is, but counted apart
    /// ([`closed_by_server`](crate::Counters::closed_by_server)), so that a
    /// server that closes every connection by design does not read as a
    /// broken one in the counters.
    ClosedByServer,
}

impl Health {
    /// Whether the connection is not to be lent again:
    /// [`Broken`](Health::Broken), [`ServerChanged`](Health::ServerChanged)
    /// or [`ClosedByServer`](Health::ClosedByServer).
    pub fn is_broken(self) -> bool {
        self.close_reason().is_some()
    }

    /// Why a connection in this state is closed, if it is.
    pub(crate) fn close_reason(self) -> Option<CloseReason> {
        match self {
            Health::Ready | Health::NeedsRecycle => None,
            Health::ClosedByServer => Some(CloseReason::ByServer),
            Health::Broken | Health::ServerChanged => Some(CloseReason::Broken),
        }
    }
}

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
/// A panic in any method is contained: in `connect` (or in `health` or
/// `lending` on the connection it just made) it fails that dial with
/// [`ConnectError::Panicked`](crate::ConnectError::Panicked); in `ping` it
/// fails the ping; in `health` or `lending` at checkout or return it
/// makes the connection count as broken (closed, its slot freed); in
/// `close` it ends the close. Each is logged at `error` with the key. The
/// connection's `Clone` (for shared lending) and `Drop` are not covered.
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
    /// wait queues. Cloned once per dial and once per recycle (never on
    /// checkout, nor on a return that does not recycle).
    type Key: Eq + Hash + Clone + Debug + Send + Sync + 'static;
    /// The pooled connection.
    type Connection: Send + 'static;
    /// What `connect` and `ping` fail with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The pool's [`max_open`](crate::Builder::max_open) when its builder
    /// sets none, for a server whose connections are scarce: a PostgreSQL
    /// server takes 100 by default for all of its clients, so
    /// [`PostgresManager`](https://docs.rs/connpool/latest/connpool/managers/postgres/)
    /// asks for twice the CPUs. Asked once, by
    /// [`Pool::builder`](crate::Pool::builder); a panic, or the default
    /// `None`, keeps the pool's own default (100).
    fn default_max_open(&self) -> Option<usize> {
        None
    }

    /// How error messages name `key` (the key of a dial backoff,
    /// [`Error::Backoff`](crate::Error::Backoff)): its `Display` form where
    /// it has one. The default is its `Debug`. Called outside the pool's
    /// lock, only on such an error; a panic falls back to the default.
    fn key_name(&self, key: &Self::Key) -> String {
        format!("{key:?}")
    }

    /// Opens a new connection to `key`. Bounded by the pool's `connect_timeout`.
    async fn connect(&self, key: &Self::Key) -> Result<Self::Connection, Self::Error>;

    /// Checks that `conn` still works with a round trip (for example
    /// `SELECT 1`, an HTTP/2 PING, a gRPC health check). The default does
    /// nothing and succeeds. Used by the health check before lending and by
    /// background keepalive.
    ///
    /// The pool drops this future at its timeout (`ping_timeout`) or when
    /// the getter waiting on it gives up. If
    /// that can leave the connection mid-exchange (a ping written, its answer
    /// not read), make [`health`](Manager::health) report it broken: the pool
    /// asks after every failed or abandoned ping, and closes a broken
    /// connection instead of reusing it.
    async fn ping(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        let _ = conn;
        Ok(())
    }

    /// A cheap, synchronous look at `conn`: whether it can be lent again as
    /// it is ([`Health::Ready`], the default), only after its
    /// [`recycle`](Manager::recycle) ([`Health::NeedsRecycle`]: the borrower
    /// changed its state, as the PostgreSQL manager tracks a session's), or
    /// not at all ([`Health::Broken`]: its peer closed it, its driver task
    /// ended…; [`Health::ServerChanged`]: it broke because its server is no
    /// longer what its key names).
    ///
    /// Called outside the pool's lock on every return, on every checkout
    /// from the idle list and after every ping and recycle: it must not
    /// block or do I/O. A panic says [`Health::Broken`]. The answer that
    /// closes a connection is the one acted on: the close does not ask
    /// again.
    fn health(&self, conn: &mut Self::Connection) -> Health {
        let _ = conn;
        Health::Ready
    }

    /// How `conn` is lent: asked right after a successful `connect` (so the
    /// answer may depend on the handshake, e.g. the peer's HTTP/2
    /// `MAX_CONCURRENT_STREAMS`), and for a shared connection again each
    /// time a borrower gives back its handle (with that handle), so a limit
    /// the peer lowers or raises later is followed. Must be cheap (no I/O).
    /// The default lends every connection exclusively: one borrower at a
    /// time.
    ///
    /// A multiplexed connection (an HTTP/2 connection, a gRPC channel)
    /// returns [`Lending::shared`]: the pool then hands each borrower its own
    /// handle (a clone of the connection), up to that many at once, prefers
    /// an idle connection of the key, then the least-loaded one (or, with
    /// [`Lending::fill_first`], one that has borrowers first), and dials
    /// another one only when every open connection of the key is at its
    /// limit.
    fn lending(&self, conn: &Self::Connection) -> Lending<Self::Connection> {
        let _ = conn;
        Lending::exclusive()
    }

    /// Given the pool's liveness settings once, when the pool is built,
    /// before any dial: for a manager whose connections watch their peer
    /// themselves, so that one schedule, set on the pool's builder, rules
    /// them all (the WebSocket manager's heartbeat while a borrower reads,
    /// the HTTP manager's HTTP/2 PING). A panic is logged at `error`; the
    /// pool is built all the same. The default ignores them.
    fn liveness(&mut self, liveness: &Liveness) {
        let _ = liveness;
    }

    /// Resets `conn` after a borrower gave it back and before it is lent
    /// again or parked (the PostgreSQL manager's session reset), if
    /// [`health`](Manager::health) says [`Health::NeedsRecycle`]: back to
    /// the state of a new connection, so the pool's
    /// [`after_connect`](crate::Builder::after_connect) hook runs again
    /// after it, then its [`after_return`](crate::Builder::after_return)
    /// hook. Runs in a task of its own, off the borrower's path, bounded
    /// with those hooks by `ping_timeout`; meanwhile the connection is *recycling*
    /// (counted in `open`, lent to nobody). An error, a panic or the time
    /// limit closes the connection as broken ([`closed_broken`](crate::Counters::closed_broken)).
    /// Not called for connections lent shared. The default does nothing.
    async fn recycle(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        let _ = conn;
        Ok(())
    }

    /// Ends `conn` (a graceful goodbye, if the protocol has one). Runs in a
    /// task of its own; the connection no longer counts against the caps
    /// while it runs. The default drops it.
    async fn close(&self, conn: Self::Connection) {
        drop(conn);
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A manager for unit tests that build a configuration, a state or a slot
    /// and never dial: one key value (`()`), `u64` connections.
    pub(crate) struct NeverDials;

    #[async_trait]
    impl Manager for NeverDials {
        type Key = ();
        type Connection = u64;
        type Error = std::io::Error;

        async fn connect(&self, _: &()) -> Result<u64, std::io::Error> {
            unreachable!("never dials")
        }
    }
}
