//! [`PgError`]: a driver error whose message carries what the server said.

use std::fmt;
use std::time::Duration;

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
/// use connpool_postgres::PostgresManager;
/// use connpool_postgres::pool::Pool;
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
///
/// A hook (or a manager wrapping this one) fails with a reason of its own
/// through [`PgError::new`] (a message) or [`PgError::other`] (any error):
///
/// ```
/// use connpool_postgres::PgError;
///
/// let e = PgError::new("the session is read-only, and this pool writes");
/// assert_eq!(e.to_string(), "the session is read-only, and this pool writes");
/// assert!(e.driver().is_none() && e.code().is_none());
/// ```
pub struct PgError {
    repr: Repr,
}

enum Repr {
    Driver {
        driver: tokio_postgres::Error,
        /// From parsing a connection string: an unknown option's name is
        /// not shown, since it may be a piece of an unquoted password with
        /// a space.
        parsing: bool,
    },
    /// The user's own reason (a hook's); its `Display` is the message.
    Other(Box<dyn std::error::Error + Send + Sync>),
    /// A statement a shared connection refused before sending it, by its
    /// first keyword.
    Unshareable { keyword: String, reason: Refusal },
    /// A call of [`PgService`](super::PgService) ran past its deadline.
    TimedOut { after: Duration, phase: Phase },
}

/// Where a call was when its deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for a connection: the pool's wait, a health check, a dial.
    Checkout,
    /// The statement was sent; its result had not come (it is cancelled
    /// on the server).
    Statement,
}

/// Why a shared connection refused a statement.
#[derive(Debug, Clone, Copy)]
pub(super) enum Refusal {
    /// It could change the session (allowed in a transaction).
    Session,
    /// It could deallocate the statements the borrowers share.
    Forgets,
    /// A statement prepared from it could run outside the transaction it
    /// was prepared in.
    Prepared,
}

impl PgError {
    /// An error of the user's own, with this message (for a hook that
    /// refuses a connection for a reason of its own).
    pub fn new(message: impl Into<String>) -> Self {
        PgError::other(Message(message.into()))
    }

    /// An error of the user's own: its message is `error`'s, and its
    /// [`source`](std::error::Error::source) is `error`'s source.
    pub fn other(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        PgError {
            repr: Repr::Other(Box::new(error)),
        }
    }

    /// A call past its deadline of `after`, in `phase`.
    pub(super) fn timed_out(after: Duration, phase: Phase) -> Self {
        PgError {
            repr: Repr::TimedOut { after, phase },
        }
    }

    /// Whether a [`PgService`](super::PgService) call ran past its
    /// deadline (waiting for a connection, or for its statement's result,
    /// for which a cancel request was then sent to the server).
    pub fn is_timeout(&self) -> bool {
        matches!(self.repr, Repr::TimedOut { .. })
    }

    /// A statement refused by a shared connection: `keyword` starts it.
    pub(super) fn unshareable(keyword: String, reason: Refusal) -> Self {
        PgError {
            repr: Repr::Unshareable { keyword, reason },
        }
    }

    /// Whether a [shared](super::SharedPgConnection) connection refused
    /// the statement before sending it, since it could change the session
    /// its borrowers share (nothing was sent; the message names the
    /// statement).
    pub fn is_unshareable(&self) -> bool {
        matches!(self.repr, Repr::Unshareable { .. })
    }

    /// A driver error from parsing a connection string.
    pub(super) fn parsing(driver: tokio_postgres::Error) -> Self {
        PgError {
            repr: Repr::Driver {
                driver,
                parsing: true,
            },
        }
    }

    /// The server's SQLSTATE, if the server sent the error.
    pub fn code(&self) -> Option<&SqlState> {
        self.driver()?.code()
    }

    /// The server's error with all its fields, if the server sent it.
    pub fn as_db_error(&self) -> Option<&DbError> {
        self.driver()?.as_db_error()
    }

    /// The driver's error, unless this is an error of the user's own
    /// ([`new`](PgError::new), [`other`](PgError::other)).
    pub fn driver(&self) -> Option<&tokio_postgres::Error> {
        match &self.repr {
            Repr::Driver { driver, .. } => Some(driver),
            _ => None,
        }
    }

    /// The driver's error, for good (`None` for an error of the user's own).
    pub fn into_driver(self) -> Option<tokio_postgres::Error> {
        match self.repr {
            Repr::Driver { driver, .. } => Some(driver),
            _ => None,
        }
    }

    /// The user's own error, if this is one ([`new`](PgError::new),
    /// [`other`](PgError::other)).
    pub fn other_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match &self.repr {
            Repr::Other(e) => Some(&**e),
            _ => None,
        }
    }
}

/// The error of [`PgError::new`]: a message.
#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl From<tokio_postgres::Error> for PgError {
    fn from(driver: tokio_postgres::Error) -> Self {
        PgError {
            repr: Repr::Driver {
                driver,
                parsing: false,
            },
        }
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (driver, parsing) = match &self.repr {
            Repr::Driver { driver, parsing } => (driver, *parsing),
            Repr::Other(e) => return e.fmt(f),
            Repr::TimedOut { after, phase } => {
                return match phase {
                    Phase::Checkout => write!(
                        f,
                        "PostgreSQL call timed out: no result within its deadline of {after:?} \
                         (waiting for a connection)"
                    ),
                    Phase::Statement => write!(
                        f,
                        "PostgreSQL call timed out: no result within its deadline of {after:?} \
                         (waiting for the statement; a cancel request for it is sent to the \
                         server, and its connection retired)"
                    ),
                };
            }
            Repr::Unshareable { keyword, reason } => {
                return match reason {
                    Refusal::Session => write!(
                        f,
                        "`{keyword}` cannot run on a shared connection: it could change the \
                         session all its borrowers share (run it in a transaction of the \
                         shared connection, or on an exclusive pool)"
                    ),
                    Refusal::Forgets => write!(
                        f,
                        "`{keyword}` cannot run on a shared connection: it could deallocate \
                         the prepared statements all its borrowers share"
                    ),
                    Refusal::Prepared => write!(
                        f,
                        "`{keyword}` cannot be prepared on a shared connection: the statement \
                         could run outside the transaction (send it as SQL in the transaction)"
                    ),
                };
            }
        };
        if let Some(db) = driver.as_db_error() {
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
        let mut last = driver.to_string();
        f.write_str(&last)?;
        let mut cause = std::error::Error::source(driver);
        while let Some(e) = cause {
            let text = e.to_string();
            if parsing && text.starts_with("unknown option") {
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
        match &self.repr {
            Repr::Driver {
                driver,
                parsing: true,
            } => d.field("driver", &driver.to_string()),
            Repr::Driver { driver, .. } => d.field("driver", driver),
            Repr::Other(e) => d.field("other", e),
            Repr::Unshareable { keyword, .. } => d.field("unshareable", keyword),
            Repr::TimedOut { after, phase } => d.field("timed_out", &(after, phase)),
        };
        d.finish()
    }
}

impl std::error::Error for PgError {
    /// The driver's text is all in the message (`None`); an error of the
    /// user's own gives its source.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.repr {
            Repr::Other(e) => e.source(),
            _ => None,
        }
    }
}
