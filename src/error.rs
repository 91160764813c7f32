//! Errors: what a getter, a builder and a closer can be told.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why a dial (a call to [`Manager::connect`](crate::Manager::connect)) produced no connection.
///
/// Cheap to clone: the manager's error is shared, because the same failure is
/// both delivered to the getter the dial was for and remembered as the key's
/// last dial error (carried by later [`Error::Timeout`]s).
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError<E> {
    /// The manager returned this error.
    Manager(Arc<E>),
    /// The dial did not finish within `connect_timeout`.
    Timeout(Duration),
    /// The dial task ended without a result: the runtime the pool was built
    /// in shut down under it. (Not the backend's fault: it starts no
    /// backoff.)
    Aborted,
    /// `connect` (or `lending`, asked right after it) panicked; the panic's
    /// message.
    Panicked(Arc<str>),
    /// `connect` returned a connection that
    /// [`Manager::is_broken`](crate::Manager::is_broken) at once called
    /// broken (for example an HTTP/2 server that sent GOAWAY in its first
    /// write): it is closed (counted as closed for
    /// [`CloseReason::Broken`](crate::CloseReason::Broken)), not lent.
    Broken,
}

impl<E> Clone for ConnectError<E> {
    fn clone(&self) -> Self {
        match self {
            ConnectError::Manager(e) => ConnectError::Manager(Arc::clone(e)),
            ConnectError::Timeout(d) => ConnectError::Timeout(*d),
            ConnectError::Aborted => ConnectError::Aborted,
            ConnectError::Panicked(m) => ConnectError::Panicked(Arc::clone(m)),
            ConnectError::Broken => ConnectError::Broken,
        }
    }
}

impl<E: fmt::Display> fmt::Display for ConnectError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Manager(e) => write!(f, "connect failed: {e}"),
            ConnectError::Timeout(d) => write!(f, "connect timed out after {d:?}"),
            ConnectError::Aborted => {
                f.write_str("connect aborted (the pool's runtime shut down under the dial)")
            }
            ConnectError::Panicked(m) => write!(f, "connect panicked: {m}"),
            ConnectError::Broken => {
                f.write_str("the new connection was broken on arrival (Manager::is_broken)")
            }
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ConnectError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Manager(e) => Some(&**e),
            _ => None,
        }
    }
}

/// Why a `get` returned no connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E> {
    /// The dial started for this getter failed. Other getters are not told:
    /// each learns the outcome of its own dial.
    Connect(ConnectError<E>),
    /// The checkout deadline (`checkout_timeout`) passed before a connection
    /// became available.
    Timeout {
        /// How long the getter waited.
        waited: Duration,
        /// The key's most recent dial failure, if its last dial failed: the
        /// likely reason nothing arrived.
        last_connect_error: Option<ConnectError<E>>,
    },
    /// `max_waiters` getters were already waiting; this one was refused at once.
    TooManyWaiters {
        /// The configured limit.
        max_waiters: usize,
    },
    /// The key is in dial backoff after failed dials: this getter found no
    /// idle connection and failed at once instead of dialing (or waiting for
    /// a dial slot).
    Backoff {
        /// Time left until the key may be dialed again.
        retry_in: Duration,
        /// The dial failure that started or extended the backoff.
        last_connect_error: ConnectError<E>,
    },
    /// The pool is closed (or was closed while this getter waited).
    Closed,
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect(e) => e.fmt(f),
            Error::Timeout {
                waited,
                last_connect_error: None,
            } => write!(
                f,
                "no connection available within the checkout deadline (waited {waited:?})"
            ),
            Error::Timeout {
                waited,
                last_connect_error: Some(e),
            } => write!(
                f,
                "no connection available within the checkout deadline (waited {waited:?}); last dial: {e}"
            ),
            Error::TooManyWaiters { max_waiters } => {
                write!(f, "too many getters waiting (max_waiters = {max_waiters})")
            }
            Error::Backoff {
                retry_in,
                last_connect_error,
            } => write!(
                f,
                "dials of this key are backing off for {retry_in:?} after: {last_connect_error}"
            ),
            Error::Closed => f.write_str("the pool is closed"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect(e) => Some(e),
            Error::Backoff {
                last_connect_error, ..
            } => Some(last_connect_error),
            Error::Timeout {
                last_connect_error: Some(e),
                ..
            } => Some(e),
            _ => None,
        }
    }
}

/// A configuration value the builder refused; [`field`](ConfigError::field)
/// names the builder method to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    field: &'static str,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }

    /// The refused field, spelled as its builder method.
    pub fn field(&self) -> &'static str {
        self.field
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid pool config: `{}` {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Why [`Builder::build`](crate::Builder::build) returned no pool.
#[derive(Debug)]
pub enum BuildError<E> {
    /// A configuration value was refused.
    Config(ConfigError),
    /// A pre-warm dial (`initial`) failed; the connections already opened were closed.
    Connect(ConnectError<E>),
}

impl<E> From<ConfigError> for BuildError<E> {
    fn from(e: ConfigError) -> Self {
        BuildError::Config(e)
    }
}

impl<E: fmt::Display> fmt::Display for BuildError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Config(e) => e.fmt(f),
            BuildError::Connect(e) => write!(f, "pre-warming the pool failed: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for BuildError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Config(e) => Some(e),
            BuildError::Connect(e) => Some(e),
        }
    }
}

/// [`Pool::close_timeout`](crate::Pool::close_timeout) ran out of time with
/// connections still open (lent, dialing, or being closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseTimeout {
    /// Connections still lent or dialing.
    pub open: usize,
    /// Connections whose `Manager::close` was still running.
    pub closing: usize,
}

impl fmt::Display for CloseTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool close timed out with {} connection(s) open and {} closing",
            self.open, self.closing
        )
    }
}

impl std::error::Error for CloseTimeout {}
