//! [`RedisKey`]: the pool's key, one database of one server, lent one way.

use std::fmt;

/// Names one database of one server, and how its connections are lent: the
/// key of a [`RedisManager`](super::RedisManager) pool.
///
/// Each key has its own connections, limits, idle list and dial backoff,
/// so the shared and the exclusive connections of one database are apart:
/// a borrower blocked in `BLPOP` never holds up the shared ones.
/// [`RedisManager::key`](super::RedisManager::key) is the manager's own
/// key; the `with_*` methods derive others. The password is not part of
/// the key (the manager holds it).
///
/// ```
/// use connpool_redis::RedisManager;
///
/// let manager: RedisManager = "redis://127.0.0.1:6379/0".parse().unwrap();
/// let cache = manager.key();
/// let jobs = cache.clone().with_db(2).exclusive();
/// assert!(!cache.exclusive);
/// assert_eq!((jobs.db, jobs.exclusive), (2, true));
/// assert_eq!(jobs.to_string(), "127.0.0.1:6379/2 (exclusive)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RedisKey {
    /// A host name or IP address.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// The database (`SELECT`ed at connect, and again after each reset).
    pub db: i64,
    /// The ACL user to log in as; `None`: the manager's (or `default`).
    pub user: Option<String>,
    /// Whether the key's connections are lent to one borrower at a time,
    /// and reset (`RESET`) when they come back: for blocking commands
    /// (`BLPOP`, `XREAD BLOCK`), `WATCH`/`MULTI`/`EXEC`, `SELECT`,
    /// `CLIENT SETNAME`, pub/sub. Else they are shared: many borrowers'
    /// commands pipelined on one connection (up to the manager's
    /// [`shared`](super::RedisManager::shared) limit, clamped by the
    /// pool's), for commands that leave no state on the connection.
    pub exclusive: bool,
}

impl RedisKey {
    /// This key with another database (same server, user and lending).
    pub fn with_db(mut self, db: i64) -> Self {
        self.db = db;
        self
    }

    /// This key with another ACL user (its password is the manager's
    /// [`password_for`](super::RedisManager::password_for) that user).
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// This key, lent exclusively.
    pub fn exclusive(mut self) -> Self {
        self.exclusive = true;
        self
    }

    /// This key, lent shared.
    pub fn shared(mut self) -> Self {
        self.exclusive = false;
        self
    }

    /// `host:port`, with an IPv6 address in brackets; a master's name
    /// alone for a key of a Sentinel-managed master (port 0).
    pub(super) fn server(&self) -> String {
        if self.port == 0 {
            self.host.clone()
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for RedisKey {
    /// `[user@]host:port/db`, then ` (exclusive)` for an exclusive key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        write!(f, "{}/{}", self.server(), self.db)?;
        if self.exclusive {
            f.write_str(" (exclusive)")?;
        }
        Ok(())
    }
}
