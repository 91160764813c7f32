//! [`RedisManager`], the keyed manager, and [`single`](RedisManager::single), its form for
//! one key.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, ProtocolVersion, RedisConnectionInfo,
};

use super::conn::{RedisConn, Vitals, Watch};
use super::error::RedisError;
use super::key::RedisKey;
use super::sentinel::{Sentinel, Sentinels};
use connpool_core::{Health, Lending, Manager, Single};
use connpool_tcp::observed::Observed;
#[cfg(feature = "tls")]
use connpool_tcp::tls::TlsConfig;
use connpool_tcp::transport::Transport;
use connpool_tcp::{Destination, TcpManager};

/// Default [`response_timeout`](RedisManager::response_timeout): 500 ms,
/// redis-rs's own default. Far above a command's round trip on a healthy
/// server; a hung one (`DEBUG SLEEP`, a long script) fails callers within it.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// Makes redis-rs [`MultiplexedConnection`]s for a keyed [`Pool`](connpool_core::Pool):
/// one key per server, database, user and way of lending. See the
/// [module docs](super).
///
/// | setting | default | why |
/// |---|---|---|
/// | [`shared`](RedisManager::shared) / [`exclusive`](RedisManager::exclusive) | shared by up to `usize::MAX` borrowers (the pool's cap, 100 by default, applies) | a multiplexed connection carries many borrowers' commands at once; Redis has no per-connection limit, the pool's cap keeps one connection's queue bounded |
/// | [`response_timeout`](RedisManager::response_timeout) | 500 ms ([`DEFAULT_RESPONSE_TIMEOUT`]) | a hung server fails callers instead of holding them |
/// | [`reset_on_return`](RedisManager::reset_on_return) | on | an exclusive borrower's `SELECT`, `WATCH`, `MULTI`, subscriptions and name never reach the next one |
/// | [`with_tcp`](RedisManager::with_tcp) | [`TcpManager::new`]: `TCP_NODELAY`, kernel keepalive 60 s / 10 s / 3 | small commands go out at once; a vanished server is found on an idle connection |
#[derive(Clone)]
pub struct RedisManager {
    /// TCP, and TLS if set.
    transport: Transport,
    /// Password, protocol, user and database of the URL.
    info: RedisConnectionInfo,
    key: RedisKey,
    passwords: HashMap<String, Arc<str>>,
    max_borrowers: usize,
    response_timeout: Duration,
    reset_on_return: bool,
    /// The Sentinels that say where the master is, if any.
    sentinels: Option<Arc<Sentinels>>,
}

impl fmt::Debug for RedisManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No password: only whether there is one.
        f.debug_struct("RedisManager")
            .field("key", &self.key)
            .field("password", &self.info.password().map(|_| "<redacted>"))
            .field("users_with_passwords", &self.passwords.keys())
            .field("protocol", &self.info.protocol())
            .field("max_borrowers", &self.max_borrowers)
            .field("response_timeout", &self.response_timeout)
            .field("reset_on_return", &self.reset_on_return)
            .field("tls", &self.is_tls())
            .field("sentinels", &self.sentinels)
            .finish_non_exhaustive()
    }
}

impl FromStr for RedisManager {
    type Err = RedisError;

    /// Parses `redis://[user[:password]@]host[:port][/db][?protocol=resp3]`,
    /// or `rediss://…` (TLS, with the `tls` feature: Mozilla's roots,
    /// certificate and host name verified; [`tls`](RedisManager::tls)
    /// gives other roots).
    fn from_str(url: &str) -> Result<Self, RedisError> {
        Self::from_url(url)
    }
}

impl RedisManager {
    /// A manager for `url` (see [`FromStr`](#impl-FromStr-for-RedisManager)).
    pub fn from_url(url: &str) -> Result<Self, RedisError> {
        let (plain, tls) = match split_scheme(url) {
            Some(("rediss", rest)) => (format!("redis://{rest}"), true),
            Some(("redis", _)) => (url.to_owned(), false),
            _ => {
                return Err(RedisError::Url(
                    "the scheme must be redis:// or rediss://".into(),
                ));
            }
        };
        if tls && plain.contains('#') {
            return Err(RedisError::Url(
                "rediss:// takes no fragment (certificate checks cannot be turned off)".into(),
            ));
        }
        let mut transport = Transport::default();
        if tls && !transport.set_default_tls(&[]) {
            return Err(RedisError::Url(
                "rediss:// needs connpool's `tls` feature".into(),
            ));
        }
        // redis-rs's message names the part that is wrong, never the URL.
        let info = plain
            .as_str()
            .into_connection_info()
            .map_err(|e| RedisError::Url(e.to_string()))?;
        let ConnectionAddr::Tcp(host, port) = info.addr().clone() else {
            return Err(RedisError::Url("a TCP address is needed".into()));
        };
        let redis = info.redis_settings().clone();
        let key = RedisKey {
            host,
            port,
            db: redis.db(),
            user: redis.username().map(str::to_owned),
            exclusive: false,
        };
        Ok(Self {
            transport,
            info: redis,
            key,
            passwords: HashMap::new(),
            max_borrowers: usize::MAX,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            reset_on_return: true,
            sentinels: None,
        })
    }

    /// This manager for the master that Redis Sentinel calls `master`,
    /// found through the Sentinels at `sentinels` (`host:port` each, or
    /// `redis://[user[:password]@]host:port` for a Sentinel that asks for a
    /// login, its `requirepass`, `rediss://…` for one over TLS, dialed with
    /// this manager's TCP setup and TLS configuration; asked in order from
    /// the one that answered last, each within 500 ms): each dial asks
    /// them where the master is
    /// (`SENTINEL get-master-addr-by-name`) and checks that the server
    /// says it is one (`ROLE`). A dial asks the Sentinel the task below
    /// listens to on the task's own connection to it, and dials a Sentinel
    /// only if that one does not answer. A task follows their `+switch-master`
    /// announcements (started at the first dial, ended with the manager),
    /// listening to one Sentinel at a time: after a second of silence it
    /// pings it, and leaves a Sentinel that does not answer within 500 ms
    /// (frozen, or cut off: its socket stays open) for the next one. The
    /// moment a switch is announced, every connection to the old
    /// master refuses further commands (they fail at once, never reach
    /// it), the pool closes them all ([`Health::ServerChanged`]), and
    /// the next dial goes to the new master. A `READONLY` answer (a
    /// master turned replica before anyone said so) does the same. The
    /// URL gives the password, database and protocol; its host and port
    /// are not used. The manager's key names the master: its host is
    /// `master`, its port 0.
    pub fn through_sentinels<S: AsRef<str>>(
        mut self,
        master: &str,
        sentinels: impl IntoIterator<Item = S>,
    ) -> Result<Self, RedisError> {
        let addrs = sentinels
            .into_iter()
            .map(|s| Sentinel::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if addrs.is_empty() {
            return Err(RedisError::Url("no Sentinel given".into()));
        }
        self.key.host = master.to_owned();
        self.key.port = 0;
        self.sentinels = Some(Sentinels::new(addrs, master.to_owned()));
        Ok(self)
    }

    /// The URL's own key: its host, port, database and user, lent as
    /// [`shared`](RedisManager::shared) or
    /// [`exclusive`](RedisManager::exclusive) says.
    pub fn key(&self) -> RedisKey {
        self.key.clone()
    }

    /// Lends the connections of [`key`](RedisManager::key) (and so of a
    /// [`single`](RedisManager::single) pool) to up to `max_borrowers` at
    /// once (the pool clamps it to its own
    /// [`max_borrowers`](connpool_core::Builder::max_borrowers)), as
    /// `PostgresManager::shared` does; shared keys of a keyed pool too.
    /// The default, with `usize::MAX`.
    pub fn shared(mut self, max_borrowers: usize) -> Self {
        self.key.exclusive = false;
        self.max_borrowers = max_borrowers;
        self
    }

    /// Lends the connections of [`key`](RedisManager::key) (and so of a
    /// [`single`](RedisManager::single) pool) to one borrower at a time,
    /// reset when they come back. A keyed pool can mix both: a key says its
    /// own ([`RedisKey::exclusive`]).
    pub fn exclusive(mut self) -> Self {
        self.key.exclusive = true;
        self
    }

    /// How long a command (and the manager's `PING` and reset) waits for
    /// its reply. Default 500 ms. A reply that comes later is read and
    /// dropped; the connection stays in use (a slow server is not a dead
    /// one, and new connections would not be faster).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Whether a connection lent exclusively is reset when it comes back
    /// (`RESET`, then the connection's setup again). Default on; off, the
    /// next borrower gets whatever state the last one left.
    pub fn reset_on_return(mut self, on: bool) -> Self {
        self.reset_on_return = on;
        self
    }

    /// The password of ACL user `user`, for keys naming it (a key of a user
    /// without one uses the URL's password).
    pub fn password_for(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.passwords
            .insert(user.into(), Arc::from(password.into().as_str()));
        self
    }

    /// The TCP dialer: its socket options apply to every connection.
    ///
    /// `TCP_NODELAY` is on by default: each command leaves at once. With it
    /// off (`TcpManager::new().nodelay(false)`, redis-rs 1.x's own
    /// default), the kernel holds a command back until the connection's
    /// earlier data is acknowledged, batching a busy shared connection's
    /// commands: on loopback, where acknowledgements come at once, that
    /// runs more `GET`s per second (`redis_bench --nagle`, see
    /// BENCHMARKS.md); over a network it adds up to a round trip to
    /// commands sent behind others.
    pub fn with_tcp(mut self, tcp: TcpManager) -> Self {
        self.transport.set_tcp(tcp);
        self
    }

    /// TLS with `tls`'s roots and certificates (the server's certificate
    /// must name the key's host), whatever the URL's scheme.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.transport.set_tls(tls, &[]);
        self
    }

    /// Whether connections are made over TLS.
    pub fn is_tls(&self) -> bool {
        self.transport.is_tls()
    }

    /// A pool manager for [`key`](RedisManager::key) alone, with `Key = ()`.
    pub fn single(self) -> Single<Self> {
        let key = self.key.clone();
        Single::new(self, key)
    }

    /// The setup redis-rs runs on a new connection of `key`.
    fn info_for(&self, key: &RedisKey) -> RedisConnectionInfo {
        let mut info = self.info.clone().set_db(key.db);
        if let Some(user) = &key.user {
            info = info.set_username(user);
            if let Some(password) = self.passwords.get(user) {
                info = info.set_password(&**password);
            }
        }
        info
    }

    /// Opens a connection for `key` to `host:port` (the key's own server,
    /// or the master the Sentinels named, with its generation's `moved`).
    async fn dial(
        &self,
        key: &RedisKey,
        (host, port): (&str, u16),
        moved: Option<Arc<AtomicBool>>,
    ) -> Result<RedisConn, RedisError> {
        let server = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let dest = Destination::from((host, port));
        let io = self
            .transport
            .dial(&dest, self.transport.is_tls())
            .await
            .map_err(|e| RedisError::Connect(e.into_io()))?
            .stream;
        let health = Vitals::new(server.clone());
        let io = Observed::new(io, Watch(Arc::clone(&health)));
        let info = self.info_for(key);
        let config = AsyncConnectionConfig::new().set_response_timeout(Some(self.response_timeout));
        let (inner, driver) = MultiplexedConnection::new_with_config(&info, io, config)
            .await
            .map_err(|error| RedisError::Setup {
                server: server.clone(),
                error,
            })?;
        let ended = Arc::clone(&health);
        let name = key.to_string();
        let driver = tokio::spawn(async move {
            driver.await;
            ended.driver_ended();
            tracing::debug!(key = %name, "Redis connection ended");
        });
        let reset =
            (key.exclusive && self.reset_on_return).then(|| Arc::new(Self::reset_for(&info)));
        Ok(RedisConn::new(
            inner,
            health,
            driver,
            key.exclusive,
            self.response_timeout,
            reset,
            moved,
        ))
    }

    /// `RESET` and the setup it undoes (protocol, login, database), in one
    /// round trip: what an exclusively lent connection gets on return.
    fn reset_for(info: &RedisConnectionInfo) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        pipe.cmd("RESET").ignore();
        let user = info.username().unwrap_or("default");
        match (info.protocol(), info.password()) {
            (ProtocolVersion::RESP2, Some(password)) => {
                pipe.cmd("AUTH").arg(user).arg(password).ignore();
            }
            (ProtocolVersion::RESP2, None) => {}
            (_, password) => {
                let hello = pipe.cmd("HELLO").arg(3);
                if let Some(password) = password {
                    hello.arg("AUTH").arg(user).arg(password);
                }
                hello.ignore();
            }
        }
        if info.db() != 0 {
            pipe.cmd("SELECT").arg(info.db()).ignore();
        }
        pipe
    }
}

/// `(scheme, rest)` of `scheme://rest`, the scheme in lower case.
fn split_scheme(url: &str) -> Option<(&'static str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    ["redis", "rediss"]
        .into_iter()
        .find(|s| s.eq_ignore_ascii_case(scheme))
        .map(|s| (s, rest))
}

#[async_trait]
impl Manager for RedisManager {
    type Key = RedisKey;
    type Connection = RedisConn;
    type Error = RedisError;

    /// The key's `Display` form (`host:port/db`, the user and the lending
    /// when not the defaults).
    fn key_name(&self, key: &RedisKey) -> String {
        key.to_string()
    }

    async fn connect(&self, key: &RedisKey) -> Result<RedisConn, RedisError> {
        let Some(sentinels) = &self.sentinels else {
            return self.dial(key, (&key.host, key.port), None).await;
        };
        let ((host, port), moved) = sentinels.master(&self.transport).await?;
        // A dial of a master that a failover leaves (a frozen one may take
        // the whole connect timeout) is given up at once.
        let dialed = tokio::select! {
            dialed = self.dial(key, (&host, port), Some(Arc::clone(&moved))) => dialed,
            () = sentinels.retired(&moved) => Err(RedisError::Sentinel {
                master: sentinels.master.clone(),
                reason: format!("{host}:{port} stopped being the master while it was dialed"),
            }),
        };
        let mut conn = match dialed {
            Ok(conn) => conn,
            // The master moved meanwhile, or is down as the Sentinels see
            // it, or being failed over: once they say more, the master
            // they name then.
            Err(e)
                if moved.load(std::sync::atomic::Ordering::SeqCst)
                    || sentinels.worth_another_dial().await =>
            {
                tracing::debug!(error = %e, "a dial of the Redis master failed; dialing the \
                    master the Sentinels name now");
                let ((host, port), moved) = sentinels.master(&self.transport).await?;
                self.dial(key, (&host, port), Some(moved)).await?
            }
            Err(e) => return Err(e),
        };
        let role = redis::cmd("ROLE")
            .query_async::<redis::Value>(&mut conn)
            .await
            .map_err(|error| RedisError::Command {
                server: conn.server().to_owned(),
                command: "ROLE",
                error,
            })?;
        match role {
            redis::Value::Array(fields) if matches!(fields.first(), Some(redis::Value::BulkString(r)) if r == b"master") => {
                Ok(conn)
            }
            _ => Err(RedisError::Sentinel {
                master: sentinels.master.clone(),
                reason: format!("{} is not a master now", conn.server()),
            }),
        }
    }

    async fn ping(&self, conn: &mut RedisConn) -> Result<(), RedisError> {
        redis::cmd("PING")
            .query_async::<()>(conn)
            .await
            .map_err(|error| RedisError::Command {
                server: conn.server().to_owned(),
                command: "PING",
                error,
            })
    }

    /// Its server changed when the Sentinels announced another master or
    /// the server answered `READONLY`, `LOADING` or `MASTERDOWN` (see
    /// [`RedisConn::server_changed`]); else broken when closed, and in need
    /// of a recycle when the borrower may have changed the connection's
    /// state (see [`RedisConn`]'s commands that change state) and the
    /// manager resets on return.
    fn health(&self, conn: &mut RedisConn) -> Health {
        if conn.server_changed() {
            Health::ServerChanged
        } else if conn.is_closed() {
            Health::Broken
        } else if self.reset_on_return && conn.changed {
            Health::NeedsRecycle
        } else {
            Health::Ready
        }
    }

    fn lending(&self, conn: &RedisConn) -> Lending<RedisConn> {
        if conn.exclusive {
            Lending::exclusive()
        } else {
            Lending::shared(self.max_borrowers).fill_first()
        }
    }

    /// Only connections lent exclusively come here (the pool recycles no
    /// shared one).
    async fn recycle(&self, conn: &mut RedisConn) -> Result<(), RedisError> {
        conn.set_response_timeout(conn.response_timeout());
        let Some(reset) = conn.reset() else {
            conn.changed = false;
            return Ok(());
        };
        reset
            .query_async::<()>(conn)
            .await
            .map_err(|error| RedisError::Command {
                server: conn.server().to_owned(),
                command: "RESET",
                error,
            })?;
        conn.changed = false;
        Ok(())
    }
}
