//! [`PgKey`]: the pool's key, one database.

/// Names one database: the key of a
/// [`PostgresManager`](super::PostgresManager) pool.
///
/// Connections of a key are made with the manager's base configuration,
/// with this key's host, port, database and user put over it (see
/// [`PostgresManager::config_for`](super::PostgresManager::config_for)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
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

impl std::fmt::Display for PgKey {
    /// `user@host:port/dbname`, without the parts that are not set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match self.host.contains(':') {
            true => write!(f, "[{}]:{}", self.host, self.port)?,
            false => write!(f, "{}:{}", self.host, self.port)?,
        }
        if let Some(dbname) = &self.dbname {
            write!(f, "/{dbname}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::PgKey;

    #[test]
    fn a_key_reads_as_user_at_host_port_slash_database() {
        let key = PgKey {
            host: "db.internal".into(),
            port: 5432,
            dbname: None,
            user: None,
        };
        assert_eq!(key.to_string(), "db.internal:5432");
        let key = key.with_user("app").with_dbname("orders");
        assert_eq!(key.to_string(), "app@db.internal:5432/orders");
        let v6 = PgKey {
            host: "::1".into(),
            port: 5433,
            dbname: None,
            user: None,
        };
        assert_eq!(v6.to_string(), "[::1]:5433");
    }
}
