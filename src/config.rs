//! Configuration: the [`Builder`], its defaults and their validation.
//!
//! # Sizing the caps
//!
//! By Little's law a key needs about `peak requests per second × mean time a
//! connection is held` connections at its busiest; set `max_open_per_key` a
//! little above that (×1.5 for bursts) and keep `max_idle_per_key` equal to
//! it. An idle cap far below the open cap is the trap of Go's
//! `MaxIdleConnsPerHost = 2`: every burst opens connections that are closed
//! again on return, the closes pile up in `TIME_WAIT`, and the client runs
//! out of ephemeral ports while its pool barely pools. Trim idle connections
//! with time (idle timeout), not with a small idle cap.

use std::time::Duration;

use crate::error::{BuildError, ConfigError};
use crate::manager::Manager;
use crate::pool::Pool;

/// Default for `max_open`: Go's default global idle cap (`MaxIdleConns`),
/// enough for most services, and below PostgreSQL's default `max_connections`.
pub const DEFAULT_MAX_OPEN: usize = 100;
/// Default for `connect_timeout`: long enough for a slow TLS handshake across
/// regions, short enough that a black-holed host frees its slot quickly.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for `checkout_timeout`: a getter never waits forever (bb8's default too).
pub const DEFAULT_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);

/// A validated pool configuration (see [`Builder`] for each field's meaning and default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub(crate) max_open: usize,
    pub(crate) max_open_per_key: usize,
    pub(crate) max_idle: usize,
    pub(crate) max_idle_per_key: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) checkout_timeout: Option<Duration>,
    pub(crate) max_waiters: Option<usize>,
}

impl Config {
    /// Cap on connections of all keys (idle + lent + dialing).
    pub fn max_open(&self) -> usize {
        self.max_open
    }
    /// Cap on connections of one key.
    pub fn max_open_per_key(&self) -> usize {
        self.max_open_per_key
    }
    /// Cap on idle connections of all keys.
    pub fn max_idle(&self) -> usize {
        self.max_idle
    }
    /// Cap on idle connections of one key.
    pub fn max_idle_per_key(&self) -> usize {
        self.max_idle_per_key
    }
    /// Time limit of one dial.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    /// How long a get may wait; `None` means forever.
    pub fn checkout_timeout(&self) -> Option<Duration> {
        self.checkout_timeout
    }
    /// Cap on getters waiting at once; `None` means no cap.
    pub fn max_waiters(&self) -> Option<usize> {
        self.max_waiters
    }
}

/// Builds a [`Pool`]: set what differs from the defaults, then [`build`](Builder::build).
///
/// | field | default | why |
/// |---|---|---|
/// | `max_open` | 100 ([`DEFAULT_MAX_OPEN`]) | Go's global idle default; below PostgreSQL's default `max_connections` |
/// | `max_open_per_key` | `max_open` | one destination may use the whole pool, as Go's `MaxConnsPerHost = 0` |
/// | `max_idle` | `max_open` | nothing a burst opened is closed just for being returned |
/// | `max_idle_per_key` | min(`max_open_per_key`, `max_idle`) | no Go `MaxIdleConnsPerHost = 2` trap: no close/reopen churn, no `TIME_WAIT` pile-up |
/// | `initial` | none | pre-warming is a choice: it makes `build` fail when the backend is down |
/// | `connect_timeout` | 10 s ([`DEFAULT_CONNECT_TIMEOUT`]) | a black-holed host frees its slot |
/// | `checkout_timeout` | 30 s ([`DEFAULT_CHECKOUT_TIMEOUT`]) | a getter never hangs; waiting forever is an explicit opt-in |
/// | `max_waiters` | no cap | the checkout deadline already bounds how long waiters pile up |
///
/// `build` refuses inconsistent values with a [`ConfigError`] naming the field.
pub struct Builder<M: Manager> {
    manager: M,
    max_open: usize,
    max_open_per_key: Option<usize>,
    max_idle: Option<usize>,
    max_idle_per_key: Option<usize>,
    connect_timeout: Duration,
    checkout_timeout: Option<Duration>,
    max_waiters: Option<usize>,
    initial: Vec<(M::Key, usize)>,
}

impl<M: Manager> Builder<M> {
    pub(crate) fn new(manager: M) -> Self {
        Self {
            manager,
            max_open: DEFAULT_MAX_OPEN,
            max_open_per_key: None,
            max_idle: None,
            max_idle_per_key: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            checkout_timeout: Some(DEFAULT_CHECKOUT_TIMEOUT),
            max_waiters: None,
            initial: Vec::new(),
        }
    }

    /// Cap on open connections (idle + lent + dialing) across all keys. At
    /// least 1. When it is reached, a getter of a key with no idle connection
    /// evicts the least recently used idle connection of another key, or waits.
    pub fn max_open(mut self, n: usize) -> Self {
        self.max_open = n;
        self
    }

    /// Cap on open connections of one key (Go's `MaxConnsPerHost`). At least
    /// 1, at most `max_open`; defaults to `max_open`.
    pub fn max_open_per_key(mut self, n: usize) -> Self {
        self.max_open_per_key = Some(n);
        self
    }

    /// Cap on idle connections across all keys (Go's `MaxIdleConns`); past it
    /// the least recently used idle connection of any key is closed. At least
    /// 1, at most `max_open`; defaults to `max_open`.
    pub fn max_idle(mut self, n: usize) -> Self {
        self.max_idle = Some(n);
        self
    }

    /// Cap on idle connections of one key (Go's `MaxIdleConnsPerHost`); a
    /// connection returned past it is closed. At least 1, at most
    /// `max_open_per_key` and `max_idle`; defaults to the smaller of them.
    pub fn max_idle_per_key(mut self, n: usize) -> Self {
        self.max_idle_per_key = Some(n);
        self
    }

    /// Pre-warms `n` connections of `key` while building (silenceper's
    /// `InitialCap`, per key); call once per key. They are dialed
    /// concurrently; if any dial fails, `build` fails and closes the others.
    pub fn initial_for(mut self, key: M::Key, n: usize) -> Self {
        match self.initial.iter_mut().find(|(k, _)| *k == key) {
            Some((_, count)) => *count = n,
            None => self.initial.push((key, n)),
        }
        self
    }

    /// Time limit of one dial (`Manager::connect`). Non-zero.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How long a get may wait for a connection before it fails with
    /// [`Error::Timeout`](crate::Error::Timeout). `None` waits forever (an
    /// explicit opt-in: a dead backend then hangs its callers). Non-zero.
    pub fn checkout_timeout(mut self, d: Option<Duration>) -> Self {
        self.checkout_timeout = d;
        self
    }

    /// Cap on getters waiting at once; past it a get fails at once with
    /// [`Error::TooManyWaiters`](crate::Error::TooManyWaiters) (load shedding).
    /// Every getter that finds no idle connection waits, including one whose
    /// own dial is in flight, so the cap is at least 1: `Some(0)` would refuse
    /// every get that must dial and is refused by `build`. `None` (the
    /// default) means no cap.
    pub fn max_waiters(mut self, n: Option<usize>) -> Self {
        self.max_waiters = n;
        self
    }

    /// Validates the configuration, pre-warms the `initial` connections and
    /// returns the pool. Must be called within a tokio runtime: the pool
    /// spawns its dials and closes there.
    pub async fn build(self) -> Result<Pool<M>, BuildError<M::Error>> {
        let config = self.validate()?;
        Pool::start(self.manager, config, self.initial).await
    }

    fn validate(&self) -> Result<Config, ConfigError> {
        let max_open = self.max_open;
        if max_open == 0 {
            return Err(ConfigError::new("max_open", "must be at least 1"));
        }
        let max_open_per_key = self.max_open_per_key.unwrap_or(max_open);
        if max_open_per_key == 0 {
            return Err(ConfigError::new("max_open_per_key", "must be at least 1"));
        }
        if max_open_per_key > max_open {
            return Err(ConfigError::new(
                "max_open_per_key",
                format!("({max_open_per_key}) must not exceed `max_open` ({max_open})"),
            ));
        }
        let max_idle = self.max_idle.unwrap_or(max_open);
        if max_idle == 0 {
            return Err(ConfigError::new(
                "max_idle",
                "must be at least 1 (a pool that keeps nothing idle does not pool)",
            ));
        }
        if max_idle > max_open {
            return Err(ConfigError::new(
                "max_idle",
                format!("({max_idle}) must not exceed `max_open` ({max_open})"),
            ));
        }
        let max_idle_per_key = self
            .max_idle_per_key
            .unwrap_or(max_open_per_key.min(max_idle));
        if max_idle_per_key == 0 {
            return Err(ConfigError::new(
                "max_idle_per_key",
                "must be at least 1 (a pool that keeps nothing idle does not pool)",
            ));
        }
        if max_idle_per_key > max_open_per_key {
            return Err(ConfigError::new(
                "max_idle_per_key",
                format!(
                    "({max_idle_per_key}) must not exceed `max_open_per_key` ({max_open_per_key})"
                ),
            ));
        }
        if max_idle_per_key > max_idle {
            return Err(ConfigError::new(
                "max_idle_per_key",
                format!("({max_idle_per_key}) must not exceed `max_idle` ({max_idle})"),
            ));
        }
        if self.max_waiters == Some(0) {
            return Err(ConfigError::new(
                "max_waiters",
                "must be at least 1 (a getter waits for its own dial; use `None` for no cap)",
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(ConfigError::new(
                "connect_timeout",
                "must be greater than zero",
            ));
        }
        if self.checkout_timeout.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::new(
                "checkout_timeout",
                "must be greater than zero (use `None` to wait forever)",
            ));
        }
        let mut total = 0usize;
        for (key, n) in &self.initial {
            if *n > max_idle_per_key {
                return Err(ConfigError::new(
                    "initial_for",
                    format!(
                        "({n} for key {key:?}) must not exceed `max_idle_per_key` ({max_idle_per_key}): \
                         the extra connections would be closed as soon as they were opened"
                    ),
                ));
            }
            total += n;
        }
        if total > max_idle {
            return Err(ConfigError::new(
                "initial_for",
                format!("({total} in all) must not exceed `max_idle` ({max_idle})"),
            ));
        }
        Ok(Config {
            max_open,
            max_open_per_key,
            max_idle,
            max_idle_per_key,
            connect_timeout: self.connect_timeout,
            checkout_timeout: self.checkout_timeout,
            max_waiters: self.max_waiters,
        })
    }
}

impl<M: Manager<Key = ()>> Builder<M> {
    /// Pre-warms `n` connections while building (silenceper's `InitialCap`):
    /// the single-destination form of [`initial_for`](Builder::initial_for).
    pub fn initial(self, n: usize) -> Self {
        self.initial_for((), n)
    }
}

impl<M: Manager> std::fmt::Debug for Builder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("max_open", &self.max_open)
            .field("max_open_per_key", &self.max_open_per_key)
            .field("max_idle", &self.max_idle)
            .field("max_idle_per_key", &self.max_idle_per_key)
            .field("connect_timeout", &self.connect_timeout)
            .field("checkout_timeout", &self.checkout_timeout)
            .field("max_waiters", &self.max_waiters)
            .field("initial", &self.initial)
            .finish_non_exhaustive()
    }
}
