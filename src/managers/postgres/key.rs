//! [`PgKey`]: the pool's key, one database.

/// Names one database: the key of a
/// [`PostgresManager`](super::PostgresManager) pool.
///
/// Connections of a key are made with the manager's base configuration,
/// with this key's host, port, database and user put over it (see
/// [`PostgresManager::config_for`](super::PostgresManager::config_for)).
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
