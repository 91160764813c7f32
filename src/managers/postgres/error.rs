//! [`PgError`]: a driver error whose message carries what the server said.

use std::fmt;

use tokio_postgres::error::{DbError, SqlState};

/// A failed dial or ping of a [`PostgresManager`](super::PostgresManager): a
/// [`tokio_postgres::Error`] whose message says what happened.
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
    pub(super) driver: tokio_postgres::Error,
    /// From parsing a connection string: an unknown option's name is not
    /// shown, since it may be a piece of an unquoted password with a space.
    pub(super) parsing: bool,
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
