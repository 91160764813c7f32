//! [`RedisService`]: redis-rs commands on a pool, each on a connection
//! borrowed for it, with one deadline from the checkout to the reply.

use std::fmt;
use std::io;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use tokio::time::Instant;

use super::{RedisConn, RedisKey, RedisManager};
use connpool_core::{Error, Manager, Pool, Pooled, Single, Waiting};
use connpool_tcp::boxed::in_place;
use connpool_tcp::deadline::Deadline;

/// How many times a call sends again a command that a connection refused
/// unsent: once is enough when a failover started (the next connection is
/// to the new master); more would only spin.
const RESENDS: u32 = 3;

/// Why a [`RedisService`] call failed before its command had an answer:
/// no connection, or its deadline. redis-rs's `ConnectionLike` answers
/// with a [`redis::RedisError`]; this is inside it (the inner error of its
/// `io::Error`), and [`ServiceError::of`] finds it, so that retry logic
/// tells a closed pool, a backoff or an `AUTH` failure (`NoConnection`,
/// with the pool's typed error) from a deadline (`TimedOut`). Its message
/// says all, the pool's error included, so its
/// [`source`](std::error::Error::source) is `None`.
///
/// ```
/// # fn classify(e: &connpool_redis::redis::RedisError) -> &'static str {
/// use connpool_redis::ServiceError;
///
/// match ServiceError::of(e) {
///     Some(ServiceError::NoConnection { error, .. }) if error.is_timeout() => "pool timeout",
///     Some(ServiceError::NoConnection { .. }) => "no connection",
///     Some(ServiceError::TimedOut { .. }) => "deadline",
///     Some(_) | None => "the server's answer, or the connection broke",
/// }
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ServiceError {
    /// The pool lent no connection: a failed dial (an `AUTH` the server
    /// refused, a refused connection), the key's backoff, the pool's
    /// checkout timeout, a closed pool.
    NoConnection {
        /// The server, database and user the call was for.
        key: String,
        /// The pool's error.
        error: Box<connpool_core::Error<super::RedisError>>,
    },
    /// The call's deadline passed.
    TimedOut {
        /// The server, database and user the call was for.
        key: String,
        /// The deadline.
        after: Duration,
        /// `"a connection"` (the pool's wait, a health check, a dial) or
        /// `"the reply"`.
        waiting_for: &'static str,
    },
}

impl ServiceError {
    /// The `ServiceError` inside `error`, if a [`RedisService`] call put
    /// one there.
    pub fn of(error: &redis::RedisError) -> Option<&ServiceError> {
        type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
        // redis-rs keeps an I/O error behind an `Arc`, its source.
        let source = std::error::Error::source(error)?;
        let io = match source.downcast_ref::<Shared>() {
            Some(shared) => shared.downcast_ref::<io::Error>()?,
            None => source.downcast_ref::<io::Error>()?,
        };
        io.get_ref()?.downcast_ref::<ServiceError>()
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::NoConnection { key, error } => {
                write!(f, "no connection to {key}: {error}")
            }
            ServiceError::TimedOut {
                key,
                after,
                waiting_for,
            } => write!(
                f,
                "Redis call to {key} timed out: no reply within its deadline of {after:?} (waiting for {waiting_for})"
            ),
        }
    }
}

impl std::error::Error for ServiceError {}

/// Where a call was when its deadline passed.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a connection: the pool's wait, a health check, a dial.
    Checkout,
    /// The command was sent; its reply had not come.
    Reply,
}

/// A pool's manager that [`RedisService`] serves: a [`RedisManager`] (a
/// keyed pool, the service given its key) or its
/// [`single`](RedisManager::single) form (a pool of one key, `()`).
/// Sealed.
pub trait RedisPool:
    Manager<Connection = RedisConn, Error = super::RedisError> + sealed::Sealed
{
    /// The server, database and user `key` names.
    #[doc(hidden)]
    fn target<'a>(&'a self, key: &'a Self::Key) -> &'a RedisKey;
}

impl RedisPool for RedisManager {
    fn target<'a>(&'a self, key: &'a RedisKey) -> &'a RedisKey {
        key
    }
}

impl RedisPool for Single<RedisManager> {
    fn target<'a>(&'a self, _: &'a ()) -> &'a RedisKey {
        self.key()
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::RedisManager {}
    impl Sealed for connpool_core::Single<super::RedisManager> {}
}

/// redis-rs commands over a [`Pool`] of [`RedisManager`] (keyed, or its
/// [`single`](RedisManager::single) form): each command (or
/// pipeline) borrows a connection of the service's key for just that
/// command, and one deadline, [`timeout`](RedisService::timeout), bounds
/// all of it: the wait for a connection, a health check, a dial, the
/// command and its reply (which may take whatever the checkout left: the
/// manager's [`response_timeout`](RedisManager::response_timeout) does not
/// cut it shorter). It is a redis-rs [`ConnectionLike`], cheap to
/// clone, as redis-rs's `ConnectionManager` is: every
/// [`AsyncCommands`](redis::AsyncCommands) method, `query_async` and
/// pipelines work on it.
///
/// Past the deadline a call fails with an I/O error of kind `TimedOut`
/// (`RedisError::is_timeout`) that names the deadline and where the call
/// was: `Redis call to 127.0.0.1:6379/0 timed out: no reply within its
/// deadline of 2s (waiting for a connection)`, or `(waiting for the
/// reply)`. A reply that comes later is read and dropped by the
/// connection; a call cut off while waiting for its reply counts as a
/// missed reply, so a connection whose server stopped answering is
/// replaced after three in a row. A call that gets
/// no connection fails with the pool's error in the message (a failed
/// dial, the key's backoff, a closed pool). Either error carries a
/// [`ServiceError`] ([`ServiceError::of`]), the pool's error typed.
///
/// Without a deadline of its own, the pool's
/// [`checkout_timeout`](connpool_core::Builder::checkout_timeout) bounds
/// the wait for a connection and the manager's `response_timeout` the
/// reply. A clone with another [`timeout`](RedisService::timeout) serves
/// the calls that need one (a `BLPOP key 5` needs more than 5 s).
///
/// A call past its deadline is counted in the pool's counters and metrics
/// by where it was: [`Counters::timeouts`](connpool_core::Counters::timeouts)
/// waiting for a connection, [`Counters::reply_timeouts`](connpool_core::Counters::reply_timeouts)
/// waiting for the reply. For several commands under one budget (a cache
/// miss: `GET`, then `SET`), take a clone bound to one instant with
/// [`deadline`](RedisService::deadline): its calls share it.
///
/// Each call is a borrow of its own: for a sequence that must run on one
/// connection (`WATCH`/`MULTI`/`EXEC` across calls, `SELECT`, pub/sub),
/// borrow a connection of an [exclusive](RedisKey::exclusive) key with
/// [`Pool::get_for`], or send an atomic pipeline
/// (`redis::pipe().atomic()`), which is one call.
///
/// ```no_run
/// use std::time::Duration;
///
/// use connpool_redis::pool::Pool;
/// use connpool_redis::{RedisManager, RedisService};
/// use connpool_redis::redis::AsyncCommands;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager: RedisManager = "redis://127.0.0.1:6379/0".parse()?;
/// let pool = Pool::builder(manager.single()).build().await?;
/// let mut redis = RedisService::new(pool, ()).timeout(Duration::from_secs(2));
/// redis.set::<_, _, ()>("greeting", "hello").await?;
/// let greeting: String = redis.get("greeting").await?;
/// # Ok(())
/// # }
/// ```
pub struct RedisService<M: RedisPool = RedisManager> {
    pool: Pool<M>,
    key: M::Key,
    deadline: Deadline,
}

impl<M: RedisPool> Clone for RedisService<M> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            key: self.key.clone(),
            deadline: self.deadline,
        }
    }
}

impl<M: RedisPool> RedisService<M> {
    /// Commands on connections of `key` from `pool` (`()` for a
    /// [`single`](RedisManager::single) pool), without a deadline of their
    /// own (see [`timeout`](RedisService::timeout)).
    pub fn new(pool: Pool<M>, key: M::Key) -> Self {
        Self {
            pool,
            key,
            deadline: Deadline::default(),
        }
    }

    /// One deadline for every call, from the checkout to the reply.
    /// Default: none (the pool's `checkout_timeout`, then the manager's
    /// `response_timeout`). A clone with its own serves the calls that
    /// need another.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = self.deadline.per_call(timeout);
        self
    }

    /// A clone whose calls share one deadline, `at` (and each its own
    /// [`timeout`](RedisService::timeout), if sooner): several commands of
    /// a request under the request's budget.
    ///
    /// ```no_run
    /// # use connpool_redis::{RedisService, RedisManager};
    /// # async fn run(cache: RedisService<connpool_redis::pool::Single<RedisManager>>) -> redis::RedisResult<()> {
    /// use std::time::Duration;
    /// use connpool_redis::redis::AsyncCommands;
    /// use tokio::time::Instant;
    ///
    /// let mut cache = cache.deadline(Instant::now() + Duration::from_millis(500));
    /// let page: Option<String> = cache.get("page:/").await?;
    /// if page.is_none() {
    ///     cache.set_ex::<_, _, ()>("page:/", "<html>…</html>", 60).await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn deadline(&self, at: impl Into<Instant>) -> Self {
        let mut bound = self.clone();
        bound.deadline = self.deadline.shared(at.into());
        bound
    }

    /// The pool the calls borrow from.
    pub fn pool(&self) -> &Pool<M> {
        &self.pool
    }

    /// The key whose connections the calls borrow.
    pub fn key(&self) -> &M::Key {
        &self.key
    }

    /// The server, database and user the calls go to.
    fn target(&self) -> &RedisKey {
        self.pool.manager().target(&self.key)
    }

    /// Runs `send` on a connection borrowed for it, under the deadline. A
    /// command a connection refused unsent (its server changed: a failover
    /// started, the master moved) is sent on another, which the pool dials
    /// to the master the Sentinels name once it is known, within the
    /// deadline (at most [`RESENDS`] times).
    async fn call<T>(&self, send: impl Sends<T>) -> redis::RedisResult<T> {
        let at = self.deadline.start();
        let mut resent = 0;
        loop {
            let got = match at {
                None => self.pool.get_for(&self.key).await,
                Some((at, after)) => {
                    match tokio::time::timeout_at(at, self.pool.get_for(&self.key)).await {
                        Ok(got) => got,
                        Err(_) => {
                            self.pool.count_timeout(&self.key, Waiting::Connection);
                            return Err(self.timed_out(after, Phase::Checkout));
                        }
                    }
                }
            };
            let mut conn: Pooled<'_, M> = got.map_err(|e| self.no_connection(e))?;
            let reply = match at {
                None => send.send(&mut conn).await,
                Some((at, after)) => {
                    // The reply may take what is left: the handle's own
                    // response timeout meanwhile, so a reply that does not
                    // come counts as missed, as any other. Nothing left:
                    // the deadline passed before the connection came.
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.pool.count_timeout(&self.key, Waiting::Connection);
                        return Err(self.timed_out(after, Phase::Checkout));
                    }
                    send.send(&mut Within::new(&mut conn, left)).await
                }
            };
            match reply {
                Err(_) if conn.refused && resent < RESENDS => resent += 1,
                Err(e) if e.is_timeout() && at.is_some() => {
                    let after = at.map(|(_, after)| after).unwrap_or_default();
                    self.pool.count_timeout(&self.key, Waiting::Reply);
                    return Err(self.timed_out(after, Phase::Reply));
                }
                reply => return reply,
            }
        }
    }

    fn timed_out(&self, after: Duration, phase: Phase) -> redis::RedisError {
        let waiting_for = match phase {
            Phase::Checkout => "a connection",
            Phase::Reply => "the reply",
        };
        let key = self.target().to_string();
        let error = ServiceError::TimedOut {
            key,
            after,
            waiting_for,
        };
        io::Error::new(io::ErrorKind::TimedOut, error).into()
    }

    fn no_connection(&self, e: Error<super::RedisError>) -> redis::RedisError {
        let kind = if e.is_timeout() {
            io::ErrorKind::TimedOut
        } else {
            io::ErrorKind::NotConnected
        };
        let key = self.target().to_string();
        let error = ServiceError::NoConnection {
            key,
            error: Box::new(e),
        };
        io::Error::new(kind, error).into()
    }
}

impl<M: RedisPool> fmt::Debug for RedisService<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisService")
            .field("key", self.target())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// A borrowed handle whose reply timeout is a call's time left, until
/// dropped (then the manager's again, as the pool lends it).
struct Within<'a>(&'a mut RedisConn);

impl<'a> Within<'a> {
    fn new(conn: &'a mut RedisConn, left: Duration) -> Self {
        conn.waits_for(left);
        Self(conn)
    }
}

impl std::ops::Deref for Within<'_> {
    type Target = RedisConn;

    fn deref(&self) -> &RedisConn {
        self.0
    }
}

impl std::ops::DerefMut for Within<'_> {
    fn deref_mut(&mut self) -> &mut RedisConn {
        self.0
    }
}

impl Drop for Within<'_> {
    fn drop(&mut self) {
        let timeout = self.0.response_timeout();
        self.0.waits_for(timeout);
    }
}

/// What a call sends: a command, or a pipeline's commands (from `offset`,
/// `count` replies), as often as it is refused unsent.
trait Sends<T> {
    fn send<'c>(&'c self, conn: &'c mut RedisConn) -> RedisFuture<'c, T>;
}

impl Sends<Value> for &Cmd {
    fn send<'c>(&'c self, conn: &'c mut RedisConn) -> RedisFuture<'c, Value> {
        conn.req_packed_command(self)
    }
}

impl Sends<Vec<Value>> for (&Pipeline, usize, usize) {
    fn send<'c>(&'c self, conn: &'c mut RedisConn) -> RedisFuture<'c, Vec<Value>> {
        let (pipeline, offset, count) = *self;
        conn.req_packed_commands(pipeline, offset, count)
    }
}

impl<M: RedisPool> ConnectionLike for RedisService<M> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        in_place(|| self.call(cmd))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        in_place(|| self.call((pipeline, offset, count)))
    }

    fn get_db(&self) -> i64 {
        self.target().db
    }
}
