//! [`PostgresManager`], the keyed manager, and [`single`](PostgresManager::single), its form
//! for one database.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::config::{Host, SslMode, TargetSessionAttrs};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Config, NoTls, Socket};

use super::conn::PgConnection;
use super::dial;
use super::error::PgError;
use super::hosts::Hosts;
use super::key::PgKey;
use super::recycling::RecyclingMethod;
use super::session::Session;
use connpool_core::{Health, Manager, Single};

/// The host used when the base configuration names none (neither `host` nor
/// `hostaddr`); tokio-postgres itself would refuse to connect.
const DEFAULT_HOST: &str = "localhost";
/// PostgreSQL's default port, used when the base configuration names none.
const DEFAULT_PORT: u16 = 5432;

/// tokio-postgres's (and libpq's) first keepalive probe: after two hours.
const DRIVER_KEEPALIVE_IDLE: Duration = Duration::from_secs(2 * 60 * 60);
/// The keepalive a configuration gets when it keeps the driver's: the TCP
/// manager's default, 60 s / 10 s / 3.
const KEEPALIVE: (Duration, Duration, u32) = (
    connpool_tcp::TCP_KEEPALIVE_TIME,
    connpool_tcp::TCP_KEEPALIVE_INTERVAL,
    connpool_tcp::TCP_KEEPALIVE_RETRIES,
);
/// Linux's own probe interval and count, for a configuration that sets
/// the first probe's time but not these.
const SYSTEM_KEEPALIVE: (Duration, u32) = (Duration::from_secs(75), 9);

/// `config` with the crate's liveness defaults where it keeps the
/// driver's: tokio-postgres probes a silent server after two hours and
/// never bounds an unacknowledged write, so a server behind a partition
/// holds a query (and the connection) for the kernel's retransmissions,
/// about 15 minutes. A configuration that keeps all of the keepalive
/// defaults gets 60 s / 10 s / 3 (a dead server found within 90 s, as the
/// TCP manager does; one empty segment a minute on an idle connection),
/// and one with keepalive on and no `tcp_user_timeout` gets the time its
/// probes take (90 s by default), so a write unacknowledged that long
/// fails the connection. Anything the configuration sets is kept.
fn with_liveness_defaults(mut config: Config) -> Config {
    if !config.get_keepalives() {
        return config;
    }
    if config.get_keepalives_idle() == DRIVER_KEEPALIVE_IDLE
        && config.get_keepalives_interval().is_none()
        && config.get_keepalives_retries().is_none()
    {
        let (idle, interval, retries) = KEEPALIVE;
        config
            .keepalives_idle(idle)
            .keepalives_interval(interval)
            .keepalives_retries(retries);
    }
    if config.get_tcp_user_timeout().is_none() {
        let interval = config
            .get_keepalives_interval()
            .unwrap_or(SYSTEM_KEEPALIVE.0);
        let retries = config
            .get_keepalives_retries()
            .unwrap_or(SYSTEM_KEEPALIVE.1);
        let probes = config.get_keepalives_idle() + interval * retries;
        config.tcp_user_timeout(probes);
    }
    config
}

/// Makes [`tokio_postgres::Client`]s for a keyed [`Pool`](connpool_core::Pool): one
/// key per database ([`PgKey`]). See the [module docs](super).
///
/// It keeps the base configuration, the base's own key (worked out once,
/// since every dial compares its key with it), the TLS connector and the
/// [`RecyclingMethod`] (`Clean` unless [`with_recycling`](PostgresManager::with_recycling)
/// says otherwise).
///
/// `Tls` is the TLS connector ([`NoTls`] by default); with a real one, the
/// base configuration's `sslmode` decides whether TLS is used.
#[derive(Clone)]
pub struct PostgresManager<Tls = NoTls> {
    base: Config,
    key: PgKey,
    tls: Tls,
    recycling: RecyclingMethod,
    /// Behind a transaction-mode pooler: no statement cache.
    pub(super) pooled: bool,
    /// The configuration's hosts found read-only (shared by clones).
    hosts: Arc<Hosts>,
}

impl PostgresManager<NoTls> {
    /// A manager whose connections use `config` (with the key's fields put
    /// over it), without TLS.
    pub fn new(config: Config) -> Self {
        Self::with_tls(config, NoTls)
    }
}

impl<Tls> PostgresManager<Tls> {
    /// A manager whose connections use `config` (with the key's fields put
    /// over it) and the TLS connector `tls`. Where `config` keeps
    /// tokio-postgres's keepalive defaults (a first probe after 2 hours, no
    /// `tcp_user_timeout`), the crate's apply: keepalive 60 s / 10 s / 3
    /// and `tcp_user_timeout` 90 s, so a server that vanished is found
    /// within 90 s even under a query in flight; what `config` sets is
    /// kept.
    pub fn with_tls(config: Config, tls: Tls) -> Self {
        let config = with_liveness_defaults(config);
        let host = match (config.get_hosts().first(), config.get_hostaddrs().first()) {
            (Some(Host::Tcp(host)), _) => host.clone(),
            #[cfg(unix)]
            (Some(Host::Unix(path)), _) => path.to_string_lossy().into_owned(),
            (None, Some(addr)) => addr.to_string(),
            (None, None) => DEFAULT_HOST.to_owned(),
        };
        let key = PgKey {
            host,
            port: config.get_ports().first().copied().unwrap_or(DEFAULT_PORT),
            dbname: config.get_dbname().map(str::to_owned),
            user: config.get_user().map(str::to_owned),
        };
        Self {
            base: config,
            key,
            tls,
            recycling: RecyclingMethod::default(),
            pooled: false,
            hosts: Arc::default(),
        }
    }

    /// This manager for a server behind a transaction-mode pooler
    /// (PgBouncer's `pool_mode = transaction`, PgCat, Supavisor, Odyssey),
    /// where each transaction, or each statement outside one, may run on
    /// another server connection: no session reset of the pool's
    /// ([`RecyclingMethod::Fast`]: the pooler's `server_reset_query`
    /// owns that), and no statement cache
    /// ([`prepare_cached`](super::PgConnection::prepare_cached) prepares
    /// each time, for use in the same transaction). Outside a transaction,
    /// run statements with parameters through tokio-postgres's typed
    /// queries (`query_typed`, `execute_typed`: an unnamed statement,
    /// parsed, bound and run in one round trip) or `simple_query`; a named
    /// statement (`query` with a `&str`, `prepare`) is parsed on one
    /// server connection and may be run on another, which never heard of
    /// it (`prepared statement "s3" does not exist`). See the [module
    /// docs](super#behind-pgbouncer).
    pub fn transaction_pooling(mut self) -> Self {
        self.recycling = RecyclingMethod::Fast;
        self.pooled = true;
        self
    }

    /// Recycles returned connections with `method` (default:
    /// [`RecyclingMethod::Clean`]; see its docs for what each costs).
    pub fn with_recycling(mut self, method: RecyclingMethod) -> Self {
        self.recycling = method;
        self
    }

    /// How returned connections are recycled.
    pub fn recycling(&self) -> &RecyclingMethod {
        &self.recycling
    }

    /// Whether connections are tracked (see [`RecyclingMethod`]): for the
    /// resetting methods.
    fn tracks(&self) -> bool {
        matches!(
            self.recycling,
            RecyclingMethod::Clean | RecyclingMethod::Always
        )
    }

    /// Whether a session of `config` is plaintext for sure (no TLS
    /// connector, or `sslmode=disable`): the crate dials it itself.
    fn plaintext(config: &Config) -> bool
    where
        Tls: 'static,
    {
        std::any::TypeId::of::<Tls>() == std::any::TypeId::of::<NoTls>()
            || config.get_ssl_mode() == SslMode::Disable
    }

    /// The base configuration's own key: its first host (or hostaddr;
    /// `localhost` if it names neither), its first port (5432 if none), its
    /// database and user.
    pub fn key(&self) -> PgKey {
        self.key.clone()
    }

    /// The base configuration.
    pub fn config(&self) -> &Config {
        &self.base
    }

    /// This manager for the base configuration's database alone
    /// ([`key()`](PostgresManager::key)), with `Key = ()`: pools made with
    /// it use [`Pool::get`](connpool_core::Pool::get) and
    /// [`Builder::initial`](connpool_core::Builder::initial).
    ///
    /// ```no_run
    /// use connpool_postgres::pool::Pool;
    /// use connpool_postgres::PostgresManager;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let manager = "postgresql://postgres@127.0.0.1/app".parse::<PostgresManager>()?;
    /// let pool = Pool::builder(manager.single()).max_open(10).initial(2).build().await?;
    /// let conn = pool.get().await?;
    /// conn.execute("SELECT 1", &[]).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn single(self) -> Single<Self>
    where
        Self: Manager<Key = PgKey>,
    {
        let key = self.key();
        Single::new(self, key)
    }

    /// The configuration a connection of `key` is made with.
    ///
    /// For [`key()`](PostgresManager::key) itself, the base configuration
    /// exactly as given (all its hosts, hostaddrs and ports: a multi-host
    /// base keeps its failover list). For another key of the same host and
    /// port, the base's hosts too, with the key's database and user. For a
    /// key of another host or port, that host and port alone. Everything
    /// else (password, `options`, `application_name`, `sslmode`, timeouts,
    /// TCP keepalive, `target_session_attrs`, channel binding, load
    /// balancing) comes from the base.
    pub fn config_for(&self, key: &PgKey) -> Config {
        if *key == self.key {
            let mut config = self.base.clone();
            if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
                config.host(&key.host);
            }
            return config;
        }
        let base = &self.base;
        let mut config = Config::new();
        if let Some(password) = base.get_password() {
            config.password(password);
        }
        if let Some(options) = base.get_options() {
            config.options(options);
        }
        if let Some(name) = base.get_application_name() {
            config.application_name(name);
        }
        config
            .ssl_mode(base.get_ssl_mode())
            .ssl_negotiation(base.get_ssl_negotiation())
            .keepalives(base.get_keepalives())
            .keepalives_idle(base.get_keepalives_idle())
            .target_session_attrs(base.get_target_session_attrs())
            .channel_binding(base.get_channel_binding())
            .load_balance_hosts(base.get_load_balance_hosts());
        if let Some(d) = base.get_connect_timeout() {
            config.connect_timeout(*d);
        }
        if let Some(d) = base.get_tcp_user_timeout() {
            config.tcp_user_timeout(*d);
        }
        if let Some(d) = base.get_keepalives_interval() {
            config.keepalives_interval(d);
        }
        if let Some(n) = base.get_keepalives_retries() {
            config.keepalives_retries(n);
        }
        if key.host == self.key.host && key.port == self.key.port {
            for host in base.get_hosts() {
                match host {
                    Host::Tcp(host) => config.host(host),
                    #[cfg(unix)]
                    Host::Unix(path) => config.host_path(path),
                };
            }
            for addr in base.get_hostaddrs() {
                config.hostaddr(*addr);
            }
            for port in base.get_ports() {
                config.port(*port);
            }
            if base.get_hosts().is_empty() && base.get_hostaddrs().is_empty() {
                config.host(&key.host);
            }
        } else {
            config.host(&key.host).port(key.port);
        }
        if let Some(dbname) = &key.dbname {
            config.dbname(dbname);
        }
        if let Some(user) = &key.user {
            config.user(user);
        }
        config
    }
}

impl FromStr for PostgresManager<NoTls> {
    type Err = PgError;

    /// Parses a libpq-style connection string, key-value
    /// (`host=… user=… dbname=…`) or URL (`postgresql://user@host/db`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse() {
            Ok(config) => Ok(Self::new(config)),
            Err(driver) => Err(PgError::parsing(driver)),
        }
    }
}

impl<Tls> std::fmt::Debug for PostgresManager<Tls> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `Config`'s own Debug redacts the password.
        f.debug_struct("PostgresManager")
            .field("config", &self.base)
            .field("key", &self.key)
            .field("recycling", &self.recycling)
            .field("transaction_pooling", &self.pooled)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<Tls> Manager for PostgresManager<Tls>
where
    Tls: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    Tls::Stream: Send + 'static,
    Tls::TlsConnect: Send,
    <Tls::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    type Key = PgKey;
    type Connection = PgConnection;
    type Error = PgError;

    /// The key's `Display` form (`user@host:port/dbname`).
    fn key_name(&self, key: &PgKey) -> String {
        key.to_string()
    }

    /// Twice the CPUs this process may use (at least 2), deadpool-postgres's
    /// default for the same reason: a PostgreSQL server takes 100
    /// connections by default (`max_connections`) for all of its clients,
    /// and several instances of a service at a pool's usual default of 100
    /// would overrun it. Set [`max_open`](connpool_core::Builder::max_open)
    /// where the server allows more.
    fn default_max_open(&self) -> Option<usize> {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        Some(2 * cpus)
    }

    async fn connect(&self, key: &PgKey) -> Result<PgConnection, PgError> {
        let config = self.config_for(key);
        // `None` from the tracked dial: no socket opened; tokio-postgres's
        // dial below says why, in its words.
        let tracks = self.tracks();
        if tracks && Self::plaintext(&config) {
            if let Some((client, connection, session, target)) =
                dial::connect(&config, &self.hosts).await?
            {
                let driver = spawn_connection(key, connection);
                return Ok(PgConnection::tracked(client, session)
                    .dialed_at(target, Arc::clone(&self.hosts))
                    .driven_by(driver));
            }
        } else if tracks {
            // Over TLS: tapped above TLS, where the protocol is plain.
            let session = Arc::new(Session::default());
            let tls = dial::TappedTls {
                inner: self.tls.clone(),
                session: Arc::clone(&session),
            };
            let (client, connection) = config.connect(tls).await?;
            let driver = spawn_connection(key, connection);
            if session.is_tapped() {
                session.arm();
                return Ok(PgConnection::tracked(client, session).driven_by(driver));
            }
            // The server refused TLS and the session went on in plaintext,
            // untapped: not tracked.
            return Ok(PgConnection::new(client).driven_by(driver));
        }
        let (client, connection) = config.connect(self.tls.clone()).await?;
        let driver = spawn_connection(key, connection);
        let conn = PgConnection::new(client).driven_by(driver);
        Ok(if self.pooled {
            conn.without_statement_cache()
        } else {
            conn
        })
    }

    /// An empty query; with `target_session_attrs`, `SHOW
    /// transaction_read_only` instead, and a server whose role is no
    /// longer the one asked for fails it (a standby promoted under a
    /// read-only key): the connection's server changed.
    async fn ping(&self, conn: &mut PgConnection) -> Result<(), PgError> {
        ping(conn, self.base.get_target_session_attrs()).await
    }

    /// Its server changed when it said it is no longer what the session
    /// was dialed for: `25006` (a write refused: a primary demoted to a
    /// standby), `57P02`, `57P03` (crashed, starting up), or a ping found
    /// its role changed; then every session of the key made before it is
    /// closed, and the next dial finds the server anew. Else broken when
    /// closed, and in need of a recycle when the borrower changed the
    /// session's state.
    fn health(&self, conn: &mut PgConnection) -> Health {
        if conn.server_changed() {
            conn.report_role();
            Health::ServerChanged
        } else if conn.is_closed() {
            Health::Broken
        } else if self.recycling.needs_recycle(conn) {
            Health::NeedsRecycle
        } else {
            Health::Ready
        }
    }

    async fn recycle(&self, conn: &mut PgConnection) -> Result<(), PgError> {
        self.recycling.run(conn).await
    }

    /// Ends the session: with the client gone, tokio-postgres sends
    /// `Terminate` and closes the socket, at once on a server that
    /// answers. One that cannot within 250 ms (`CLOSE_GRACE`: a silent server, a
    /// reply still awaited from a statement given up on) has its socket
    /// closed: a connection the pool closed keeps no socket and no task,
    /// though a partitioned server learns of it only at the heal.
    async fn close(&self, mut conn: PgConnection) {
        let driver = conn.take_driver();
        drop(conn);
        if let Some(mut driver) = driver
            && tokio::time::timeout(CLOSE_GRACE, &mut driver)
                .await
                .is_err()
        {
            driver.abort();
        }
    }
}

/// [`PostgresManager`]'s ping (and [`SharedPostgres`](super::SharedPostgres)'s):
/// see [`Manager::ping`] there.
pub(super) async fn ping(conn: &PgConnection, wanted: TargetSessionAttrs) -> Result<(), PgError> {
    if wanted == TargetSessionAttrs::Any {
        return Ok(conn.check_connection().await?);
    }
    let answer = conn.simple_query("SHOW transaction_read_only").await?;
    let read_only = dial::read_only_answer(&answer);
    if read_only == (wanted == TargetSessionAttrs::ReadOnly) {
        return Ok(());
    }
    conn.role_changed(read_only);
    Err(PgError::new(if read_only {
        "the server is read-only now (a standby), and the session asks for read-write"
    } else {
        "the server accepts writes now (a primary), and the session asks for read-only"
    }))
}

/// How long a closed connection's session may take to end by itself
/// before its socket is closed under it.
const CLOSE_GRACE: Duration = Duration::from_millis(250);

/// Runs a connection's I/O until the server closes it or the client is
/// dropped (or the manager's `close` ends it).
fn spawn_connection<F>(key: &PgKey, connection: F) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    let key = key.clone();
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(?key, %error, "postgres connection ended with an error");
        }
    })
}
