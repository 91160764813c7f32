//! Errors: what a getter, a builder and a closer can be told.
//!
//! Each error here writes its cause into its own message, so `{}` of it in a
//! log line is complete, and its [`source`](std::error::Error::source) is
//! the *cause's* source, never the cause it already printed: walking the
//! chain (`anyhow`'s `{:#}`, a logger's cause list) repeats nothing. The
//! manager's typed error is reached with [`Error::manager_error`].

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
    /// `connect` panicked, or `health` or `lending` did on the connection
    /// it had just made (which is then closed), or the pool's own code in
    /// the dial task did; the panic's message.
    Panicked(Arc<str>),
    /// `connect` returned a connection that
    /// [`Manager::health`](crate::Manager::health) at once called
    /// broken (for example an HTTP/2 server that sent GOAWAY in its first
    /// write): it is closed (counted in
    /// [`closed_broken`](crate::Counters::closed_broken)), not lent.
    Broken,
    /// The server closed a new connection under the first request sent on
    /// it, before answering anything (a load balancer accepts connections
    /// for a backend that is down, and closes them): reported by
    /// [`Pooled::mark_refused`](crate::Pooled::mark_refused) and counted as
    /// a failed dial of its key.
    Refused,
    /// A connection dialed after its key was cleared
    /// ([`Health::ServerChanged`](crate::Health::ServerChanged)) found the
    /// server changed again, soon after: the dials reach a server that is
    /// still not what the key names (a demoted primary behind an address
    /// that has not moved yet). Counted as a failed dial of its key, so the
    /// key backs off and its probes find the server.
    ServerChanged,
}

impl<E> Clone for ConnectError<E> {
    fn clone(&self) -> Self {
        match self {
            ConnectError::Manager(e) => ConnectError::Manager(Arc::clone(e)),
            ConnectError::Timeout(d) => ConnectError::Timeout(*d),
            ConnectError::Aborted => ConnectError::Aborted,
            ConnectError::Panicked(m) => ConnectError::Panicked(Arc::clone(m)),
            ConnectError::Broken => ConnectError::Broken,
            ConnectError::Refused => ConnectError::Refused,
            ConnectError::ServerChanged => ConnectError::ServerChanged,
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
                f.write_str("the new connection was broken on arrival (Manager::health)")
            }
            ConnectError::Refused => f.write_str(
                "the server closed the new connection under its first request, unanswered",
            ),
            ConnectError::ServerChanged => f.write_str(
                "the new connection's server was still not what the key names \
                 (its server changed again right after the key was cleared)",
            ),
        }
    }
}

impl<E> ConnectError<E> {
    /// The manager's own error, if the manager refused the dial.
    pub fn manager_error(&self) -> Option<&E> {
        match self {
            ConnectError::Manager(e) => Some(e),
            _ => None,
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ConnectError<E> {
    /// The manager error's source: its message is already in this one's.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.manager_error()?.source()
    }
}

/// The pool's error: why a `get` returned no connection, why
/// [`build`](crate::Builder::build) returned no pool (a refused setting,
/// [`Config`](Error::Config); a failed pre-warm dial,
/// [`Connect`](Error::Connect)), why [`resize`](crate::Pool::resize) refused
/// new caps, or that [`close_timeout`](crate::Pool::close_timeout) ran out of
/// time.
///
/// Its message includes the dial failure it carries (the manager's message
/// too), and its [`source`](std::error::Error::source) is that message's
/// cause, if any. The typed manager error is [`manager_error`](Error::manager_error):
///
/// ```
/// use std::time::Duration;
/// use connpool::{Error, Manager, Pool, async_trait};
///
/// struct Down;
///
/// #[async_trait]
/// impl Manager for Down {
///     type Key = ();
///     type Connection = ();
///     type Error = std::io::Error;
///
///     async fn connect(&self, _: &()) -> std::io::Result<()> {
///         Err(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = Pool::builder(Down).build().await.unwrap();
/// let err = pool.get().await.unwrap_err();
/// assert_eq!(err.to_string(), "connect failed: refused");
/// let io = err.manager_error().expect("the manager refused the dial");
/// assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
/// assert!(!err.is_timeout());
///
/// // The key now backs off: the next get waits for the pool's probe of
/// // it, which fails with the same cause.
/// let err = pool.get().await.unwrap_err();
/// assert!(matches!(err, Error::Backoff { .. }), "{err}");
/// assert!(err.to_string().starts_with("dials are backing off for "), "{err}");
/// assert_eq!(err.manager_error().unwrap().kind(), std::io::ErrorKind::ConnectionRefused);
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E> {
    /// The dial started for this getter failed. Other getters are not told:
    /// each learns the outcome of its own dial.
    Connect(ConnectError<E>),
    /// The checkout deadline (`checkout_timeout`) passed before a connection
    /// became available.
    #[non_exhaustive]
    Timeout {
        /// The key, as its manager names it
        /// ([`Manager::key_name`](crate::Manager::key_name)); `None` in a
        /// single-destination pool (`Key = ()`).
        key: Option<Arc<str>>,
        /// How long the getter waited, from its `get` (the health checks
        /// of idle connections it tried first included).
        waited: Duration,
        /// The key's most recent dial failure, if its last dial failed: the
        /// likely reason nothing arrived.
        last_connect_error: Option<ConnectError<E>>,
        /// The getter ran on another runtime than the one the pool was built
        /// in (or on none), where the pool's dials, pings and closes run: if
        /// that runtime is no longer driven (shut down, or a `block_on` that
        /// returned), nothing can arrive. The message then says so.
        foreign_runtime: bool,
    },
    /// `max_waiters` getters were already waiting; this one was refused at once.
    #[non_exhaustive]
    TooManyWaiters {
        /// The configured limit.
        max_waiters: usize,
    },
    /// The key is in dial backoff after failed dials: this getter found no
    /// idle connection and waited for a dial of the key (the pool's probe,
    /// or another getter's dial it was queued behind), which failed.
    #[non_exhaustive]
    Backoff {
        /// The key, as its manager names it
        /// ([`Manager::key_name`](crate::Manager::key_name)); `None` in a
        /// single-destination pool (`Key = ()`). The message leaves it out
        /// when the dial error names it already.
        key: Option<Arc<str>>,
        /// Time left until the key may be dialed again.
        retry_in: Duration,
        /// The dial failure that started or extended the backoff.
        last_connect_error: ConnectError<E>,
    },
    /// The pool is closed (or was closed while this getter waited).
    Closed,
    /// A configuration value was refused, by [`build`](crate::Builder::build)
    /// or by a change to the running pool ([`resize`](crate::Pool::resize),
    /// [`set_min_idle_for`](crate::Pool::set_min_idle_for), which then leave
    /// it unchanged).
    #[non_exhaustive]
    Config {
        /// The refused setting, spelled as its builder method (or the
        /// [`Limits`](crate::Limits) field of the same name).
        field: &'static str,
        /// What is wrong with its value.
        message: String,
    },
    /// [`close_timeout`](crate::Pool::close_timeout) ran out of time with
    /// connections still open (lent, dialing, or being closed). The pool
    /// stays closed; the rest are closed as they come back.
    #[non_exhaustive]
    CloseTimeout {
        /// Connections still lent or dialing.
        open: usize,
        /// Connections whose `Manager::close` was still running.
        closing: usize,
    },
}

impl<E> Error<E> {
    /// The manager's own error behind this one: the failed dial's
    /// ([`Connect`](Error::Connect)), or the key's last failed dial's
    /// ([`Backoff`](Error::Backoff), [`Timeout`](Error::Timeout) after a
    /// failed dial). `None` when the manager refused nothing (a dial timeout,
    /// a full pool, a closed pool…).
    ///
    /// ```
    /// use connpool::{ConnectError, Error};
    /// use std::sync::Arc;
    ///
    /// let err: Error<std::io::Error> = Error::Connect(ConnectError::Manager(Arc::new(
    ///     std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
    /// )));
    /// assert_eq!(err.manager_error().unwrap().kind(), std::io::ErrorKind::ConnectionRefused);
    /// assert!(Error::<std::io::Error>::Closed.manager_error().is_none());
    /// ```
    pub fn manager_error(&self) -> Option<&E> {
        self.connect_error().and_then(ConnectError::manager_error)
    }

    /// The dial failure this error carries: the dial's own
    /// ([`Connect`](Error::Connect)), or the key's last one
    /// ([`Backoff`](Error::Backoff), [`Timeout`](Error::Timeout) when the
    /// key's last dial failed).
    ///
    /// ```
    /// use connpool::{ConnectError, Error};
    /// use std::time::Duration;
    ///
    /// let err: Error<std::io::Error> = Error::Connect(ConnectError::Timeout(Duration::from_secs(1)));
    /// assert!(matches!(err.connect_error(), Some(ConnectError::Timeout(_))));
    /// assert!(err.manager_error().is_none());
    /// ```
    pub fn connect_error(&self) -> Option<&ConnectError<E>> {
        match self {
            Error::Connect(e)
            | Error::Backoff {
                last_connect_error: e,
                ..
            }
            | Error::Timeout {
                last_connect_error: Some(e),
                ..
            } => Some(e),
            _ => None,
        }
    }

    /// Whether the checkout deadline passed ([`Timeout`](Error::Timeout)).
    /// A dial that ran out of `connect_timeout` is not one: it is
    /// `Connect(ConnectError::Timeout(_))`.
    ///
    /// ```
    /// use connpool::{ConnectError, Error};
    /// use std::time::Duration;
    ///
    /// let dial: Error<std::io::Error> = Error::Connect(ConnectError::Timeout(Duration::from_secs(1)));
    /// assert!(!dial.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect(e) => e.fmt(f),
            Error::Timeout {
                key,
                waited,
                last_connect_error,
                foreign_runtime,
            } => {
                f.write_str("no connection available")?;
                if let Some(key) = key {
                    write!(f, " to {key}")?;
                }
                write!(f, " within the checkout deadline (waited {waited:?})")?;
                if let Some(e) = last_connect_error {
                    write!(f, "; last dial: {e}")?;
                }
                if *foreign_runtime {
                    f.write_str(
                        "; the pool's dials and pings run on the runtime it was built in, \
                         not this one: is that runtime still running?",
                    )?;
                }
                Ok(())
            }
            Error::TooManyWaiters { max_waiters } => {
                write!(f, "too many getters waiting (max_waiters = {max_waiters})")
            }
            Error::Backoff {
                key,
                retry_in,
                last_connect_error,
            } => {
                let cause = last_connect_error.to_string();
                match key {
                    Some(key) if !cause.contains(&**key) => write!(
                        f,
                        "dials of {key} are backing off for {retry_in:?} after: {cause}"
                    ),
                    _ => write!(f, "dials are backing off for {retry_in:?} after: {cause}"),
                }
            }
            Error::Closed => f.write_str("the pool is closed"),
            Error::Config { field, message } => {
                write!(f, "invalid pool config: `{field}` {message}")
            }
            Error::CloseTimeout { open, closing } => write!(
                f,
                "pool close timed out with {open} connection(s) open and {closing} closing"
            ),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    /// The source of the dial failure it carries (whose message is already
    /// in this one's).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.connect_error().and_then(std::error::Error::source)
    }
}

/// A configuration value refused by the builder or a run-time change:
/// becomes [`Error::Config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    /// The setting refused.
    pub(crate) field: &'static str,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl<E> From<ConfigError> for Error<E> {
    fn from(e: ConfigError) -> Self {
        Error::Config {
            field: e.field,
            message: e.message,
        }
    }
}
