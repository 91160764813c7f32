//! [`SharedPostgres`], a manager whose connections are lent to many
//! borrowers at once, and [`SharedPgConnection`], a borrower's handle.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tokio::sync::{RwLock, RwLockReadGuard};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, SimpleQueryMessage, Statement, ToStatement};

use super::classify::unshareable;
use super::conn::PgConnection;
use super::error::{PgError, Refusal};
use super::key::PgKey;
use super::manager::PostgresManager;
use super::recycling::RecyclingMethod;
use connpool_core::{Health, Lending, Manager, Single};

/// A [`PostgresManager`] whose connections are lent
/// *shared*: up to [`max_borrowers`](SharedPostgres::max_borrowers)
/// borrowers hold a handle to one connection at once, and tokio-postgres
/// pipelines their statements on it. Made by [`PostgresManager::shared`]
/// ([`single`](SharedPostgres::single) for one database); see the
/// [module docs](super#shared-lending)
/// for which statements may be shared.
///
/// It dials as the manager inside does (configuration, keys, TLS). A shared
/// connection is never recycled by the pool: its session never leaves the
/// clean state but inside a [`SharedTransaction`](super::SharedTransaction), which puts it back
/// itself. Health checks and keepalive ping it with
/// [`Client::check_connection`](tokio_postgres::Client::check_connection);
/// a connection that is gone
/// ([`Client::is_closed`](tokio_postgres::Client::is_closed)) takes no new
/// borrower and is closed when its last one gives it back, and the next
/// borrower gets a new one.
#[derive(Debug, Clone)]
pub struct SharedPostgres<M = PostgresManager> {
    inner: M,
    max_borrowers: usize,
}

impl<M> SharedPostgres<M> {
    /// How many borrowers share one connection at most (clamped to the
    /// pool's own [`max_borrowers`](connpool_core::Builder::max_borrowers)).
    pub fn max_borrowers(&self) -> usize {
        self.max_borrowers
    }

    /// The manager that dials.
    pub fn manager(&self) -> &M {
        &self.inner
    }
}

impl<Tls> PostgresManager<Tls> {
    /// This manager, its connections lent shared by up to `max_borrowers`
    /// borrowers each (the pool caps it with its own
    /// [`max_borrowers`](connpool_core::Builder::max_borrowers), 100 by default; 0
    /// or 1 lends exclusively). Its [`RecyclingMethod`] no longer applies:
    /// a shared connection is never recycled. Its sessions are tracked as
    /// `Clean`'s are (unless behind a transaction-mode pooler), so that a
    /// server that says it is no longer what the key names (`25006`,
    /// `57P02`, `57P03`: see the [module docs](super)) is left as from a
    /// session lent exclusively.
    pub fn shared(self, max_borrowers: usize) -> SharedPostgres<Self> {
        let method = if self.pooled {
            RecyclingMethod::Fast
        } else {
            RecyclingMethod::Clean
        };
        SharedPostgres {
            inner: self.with_recycling(method),
            max_borrowers,
        }
    }
}

impl<Tls> SharedPostgres<PostgresManager<Tls>>
where
    Self: Manager<Key = PgKey>,
{
    /// This manager for the base configuration's database alone, with
    /// `Key = ()` (see [`PostgresManager::single`]).
    pub fn single(self) -> Single<Self> {
        let key = self.inner.key();
        Single::new(self, key)
    }
}

#[async_trait]
impl<M> Manager for SharedPostgres<M>
where
    M: Manager<Connection = PgConnection, Error = PgError>,
{
    type Key = M::Key;
    type Connection = SharedPgConnection;
    type Error = PgError;

    fn key_name(&self, key: &M::Key) -> String {
        self.inner.key_name(key)
    }

    async fn connect(&self, key: &M::Key) -> Result<SharedPgConnection, PgError> {
        let conn = self.inner.connect(key).await?;
        Ok(SharedPgConnection {
            shared: Arc::new(Shared {
                conn,
                gate: Arc::new(RwLock::new(())),
                poisoned: AtomicBool::new(false),
            }),
        })
    }

    async fn ping(&self, conn: &mut SharedPgConnection) -> Result<(), PgError> {
        Ok(conn.shared.conn.check_connection().await?)
    }

    fn health(&self, conn: &mut SharedPgConnection) -> Health {
        if conn.shared.conn.server_changed() {
            conn.shared.conn.report_role();
            Health::ServerChanged
        } else if conn.is_closed() {
            Health::Broken
        } else {
            Health::Ready
        }
    }

    /// Shared, and *busy* while a borrower holds a transaction on it (or
    /// waits to open one): a new borrower's statements would wait for the
    /// whole transaction, so the pool lends it only when it may not open
    /// another connection.
    fn lending(&self, _: &SharedPgConnection) -> Lending<SharedPgConnection> {
        Lending::shared(self.max_borrowers).busy_when(|conn| conn.shared.gate.try_read().is_err())
    }

    /// The inner manager's close, once no borrower holds the connection.
    async fn close(&self, conn: SharedPgConnection) {
        if let Ok(shared) = Arc::try_unwrap(conn.shared) {
            self.inner.close(shared.conn).await;
        }
    }
}

/// A borrower's handle to a shared PostgreSQL connection: the statements
/// of every borrower holding one are pipelined on one session.
///
/// Its methods are [`Client`](tokio_postgres::Client)'s, with the
/// connection's statement cache
/// ([`prepare_cached`](SharedPgConnection::prepare_cached)), one for all its
/// borrowers. Cloning it is cheap (the pool clones it for each borrower).
///
/// # The session stays clean
///
/// Every borrower's statements run in one server session, so none may
/// leave anything in it that another borrower's statement would run under.
/// The SQL of each statement (and of each statement prepared) is read
/// before anything is sent: only queries and writes that run in a
/// transaction of their own and leave nothing behind (`SELECT`,
/// `INSERT`, `UPDATE`, `DELETE`, `WITH`, `VALUES`, `TABLE`, `MERGE`,
/// `SHOW`, `SET LOCAL`, and functions that do not change a setting) are
/// sent; anything else (`BEGIN`/`COMMIT`, `SET`, `set_config`, `LISTEN`,
/// temporary tables, session advisory locks, SQL `PREPARE`, cursors, DDL,
/// `DEALLOCATE`, `DISCARD`) fails with a [`PgError`] that
/// [`is_unshareable`](PgError::is_unshareable) and names the statement,
/// and nothing is sent.
///
/// For those, [`transaction`](SharedPgConnection::transaction) takes the
/// session out of sharing: it waits until the statements already sent are
/// answered, holds the session alone while other borrowers' statements
/// wait, and leaves it clean again (committed or rolled back, and reset if
/// a statement in it could have changed the session) before any other
/// statement is sent.
///
/// What the SQL cannot show is not caught: a function of the user's own
/// that changes a setting (`PERFORM set_config(…, false)`) changes it for
/// every borrower; call it in a transaction.
///
/// When the connection breaks, its borrowers' statements fail with the
/// driver's error: the statement the server was running with what the
/// server said (`terminating connection due to administrator command`),
/// those queued behind it with `connection closed`.
#[derive(Debug, Clone)]
pub struct SharedPgConnection {
    pub(super) shared: Arc<Shared>,
}

/// One shared connection, and the gate that keeps its session clean.
///
/// Invariant: a statement is sent only while its sender holds `gate`:
/// read for a shareable statement (any number at once, pipelined), write
/// for a [`SharedTransaction`](super::SharedTransaction) (alone, after every statement sent before
/// it was answered). The write permit is given up only once the session
/// is clean again, or once `poisoned` is set.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) conn: PgConnection,
    pub(super) gate: Arc<RwLock<()>>,
    /// A transaction could not be ended (its reset failed, or it was
    /// dropped outside a runtime): the session may not be clean, so no
    /// statement is sent on it again and the connection is closed.
    pub(super) poisoned: AtomicBool,
}

impl Shared {
    /// Fails if the session may not be clean.
    pub(super) fn usable(&self) -> Result<(), PgError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(PgError::new(
                "the shared connection is closing: a transaction on it could not be ended",
            ));
        }
        Ok(())
    }
}

/// What a [`SharedPgConnection`]'s methods run: SQL (`str`, `String`),
/// read before it is sent, or a [`Statement`] prepared through the
/// connection (whose SQL was read then). Implemented for those types
/// only, and not nameable outside the crate (a bound, not an API).
pub trait ToSharedStatement: ToStatement + Sync + sealed::Sealed {}

impl ToSharedStatement for str {}
impl ToSharedStatement for String {}
impl ToSharedStatement for Statement {}

pub(super) mod sealed {
    use tokio_postgres::Statement;

    /// The SQL of a statement not yet prepared.
    pub trait Sealed {
        /// `None` for a prepared [`Statement`].
        fn sql(&self) -> Option<&str>;
    }

    impl Sealed for str {
        fn sql(&self) -> Option<&str> {
            Some(self)
        }
    }

    impl Sealed for String {
        fn sql(&self) -> Option<&str> {
            Some(self)
        }
    }

    impl Sealed for Statement {
        fn sql(&self) -> Option<&str> {
            None
        }
    }
}

/// A statement's parameters.
pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The methods a [`SharedPgConnection`] and a [`SharedTransaction`](super::SharedTransaction) both
/// have: each admits its statement (`admit(sql)`: checks it, and holds
/// what it returns while the statement runs), then runs it on the client.
macro_rules! statement_methods {
    () => {
        /// [`Client::query`](tokio_postgres::Client::query).
        pub async fn query<T>(&self, statement: &T, params: Params<'_>) -> Result<Vec<Row>, PgError>
        where
            T: ?Sized + ToSharedStatement,
        {
            let _admitted = self.admit(statement.sql()).await?;
            Ok(self.shared().conn.query(statement, params).await?)
        }

        /// [`Client::query_one`](tokio_postgres::Client::query_one).
        pub async fn query_one<T>(&self, statement: &T, params: Params<'_>) -> Result<Row, PgError>
        where
            T: ?Sized + ToSharedStatement,
        {
            let _admitted = self.admit(statement.sql()).await?;
            Ok(self.shared().conn.query_one(statement, params).await?)
        }

        /// [`Client::query_opt`](tokio_postgres::Client::query_opt).
        pub async fn query_opt<T>(
            &self,
            statement: &T,
            params: Params<'_>,
        ) -> Result<Option<Row>, PgError>
        where
            T: ?Sized + ToSharedStatement,
        {
            let _admitted = self.admit(statement.sql()).await?;
            Ok(self.shared().conn.query_opt(statement, params).await?)
        }

        /// [`Client::execute`](tokio_postgres::Client::execute).
        pub async fn execute<T>(&self, statement: &T, params: Params<'_>) -> Result<u64, PgError>
        where
            T: ?Sized + ToSharedStatement,
        {
            let _admitted = self.admit(statement.sql()).await?;
            Ok(self.shared().conn.execute(statement, params).await?)
        }

        /// [`Client::simple_query`](tokio_postgres::Client::simple_query).
        pub async fn simple_query(&self, sql: &str) -> Result<Vec<SimpleQueryMessage>, PgError> {
            let _admitted = self.admit(Some(sql)).await?;
            Ok(self.shared().conn.simple_query(sql).await?)
        }

        /// [`Client::batch_execute`](tokio_postgres::Client::batch_execute).
        pub async fn batch_execute(&self, sql: &str) -> Result<(), PgError> {
            let _admitted = self.admit(Some(sql)).await?;
            Ok(self.shared().conn.batch_execute(sql).await?)
        }
    };
}
pub(super) use statement_methods;

impl SharedPgConnection {
    fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Checks `sql`, then waits for a read permit, held while the
    /// statement runs.
    async fn admit(&self, sql: Option<&str>) -> Result<RwLockReadGuard<'_, ()>, PgError> {
        if let Some(keyword) = sql.and_then(unshareable) {
            return Err(PgError::unshareable(keyword, Refusal::Session));
        }
        let permit = self.shared.gate.read().await;
        self.shared.usable()?;
        Ok(permit)
    }

    statement_methods!();

    /// [`Client::prepare`](tokio_postgres::Client::prepare).
    pub async fn prepare(&self, sql: &str) -> Result<Statement, PgError> {
        let _permit = self.admit(Some(sql)).await?;
        Ok(self.shared.conn.prepare(sql).await?)
    }

    /// The statement for `sql`, prepared once per connection: from the
    /// cache, else prepared now (borrowers asking at once wait for one
    /// `Parse`). See [`PgConnection::prepare_cached`].
    pub async fn prepare_cached(&self, sql: &str) -> Result<Statement, PgError> {
        let _permit = self.admit(Some(sql)).await?;
        Ok(self.shared.conn.prepare_cached(sql).await?)
    }

    /// Statements in the connection's statement cache (shared by all its
    /// borrowers): [`PgConnection::cached_statements`].
    pub fn cached_statements(&self) -> usize {
        self.shared.conn.cached_statements()
    }

    /// Statements prepared on the server through the cache over the
    /// connection's life: [`PgConnection::statements_prepared`].
    pub fn statements_prepared(&self) -> u64 {
        self.shared.conn.statements_prepared()
    }

    /// Whether the connection is gone (or closing: a transaction on it
    /// could not be ended).
    pub fn is_closed(&self) -> bool {
        self.shared.conn.is_closed() || self.shared.poisoned.load(Ordering::Acquire)
    }
}
