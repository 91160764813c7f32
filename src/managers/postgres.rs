//! A PostgreSQL manager: pools [`tokio_postgres::Client`]s, keyed by database.
//!
//! [`PostgresManager`] is built from a base [`tokio_postgres::Config`] (or a
//! connection string) that carries everything the connections of all keys
//! share: password, `application_name`, `options`, timeouts, TLS mode… Its
//! key, [`PgKey`], names one database: host, port, database name and user.
//! [`PostgresManager::key`] is the base configuration's own key, and
//! [`PgKey::with_dbname`] / [`PgKey::with_user`] derive the keys of other
//! databases, so one pool serves several databases (or servers), each with
//! its own `max_open_per_key` limit, idle list and dial backoff. For a pool
//! of one database, [`SingleDatabase`] has `Key = ()` and works with
//! [`Pool::get`](crate::Pool::get).
//!
//! Connections are made with [`NoTls`] unless a TLS connector is given to
//! [`PostgresManager::with_tls`]. Each dial spawns the connection's I/O task
//! on the pool's runtime; the task ends (its error logged at `debug`) when
//! the server closes the connection or the client is dropped.
//!
//! | [`Manager`] method | here |
//! |---|---|
//! | `connect` | [`config_for(key)`](PostgresManager::config_for)`.connect(tls)`, then spawns the connection task |
//! | `ping` | [`Client::check_connection`]: one `Sync` message, answered by `ReadyForQuery` |
//! | `is_broken` | [`Client::is_closed`]: the connection task has ended (server gone, fatal error) |
//! | `close` | drops the client: its connection task sends `Terminate` and closes the socket |
//!
//! # An abandoned ping leaves the client usable
//!
//! The pool drops a ping future at its timeout or when the getter waiting on
//! it gives up. With tokio-postgres that never leaves a client mid-exchange:
//! a request is handed whole to the connection task, synchronously, on the
//! first poll of the query's future, and the connection task keeps reading
//! the answers of a request whose caller went away and discards them, so
//! every later request still gets its own answers. A dropped ping only
//! delays the client's next request until the server has answered the
//! `Sync` (the `postgres` integration tests drop a ping and a running query
//! mid-flight and use the client again). `is_broken` therefore only reports
//! a client whose connection is gone.
//!
//! # What the pool does not do
//!
//! It does not reset session state between borrowers: `SET`s, temporary
//! tables, prepared statements and an unfinished transaction opened with a
//! bare `BEGIN` stay with the connection. Use [`Client::transaction`]
//! (rolled back when dropped), or [`Pooled::mark_broken`](crate::Pooled::mark_broken)
//! a connection left in a state the next borrower must not see.
//!
//! ```no_run
//! use connpool::Pool;
//! use connpool::managers::postgres::PostgresManager;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager: PostgresManager =
//!     "host=127.0.0.1 user=postgres dbname=app application_name=my-service".parse()?;
//! let app = manager.key();
//! let reports = app.clone().with_dbname("reports");
//! let pool = Pool::builder(manager)
//!     .max_open(20)
//!     .max_open_per_key(10)
//!     .build()
//!     .await?;
//!
//! let conn = pool.get_for(&app).await?;
//! let row = conn.query_one("SELECT 1 + 1", &[]).await?;
//! assert_eq!(row.get::<_, i32>(0), 2);
//! drop(conn); // back to the pool
//!
//! let conn = pool.get_for(&reports).await?;
//! conn.batch_execute("SELECT 1").await?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use tokio_postgres::config::Host;
use tokio_postgres::error::{DbError, SqlState};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config, NoTls, Socket};

use crate::manager::Manager;

/// The host used when the base configuration names none (neither `host` nor
/// `hostaddr`); tokio-postgres itself would refuse to connect.
const DEFAULT_HOST: &str = "localhost";
/// PostgreSQL's default port, used when the base configuration names none.
const DEFAULT_PORT: u16 = 5432;

/// A failed dial or ping of a [`PostgresManager`]: a [`tokio_postgres::Error`]
/// whose message says what happened.
///
/// The driver's own message is a category (`db error`, `error connecting to
/// server`), with the server's words only in its `source`. This one carries
/// them: for an error the server sent, its message and SQLSTATE
/// (`database "nope" does not exist (SQLSTATE 3D000)`), with its detail and
/// hint if any; otherwise the driver's message and its causes
/// (`error connecting to server: Connection refused (os error 111)`). So its
/// [`source`](std::error::Error::source) is `None`: the text is all here.
/// No password is ever in it.
///
/// ```no_run
/// use connpool::managers::postgres::PostgresManager;
/// use connpool::Pool;
/// use tokio_postgres::error::SqlState;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager: PostgresManager = "host=127.0.0.1 user=postgres dbname=nope".parse()?;
/// let pool = Pool::builder(manager.single()).build().await?;
/// let err = pool.get().await.unwrap_err();
/// // connect failed: database "nope" does not exist (SQLSTATE 3D000)
/// eprintln!("{err}");
/// assert_eq!(err.manager_error().and_then(|e| e.code()), Some(&SqlState::INVALID_CATALOG_NAME));
/// # Ok(())
/// # }
/// ```
pub struct PgError {
    driver: tokio_postgres::Error,
    /// From parsing a connection string: an unknown option's name is not
    /// shown, since it may be a piece of an unquoted password with a space.
    parsing: bool,
}

impl PgError {
    /// The server's SQLSTATE, if the server sent the error.
    pub fn code(&self) -> Option<&SqlState> {
        self.driver.code()
    }

    /// The server's error with all its fields, if the server sent it.
    pub fn as_db_error(&self) -> Option<&DbError> {
        self.driver.as_db_error()
    }

    /// The driver's error.
    pub fn driver(&self) -> &tokio_postgres::Error {
        &self.driver
    }

    /// The driver's error, for good.
    pub fn into_driver(self) -> tokio_postgres::Error {
        self.driver
    }
}

impl From<tokio_postgres::Error> for PgError {
    fn from(driver: tokio_postgres::Error) -> Self {
        PgError {
            driver,
            parsing: false,
        }
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(db) = self.driver.as_db_error() {
            // Not the severity (`FATAL`, `ERROR`): what a log line needs is
            // what happened.
            write!(f, "{} (SQLSTATE {})", db.message(), db.code().code())?;
            if let Some(detail) = db.detail() {
                write!(f, "; detail: {detail}")?;
            }
            if let Some(hint) = db.hint() {
                write!(f, "; hint: {hint}")?;
            }
            return Ok(());
        }
        // The driver's category, then each cause that says something new.
        let mut last = self.driver.to_string();
        f.write_str(&last)?;
        let mut cause = std::error::Error::source(&self.driver);
        while let Some(e) = cause {
            let text = e.to_string();
            if self.parsing && text.starts_with("unknown option") {
                return f.write_str(
                    ": unknown option (not shown: it may be part of an unquoted password; \
                     quote values with spaces)",
                );
            }
            if !last.contains(&text) {
                write!(f, ": {text}")?;
            }
            last = text;
            cause = e.source();
        }
        Ok(())
    }
}

impl fmt::Debug for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The driver's Debug: its kind and cause (never the configuration).
        // (Only the display of a connection string's unknown option could
        // show a piece of a password: Debug shows the kind alone then.)
        let mut d = f.debug_struct("PgError");
        if self.parsing {
            d.field("driver", &self.driver.to_string());
        } else {
            d.field("driver", &self.driver);
        }
        d.finish()
    }
}

impl std::error::Error for PgError {}

/// Names one database: the key of a [`PostgresManager`] pool.
///
/// Connections of a key are made with the manager's base configuration,
/// with this key's host, port, database and user put over it (see
/// [`PostgresManager::config_for`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PgKey {
    /// A host name or IP address, or (starting with `/`) the directory of the
    /// server's Unix socket.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// The database; `None`: the server's default (the user's name).
    pub dbname: Option<String>,
    /// The role to log in as; `None`: the user running this process.
    pub user: Option<String>,
}

impl PgKey {
    /// This key with another database (same server and user).
    pub fn with_dbname(mut self, dbname: impl Into<String>) -> Self {
        self.dbname = Some(dbname.into());
        self
    }

    /// This key with another user (same server and database).
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }
}

/// Makes [`tokio_postgres::Client`]s for a keyed [`Pool`](crate::Pool): one
/// key per database ([`PgKey`]). See the [module docs](self).
///
/// `Tls` is the TLS connector ([`NoTls`] by default); with a real one, the
/// base configuration's `sslmode` decides whether TLS is used.
#[derive(Clone)]
pub struct PostgresManager<Tls = NoTls> {
    base: Config,
    key: PgKey,
    tls: Tls,
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
    /// over it) and the TLS connector `tls`.
    pub fn with_tls(config: Config, tls: Tls) -> Self {
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
        }
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

    /// A pool manager for the base configuration's database alone, with
    /// `Key = ()`.
    pub fn single(self) -> SingleDatabase<Tls> {
        SingleDatabase { manager: self }
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
            Err(driver) => Err(PgError {
                driver,
                parsing: true,
            }),
        }
    }
}

impl<Tls> std::fmt::Debug for PostgresManager<Tls> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `Config`'s own Debug redacts the password.
        f.debug_struct("PostgresManager")
            .field("config", &self.base)
            .field("key", &self.key)
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
    type Connection = Client;
    type Error = PgError;

    async fn connect(&self, key: &PgKey) -> Result<Client, PgError> {
        let (client, connection) = self.config_for(key).connect(self.tls.clone()).await?;
        let key = key.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(?key, %error, "postgres connection ended with an error");
            }
        });
        Ok(client)
    }

    async fn ping(&self, conn: &mut Client) -> Result<(), PgError> {
        Ok(conn.check_connection().await?)
    }

    fn is_broken(&self, conn: &mut Client) -> bool {
        conn.is_closed()
    }
}

/// A [`PostgresManager`] for one database, with `Key = ()`: pools made with
/// it use [`Pool::get`](crate::Pool::get) and
/// [`Builder::initial`](crate::Builder::initial). Made by
/// [`PostgresManager::single`]; connects to the base configuration's key.
///
/// ```no_run
/// use connpool::Pool;
/// use connpool::managers::postgres::PostgresManager;
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
#[derive(Debug, Clone)]
pub struct SingleDatabase<Tls = NoTls> {
    manager: PostgresManager<Tls>,
}

impl<Tls> SingleDatabase<Tls> {
    /// The keyed manager inside.
    pub fn manager(&self) -> &PostgresManager<Tls> {
        &self.manager
    }
}

#[async_trait]
impl<Tls> Manager for SingleDatabase<Tls>
where
    Tls: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    Tls::Stream: Send + 'static,
    Tls::TlsConnect: Send,
    <Tls::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    type Key = ();
    type Connection = Client;
    type Error = PgError;

    async fn connect(&self, _: &()) -> Result<Client, PgError> {
        self.manager.connect(&self.manager.key).await
    }

    async fn ping(&self, conn: &mut Client) -> Result<(), PgError> {
        self.manager.ping(conn).await
    }

    fn is_broken(&self, conn: &mut Client) -> bool {
        self.manager.is_broken(conn)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio_postgres::config::{ChannelBinding, LoadBalanceHosts, SslMode, TargetSessionAttrs};

    use super::*;

    fn full_config() -> Config {
        let mut c = Config::new();
        c.host("db1.example")
            .host("db2.example")
            .port(6543)
            .user("alice")
            .password("secret")
            .dbname("app")
            .options("-c statement_timeout=5s")
            .application_name("svc")
            .ssl_mode(SslMode::Disable)
            .connect_timeout(Duration::from_secs(3))
            .tcp_user_timeout(Duration::from_secs(4))
            .keepalives(false)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(6))
            .keepalives_retries(7)
            .target_session_attrs(TargetSessionAttrs::ReadWrite)
            .channel_binding(ChannelBinding::Disable)
            .load_balance_hosts(LoadBalanceHosts::Random);
        c
    }

    #[test]
    fn base_key_uses_the_base_config_as_given() {
        let m = PostgresManager::new(full_config());
        let key = m.key();
        assert_eq!(
            key,
            PgKey {
                host: "db1.example".into(),
                port: 6543,
                dbname: Some("app".into()),
                user: Some("alice".into()),
            }
        );
        assert_eq!(m.config_for(&key), full_config());
    }

    #[test]
    fn other_database_keeps_every_base_setting() {
        let m = PostgresManager::new(full_config());
        let mut expected = full_config();
        expected.dbname("reports").user("bob");
        let key = m.key().with_dbname("reports").with_user("bob");
        assert_eq!(m.config_for(&key), expected);
    }

    #[test]
    fn other_server_replaces_the_hosts() {
        let m = PostgresManager::new(full_config());
        let key = PgKey {
            host: "/run/postgresql".into(),
            port: 5433,
            dbname: None,
            user: None,
        };
        let c = m.config_for(&key);
        assert_eq!(c.get_hosts(), &[Host::Unix("/run/postgresql".into())]);
        assert_eq!(c.get_ports(), &[5433]);
        assert_eq!(c.get_dbname(), None);
        assert_eq!(c.get_user(), None);
        assert_eq!(c.get_password(), Some(&b"secret"[..]));
        assert_eq!(c.get_application_name(), Some("svc"));
        assert_eq!(c.get_keepalives_retries(), Some(7));
    }

    #[test]
    fn no_host_means_localhost() {
        let m: PostgresManager = "user=postgres".parse().unwrap();
        let key = m.key();
        assert_eq!((key.host.as_str(), key.port), ("localhost", 5432));
        let c = m.config_for(&key);
        assert_eq!(c.get_hosts(), &[Host::Tcp("localhost".into())]);
        let c = m.config_for(&key.with_dbname("other"));
        assert_eq!(c.get_hosts(), &[Host::Tcp("localhost".into())]);
        assert_eq!(c.get_dbname(), Some("other"));
    }

    #[test]
    fn no_password_in_debug() {
        for dsn in [
            "host=h user=u password=s3cr3t dbname=d",
            "postgresql://u:s3cr3t@h/d",
            "host=h password='s3cr3t' options='-c search_path=x'",
        ] {
            let m: PostgresManager = dsn.parse().unwrap();
            let shown = format!("{m:?} {:?}", m.clone().single());
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
        for bad in [
            "host=h password=my s3cr3t=x",
            "host=h password='s3cr3t",
            "host=h password=s3cr3t port=x",
        ] {
            let e = bad.parse::<PostgresManager>().unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(shown.contains("invalid connection string"), "{shown}");
        }
    }

    #[test]
    fn hostaddr_only_base() {
        let m: PostgresManager = "hostaddr=127.0.0.1 port=5999 user=u".parse().unwrap();
        let key = m.key();
        assert_eq!((key.host.as_str(), key.port), ("127.0.0.1", 5999));
        let c = m.config_for(&key.with_dbname("d"));
        assert!(c.get_hosts().is_empty());
        assert_eq!(
            c.get_hostaddrs(),
            &["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(c.get_ports(), &[5999]);
    }
}
