//! [`SharedPostgres`], a manager whose connections are lent to many
//! borrowers at once, and [`SharedPgConnection`], a borrower's handle.

use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_postgres::{Client, Statement};

use super::conn::{PgConnection, StatementCache};
use super::error::PgError;
use super::manager::{PostgresManager, SingleDatabase};
use super::recycling::RecyclingMethod;
use crate::manager::{Lending, Manager};

/// A [`PostgresManager`] (or [`SingleDatabase`]) whose connections are lent
/// *shared*: up to [`max_borrowers`](SharedPostgres::max_borrowers)
/// borrowers hold a handle to one connection at once, and tokio-postgres
/// pipelines their statements on it. Made by [`PostgresManager::shared`]
/// or [`SingleDatabase::shared`]; see the [module docs](super#shared-lending)
/// for which statements may be shared.
///
/// It dials as the manager inside does (configuration, keys, TLS). A shared
/// connection is never recycled (the pool recycles no shared connection,
/// and the session is not tracked); health checks and keepalive ping it
/// with [`Client::check_connection`]; a connection whose
/// [`Client::is_closed`] says it is gone takes no new borrower and is
/// closed when its last one gives it back, and the next borrower gets a
/// new one.
#[derive(Debug, Clone)]
pub struct SharedPostgres<M = PostgresManager> {
    inner: M,
    max_borrowers: usize,
}

impl<M> SharedPostgres<M> {
    /// How many borrowers share one connection at most (clamped to the
    /// pool's own [`max_borrowers`](crate::Builder::max_borrowers)).
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
    /// [`max_borrowers`](crate::Builder::max_borrowers), 100 by default; 0
    /// or 1 lends exclusively). Its [`RecyclingMethod`] no longer applies:
    /// a shared connection is never recycled.
    pub fn shared(self, max_borrowers: usize) -> SharedPostgres<Self> {
        SharedPostgres {
            // `Fast`: the session is not tracked (no reset will ask).
            inner: self.with_recycling(RecyclingMethod::Fast),
            max_borrowers,
        }
    }
}

impl<Tls> SingleDatabase<Tls> {
    /// This manager, its connections lent shared (see
    /// [`PostgresManager::shared`]).
    pub fn shared(self, max_borrowers: usize) -> SharedPostgres<Self> {
        SharedPostgres {
            inner: SingleDatabase {
                manager: self.manager.with_recycling(RecyclingMethod::Fast),
            },
            max_borrowers,
        }
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
            conn: Arc::new(conn),
        })
    }

    async fn ping(&self, conn: &mut SharedPgConnection) -> Result<(), PgError> {
        Ok(conn.check_connection().await?)
    }

    fn is_broken(&self, conn: &mut SharedPgConnection) -> bool {
        conn.is_closed()
    }

    fn lending(&self, _: &SharedPgConnection) -> Lending<SharedPgConnection> {
        Lending::shared(self.max_borrowers)
    }
}

/// A borrower's handle to a shared PostgreSQL connection: it dereferences
/// to the connection's [`Client`] (`&Client`: every method that takes
/// `&self`), with the connection's statement cache
/// ([`prepare_cached`](SharedPgConnection::prepare_cached)), one for all its
/// borrowers. Cloning it is cheap (the pool clones it for each borrower).
///
/// It gives no `&mut Client`, so `Client::transaction` is out of reach:
/// a transaction needs a connection of its own (an exclusive pool).
///
/// When the connection breaks, its borrowers' statements fail with the
/// driver's error: the statement the server was running with what the
/// server said (`terminating connection due to administrator command`),
/// those queued behind it with `connection closed`
/// ([`tokio_postgres::Error::is_closed`]). [`PgError::from`] gives the
/// server's words in its message.
#[derive(Debug, Clone)]
pub struct SharedPgConnection {
    conn: Arc<PgConnection>,
}

impl SharedPgConnection {
    /// The statement for `sql`, prepared once per connection: from the
    /// cache, else prepared now (borrowers asking at once wait for one
    /// `Parse`). See [`PgConnection::prepare_cached`].
    pub async fn prepare_cached(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        self.conn.prepare_cached(sql).await
    }

    /// The connection's statement cache (shared by all its borrowers).
    pub fn statement_cache(&self) -> &StatementCache {
        self.conn.statement_cache()
    }
}

impl Deref for SharedPgConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.conn
    }
}
