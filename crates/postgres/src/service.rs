//! [`PgService`]: one statement per call over a pool, with one deadline
//! from the checkout to the result, a cancel request sent to the server
//! for a statement past it.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, SimpleQueryMessage, ToStatement};

use super::conn::PgConnection;
use super::error::{PgError, Phase};
use connpool_core::{Manager, Pool, Pooled, Waiting};
use connpool_tcp::deadline::Deadline;

/// How long the cancel request of a statement past its deadline may take
/// (a new connection to the server, and one message): a server that does
/// not take it by then is gone or frozen, and the connection is retired
/// anyway.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// A statement's parameters.
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// One statement per call over a [`Pool`] of PostgreSQL connections (a
/// [`PostgresManager`](super::PostgresManager)'s, keyed or
/// [`single`](super::PostgresManager::single), or a user's manager of
/// [`PgConnection`]s), with one deadline,
/// [`timeout`](PgService::timeout), from the checkout (a wait, a health
/// check, a dial) to the statement's result. Its methods are
/// [`Client`](tokio_postgres::Client)'s, failing with [`PgError`]; cheap
/// to clone (clones share the pool; a clone with another deadline serves
/// the calls that need one).
///
/// Past the deadline a call fails with a [`PgError`] that
/// [`is_timeout`](PgError::is_timeout) and names the deadline and where
/// the call was (`waiting for a connection`, or `waiting for the
/// statement`; a statement past it: that a cancel request is sent). For
/// a statement past it a **cancel request is sent to the server**
/// (PostgreSQL's, from a task of its own, within 5 s: a server that is
/// frozen or gone may never act on it; a statement the server did cancel
/// ends with SQLSTATE `57014`) and its connection is retired, never lent
/// again: its session is not in a known state until the statement has
/// ended, and a cancel request that lands late would cancel whatever the
/// session runs then.
///
/// A call past its deadline is counted in the pool's counters and
/// metrics by where it was: [`Counters::timeouts`](connpool_core::Counters::timeouts)
/// waiting for a connection, [`Counters::reply_timeouts`](connpool_core::Counters::reply_timeouts)
/// waiting for the statement.
///
/// For several statements under one budget (a request's), take a clone
/// bound to one instant with [`deadline`](PgService::deadline): its calls
/// share it. For several statements on one session (a transaction), check
/// out a connection with [`Pool::get_for`] (the pool's `checkout_timeout`
/// bounds that wait).
///
/// ```no_run
/// use std::time::Duration;
///
/// use connpool_postgres::pool::Pool;
/// use connpool_postgres::{PgService, PostgresManager};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager: PostgresManager = "host=127.0.0.1 user=postgres dbname=app".parse()?;
/// let pool = Pool::builder(manager.single()).build().await?;
/// let db = PgService::new(pool, ()).timeout(Duration::from_secs(2));
/// let row = db.query_one("SELECT count(*) FROM users WHERE active", &[]).await?;
/// let active: i64 = row.get(0);
/// # Ok(())
/// # }
/// ```
pub struct PgService<M: Manager> {
    pool: Pool<M>,
    key: M::Key,
    deadline: Deadline,
}

impl<M: Manager> Clone for PgService<M> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            key: self.key.clone(),
            deadline: self.deadline,
        }
    }
}

impl<M: Manager> fmt::Debug for PgService<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgService")
            .field("key", &self.key)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<M> PgService<M>
where
    M: Manager<Connection = PgConnection, Error = PgError>,
{
    /// Statements on connections of `key` (`()` for a
    /// [`single`](super::PostgresManager::single) pool), without a deadline
    /// of their own.
    pub fn new(pool: Pool<M>, key: M::Key) -> Self {
        Self {
            pool,
            key,
            deadline: Deadline::default(),
        }
    }

    /// One deadline for every call, from the checkout to the statement's
    /// result. Default: none (the pool's `checkout_timeout` bounds the
    /// checkout; a statement waits as long as its server).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = self.deadline.per_call(timeout);
        self
    }

    /// A clone whose calls share one deadline, `at` (and each its own
    /// [`timeout`](PgService::timeout), if sooner): several statements of a
    /// request under the request's budget.
    ///
    /// ```no_run
    /// # use connpool_postgres::{PgService, PostgresManager};
    /// # async fn run(db: PgService<connpool_postgres::pool::Single<PostgresManager>>) -> Result<(), connpool_postgres::PgError> {
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    ///
    /// let db = db.deadline(Instant::now() + Duration::from_secs(1));
    /// let user = db.query_one("SELECT id FROM users WHERE name = $1", &[&"ada"]).await?;
    /// let id: i32 = user.get(0);
    /// db.execute("UPDATE users SET seen = now() WHERE id = $1", &[&id]).await?;
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

    /// [`Client::query`](tokio_postgres::Client::query).
    pub async fn query<T>(&self, statement: &T, params: Params<'_>) -> Result<Vec<Row>, PgError>
    where
        T: ?Sized + ToStatement + Sync,
    {
        self.call(async |conn| conn.query(statement, params).await)
            .await
    }

    /// [`Client::query_one`](tokio_postgres::Client::query_one).
    pub async fn query_one<T>(&self, statement: &T, params: Params<'_>) -> Result<Row, PgError>
    where
        T: ?Sized + ToStatement + Sync,
    {
        self.call(async |conn| conn.query_one(statement, params).await)
            .await
    }

    /// [`Client::query_opt`](tokio_postgres::Client::query_opt).
    pub async fn query_opt<T>(
        &self,
        statement: &T,
        params: Params<'_>,
    ) -> Result<Option<Row>, PgError>
    where
        T: ?Sized + ToStatement + Sync,
    {
        self.call(async |conn| conn.query_opt(statement, params).await)
            .await
    }

    /// [`Client::execute`](tokio_postgres::Client::execute).
    pub async fn execute<T>(&self, statement: &T, params: Params<'_>) -> Result<u64, PgError>
    where
        T: ?Sized + ToStatement + Sync,
    {
        self.call(async |conn| conn.execute(statement, params).await)
            .await
    }

    /// [`Client::simple_query`](tokio_postgres::Client::simple_query).
    pub async fn simple_query(&self, sql: &str) -> Result<Vec<SimpleQueryMessage>, PgError> {
        self.call(async |conn| conn.simple_query(sql).await).await
    }

    /// [`Client::batch_execute`](tokio_postgres::Client::batch_execute).
    pub async fn batch_execute(&self, sql: &str) -> Result<(), PgError> {
        self.call(async |conn| conn.batch_execute(sql).await).await
    }

    /// Runs `statement` on a connection borrowed for it, under the
    /// deadline.
    async fn call<T>(
        &self,
        statement: impl AsyncFnOnce(&PgConnection) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, PgError> {
        let Some((at, after)) = self.deadline.start() else {
            let conn = self.pool.get_for(&self.key).await.map_err(PgError::other)?;
            return Ok(statement(&conn).await?);
        };
        let mut conn: Pooled<'_, M> =
            match tokio::time::timeout_at(at, self.pool.get_for(&self.key)).await {
                Ok(got) => got.map_err(PgError::other)?,
                Err(_) => {
                    self.pool.count_timeout(&self.key, Waiting::Connection);
                    return Err(PgError::timed_out(after, Phase::Checkout));
                }
            };
        match tokio::time::timeout_at(at, statement(&conn)).await {
            Ok(result) => Ok(result?),
            Err(_) => {
                let cancel = conn.canceller();
                tokio::spawn(async move {
                    match tokio::time::timeout(CANCEL_TIMEOUT, cancel).await {
                        Ok(Ok(())) => {
                            tracing::debug!("cancel request sent for a statement past its deadline")
                        }
                        Ok(Err(e)) => tracing::debug!(
                            error = %e,
                            "the cancel request for a statement past its deadline failed"
                        ),
                        Err(_) => tracing::debug!(
                            "the cancel request for a statement past its deadline timed out"
                        ),
                    }
                });
                Pooled::mark_broken(&mut conn);
                self.pool.count_timeout(&self.key, Waiting::Reply);
                Err(PgError::timed_out(after, Phase::Statement))
            }
        }
    }
}
