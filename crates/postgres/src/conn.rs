//! [`PgConnection`], the pooled connection: a [`Client`] with its
//! prepared-statement cache.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::OnceCell;
use tokio_postgres::{Client, Statement};

use super::PgError;
use super::hosts::Hosts;
use super::session::Session;
use super::target::Target;

/// A pooled PostgreSQL connection: a [`tokio_postgres::Client`] (it
/// dereferences to it, so `conn.query(…)` works) with a cache of the
/// statements [`prepare_cached`](PgConnection::prepare_cached) prepared on
/// its server session.
///
/// The cache lives as long as the session's statements do. The reset of
/// [`RecyclingMethod::Clean`](super::RecyclingMethod::Clean) keeps them (it
/// deallocates only statements made with SQL's `PREPARE`), so a statement
/// is parsed once per connection, not once per borrower; a
/// [`Custom`](super::RecyclingMethod::Custom) recycle, or a borrower's
/// `DEALLOCATE` or `DISCARD`, empties the cache at the next recycle, so a
/// cached statement never names one the server has forgotten.
#[derive(Debug)]
pub struct PgConnection {
    client: Client,
    cache: StatementCache,
    /// What the connection's tap learns of its session (`None`: not
    /// tracked).
    session: Option<Arc<Session>>,
    /// Where the manager dialed it, when tokio-postgres does not know.
    target: Option<Target>,
    /// What the manager that dialed it learns of its configuration's hosts.
    hosts: Option<Arc<Hosts>>,
    /// The task that drives the connection's socket, when the manager
    /// spawned it: ended by [`Manager::close`](connpool_core::Manager::close)
    /// if the session does not end by itself.
    driver: Option<tokio::task::JoinHandle<()>>,
    /// A ping found the server's role no longer the one the key asks for
    /// (an untracked session has no [`Session`] to say it).
    role_changed: AtomicBool,
    /// Of those, the role found was read-only.
    found_read_only: AtomicBool,
    /// [`prepare_cached`](Self::prepare_cached) caches (not behind a
    /// transaction-mode pooler).
    caches: bool,
}

impl PgConnection {
    /// A connection with an empty statement cache.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: StatementCache::default(),
            session: None,
            target: None,
            hosts: None,
            driver: None,
            role_changed: AtomicBool::new(false),
            found_read_only: AtomicBool::new(false),
            caches: true,
        }
    }

    /// The same, without a statement cache (behind a transaction-mode
    /// pooler).
    pub(super) fn without_statement_cache(mut self) -> Self {
        self.caches = false;
        self
    }

    /// A connection whose session `session` tracks.
    pub(super) fn tracked(client: Client, session: Arc<Session>) -> Self {
        Self {
            session: Some(session),
            ..Self::new(client)
        }
    }

    /// The same, its socket driven by the task `driver`.
    pub(super) fn driven_by(mut self, driver: tokio::task::JoinHandle<()>) -> Self {
        self.driver = Some(driver);
        self
    }

    /// The task that drives its socket, taken out (see `PostgresManager`'s
    /// `close`).
    pub(super) fn take_driver(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        self.driver.take()
    }

    /// The same, dialed by the manager at `target`, one of the hosts
    /// `hosts` keeps.
    pub(super) fn dialed_at(mut self, target: Target, hosts: Arc<Hosts>) -> Self {
        self.target = Some(target);
        self.hosts = Some(hosts);
        self
    }

    /// Asks the server to cancel the statement this connection is running:
    /// PostgreSQL's cancel request, sent in plaintext on a new connection
    /// to the server the connection was dialed to. Use it rather than
    /// `cancel_token().cancel_query(NoTls)`, which fails for the
    /// connections the manager dials itself to track their sessions
    /// (tokio-postgres does not know their address). For a connection over
    /// TLS, `cancel_token().cancel_query(tls)` with your TLS connector
    /// sends it encrypted. As with every cancel request, a statement that
    /// ends first is not affected.
    pub async fn cancel_query(&self) -> Result<(), PgError> {
        self.canceller().await
    }

    /// [`cancel_query`](Self::cancel_query) as a future that owns what it
    /// needs, to send from a task of its own.
    pub(super) fn canceller(&self) -> impl Future<Output = Result<(), PgError>> + Send + 'static {
        let token = self.client.cancel_token();
        let target = self.target.clone();
        async move {
            match target {
                Some(target) => target.cancel(token).await,
                None => Ok(token.cancel_query(tokio_postgres::NoTls).await?),
            }
        }
    }

    /// Whether its server is no longer what it was dialed for: the server
    /// said so (a SQLSTATE of [`SERVER_CHANGED`](super::session::SERVER_CHANGED),
    /// seen on a tracked session), or a ping found its role changed.
    pub(super) fn server_changed(&self) -> bool {
        self.role_changed.load(Ordering::Relaxed)
            || self.session.as_ref().is_some_and(|s| s.server_changed())
    }

    /// A ping found the server's role changed, to read-only or not.
    pub(super) fn role_changed(&self, read_only: bool) {
        self.found_read_only.store(read_only, Ordering::Relaxed);
        self.role_changed.store(true, Ordering::Relaxed);
    }

    /// Tells the manager that dialed it that its server is read-only, if
    /// it refused a write or a ping found it so: the next dials try the
    /// configuration's other hosts first (see [`Hosts`]). Asked where its
    /// server was found changed.
    pub(super) fn report_role(&self) {
        let read_only = self.found_read_only.load(Ordering::Relaxed)
            || self.session.as_ref().is_some_and(|s| s.refused_write());
        if read_only && let (Some(hosts), Some(target)) = (&self.hosts, &self.target) {
            hosts.refused_write(target);
        }
    }

    /// What the connection's tap learned, if its session is tracked.
    pub(super) fn session(&self) -> Option<&Session> {
        self.session.as_deref()
    }

    /// Whether the session is tracked and, as far as its tap saw, in the
    /// state the last reset (or the dial) left it: no statement that may
    /// change session state was sent since, every request was answered,
    /// and no transaction is open. What
    /// [`RecyclingMethod::Clean`](super::RecyclingMethod::Clean) asks
    /// before resetting a returned connection.
    pub fn is_session_clean(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.is_clean())
    }

    /// The statement for `sql`, prepared on the server session: from the cache
    /// (no round trip) if it was prepared since the session was last reset,
    /// else prepared now (a `Parse` round trip) and cached.
    ///
    /// Borrowers that ask for the same uncached statement at once (the
    /// borrowers of a [shared](super::SharedPostgres) connection, or one
    /// borrower's concurrent requests) wait for one `Parse`: a statement is
    /// prepared once per connection.
    ///
    /// Behind a transaction-mode pooler
    /// ([`transaction_pooling`](super::PostgresManager::transaction_pooling))
    /// nothing is cached: the statement is prepared each time, and lives
    /// as long as the transaction it is used in.
    pub async fn prepare_cached(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if !self.caches {
            return self.client.prepare(sql).await;
        }
        let slot = match self.cache.slot(sql) {
            Ok(statement) => return Ok(statement),
            Err(slot) => slot,
        };
        let statement = slot
            .get_or_try_init(|| async {
                let statement = self.client.prepare(sql).await?;
                self.cache.prepared.fetch_add(1, Ordering::Relaxed);
                Ok::<_, tokio_postgres::Error>(statement)
            })
            .await?;
        Ok(statement.clone())
    }

    /// Statements in the cache of
    /// [`prepare_cached`](Self::prepare_cached). Unbounded: a service
    /// prepares a fixed set of statements; one that builds SQL at run time
    /// should not cache it (or [`clear`](Self::clear_statement_cache) it).
    pub fn cached_statements(&self) -> usize {
        self.cache.len()
    }

    /// Statements [`prepare_cached`](Self::prepare_cached) prepared on the
    /// server (its cache misses, each a `Parse` round trip) over the
    /// connection's life.
    pub fn statements_prepared(&self) -> u64 {
        self.cache.prepared.load(Ordering::Relaxed)
    }

    /// Empties the statement cache. A dropped statement that nothing else
    /// holds is closed on the server by tokio-postgres (a `Close` message,
    /// no wait).
    pub fn clear_statement_cache(&self) {
        self.cache.clear();
    }

    /// The client, for good (its statement cache is dropped).
    pub fn into_client(self) -> Client {
        self.client
    }
}

impl Deref for PgConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for PgConnection {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// Where one statement is (being) prepared.
type Slot = Arc<OnceCell<Statement>>;

/// The statements one session prepared through
/// [`PgConnection::prepare_cached`], by SQL text.
#[derive(Debug, Default)]
pub(crate) struct StatementCache {
    /// A slot per SQL text, filled by the first borrower that prepares it
    /// (the others wait for it; a failed `Parse` leaves the slot empty, so
    /// the next ask tries again).
    statements: Mutex<HashMap<String, Slot>>,
    /// Statements prepared (cache misses) since the connection was made.
    prepared: AtomicU64,
}

impl StatementCache {
    /// The cached statement for `sql`, or the slot to prepare it in.
    fn slot(&self, sql: &str) -> Result<Statement, Slot> {
        let mut statements = self.statements.lock();
        match statements.get(sql) {
            Some(slot) => match slot.get() {
                Some(statement) => Ok(statement.clone()),
                None => Err(Arc::clone(slot)),
            },
            None => {
                let slot = Slot::default();
                statements.insert(sql.to_owned(), Arc::clone(&slot));
                Err(slot)
            }
        }
    }

    /// Statements cached.
    fn len(&self) -> usize {
        let statements = self.statements.lock();
        statements.values().filter(|s| s.initialized()).count()
    }

    /// Empties the cache. A dropped statement that nothing else holds is
    /// closed on the server by tokio-postgres (a `Close` message, no wait).
    fn clear(&self) {
        // Dropped outside the lock: a statement's drop sends its `Close`.
        let statements = std::mem::take(&mut *self.statements.lock());
        drop(statements);
    }
}
