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

use std::collections::HashMap;
use std::time::Duration;

use crate::clock::{self, Tick};
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
/// Default for `idle_timeout`: Go's `IdleConnTimeout`. Long enough to carry a
/// connection across the gaps of ordinary traffic, short enough that a quiet
/// client hands its sockets back to the server.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Default for `max_lifetime`: HikariCP's and bb8's 30 minutes, so load
/// balancers and DNS changes are followed and server-side leaks are bounded.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Default for `jitter`: gRPC's ±10% on `MaxConnectionAge`, applied downwards
/// so a lifetime never exceeds `max_lifetime`.
pub const DEFAULT_JITTER: f64 = 0.1;
/// Default for the health check: HikariCP skips validation of a connection
/// used within the last 500 ms (`aliveBypassWindowMs`): a connection that just
/// worked almost surely still works, and a busy pool pays no round trip.
pub const DEFAULT_HEALTH_CHECK: HealthCheck = HealthCheck::IfIdleFor(Duration::from_millis(500));
/// Default for `ping_timeout`: a healthy peer answers a ping in milliseconds;
/// five seconds only fails a peer that is gone.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for `keepalive_interval`: half of the ~60 s after which NATs and
/// firewalls commonly drop an idle flow, so idle connections survive them,
/// and a dead one is found before a user meets it.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Default for `keepalive_timeout`: gRPC's `Timeout` is 20 s; an idle
/// connection whose peer takes more than 10 s to answer a ping is not worth
/// keeping.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for `keepalive_max_missed`: 1, gRPC's semantics. A missed ping on
/// an idle connection costs one dial to repair; keeping a doubtful one costs
/// a user's request.
pub const DEFAULT_KEEPALIVE_MAX_MISSED: u32 = 1;
/// Default first dial backoff: short enough that one transient failure costs
/// callers of that key at most 100 ms of fast failures.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Default backoff cap: a backend that comes back is used again within 5 s.
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Default for `max_connecting`: the MongoDB pool spec's `maxConnecting`. A
/// burst of getters on a cold key opens connections two at a time (each
/// serving a waiter as soon as it is up, returns serving the rest), instead
/// of hitting a just-restarted backend with one handshake per getter.
pub const DEFAULT_MAX_CONNECTING: usize = 2;
/// Default for `max_borrowers`: a shared (multiplexed) connection carries at
/// most 100 borrowers at once, gRPC's usual `MAX_CONCURRENT_STREAMS`. A peer
/// that advertises no limit (or a huge one) would otherwise never look
/// saturated, and every call would funnel through one connection.
pub const DEFAULT_MAX_BORROWERS: usize = 100;

// Bounds that keep a connection's life record small (its counts are narrow).
const MAX_USES_LIMIT: u64 = u32::MAX as u64;
const MAX_MISSED_LIMIT: u32 = u16::MAX as u32;
const MAX_BORROWERS_LIMIT: usize = u16::MAX as usize;

/// Refuses a count of `field` outside `1..=max`, naming the field.
fn count_in_range(field: &'static str, value: u64, max: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::new(field, "must be at least 1"))
    } else if value > max {
        Err(ConfigError::new(
            field,
            format!("({value}) must be at most {max}"),
        ))
    } else {
        Ok(())
    }
}

/// When a connection taken from the idle list is pinged
/// ([`Manager::ping`]) before it is lent.
///
/// A connection that fails the check (or its [`ping_timeout`](Builder::ping_timeout))
/// is closed and the getter is served by another idle connection or a new
/// dial, within its checkout deadline. A connection handed over directly by a
/// returning borrower, or freshly dialed, is never pinged: it just worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheck {
    /// Never ping: only [`Manager::is_broken`] is checked. Cheapest; a dead
    /// connection reaches the user when `is_broken` cannot see its death.
    Never,
    /// Ping every connection taken from the idle list: no known-dead
    /// connection is ever lent, at one round trip per idle checkout.
    Always,
    /// Ping when the connection was idle this long or longer (HikariCP).
    IfIdleFor(Duration),
}

/// Exponential dial backoff of one key: after the `n`th consecutive failed
/// dial, no dial for a random time between half of and all of
/// `min(cap, base × 2ⁿ⁻¹)` ("equal jitter", so keys that failed together
/// retry apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
}

impl Backoff {
    /// The delay after `failures` consecutive failures, before jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// A validated pool configuration (see [`Builder`] for each field's meaning and default).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub(crate) max_open: usize,
    pub(crate) max_open_per_key: usize,
    pub(crate) max_idle: usize,
    pub(crate) max_idle_per_key: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) checkout_timeout: Option<Duration>,
    pub(crate) max_waiters: Option<usize>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) jitter: f64,
    pub(crate) max_uses: Option<u64>,
    pub(crate) min_idle: usize,
    pub(crate) health_check: HealthCheck,
    pub(crate) ping_timeout: Duration,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) keepalive_max_missed: u32,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) max_connecting: usize,
    pub(crate) max_borrowers: usize,
    /// `idle_timeout` in nanoseconds (`u64::MAX`: none), and the health
    /// check's idle threshold (0: `Always`, `u64::MAX`: `Never`): checkout
    /// and return compare with them, without converting a `Duration` each
    /// time.
    pub(crate) idle_timeout_ns: u64,
    pub(crate) health_idle_ns: u64,
}

impl Config {
    /// How long a key whose dial failed is remembered (its last dial error,
    /// its failures in a row, its backoff) once nothing else keeps it: a
    /// backoff cap past the backoff; without backoff, a default backoff cap
    /// or a checkout deadline past the failure, whichever is longer.
    pub(crate) fn failure_memory(&self) -> Duration {
        match self.backoff {
            Some(b) => b.cap,
            None => DEFAULT_BACKOFF_CAP.max(self.checkout_timeout.unwrap_or_default()),
        }
    }

    /// Whether the health-check policy pings a connection idle since `since`
    /// before it is lent at `now`.
    #[inline]
    pub(crate) fn health_check_due(&self, since: Tick, now: Tick) -> bool {
        match self.health_idle_ns {
            0 => true,
            u64::MAX => false,
            // An addition, not `now - since`: cheaper, and it saturates.
            n => since.add_nanos(n) <= now,
        }
    }

    /// Whether a connection idle since `since` reached the idle timeout at `now`.
    #[inline]
    pub(crate) fn idle_timed_out(&self, since: Tick, now: Tick) -> bool {
        self.idle_timeout_ns != u64::MAX && since.add_nanos(self.idle_timeout_ns) <= now
    }

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
    /// How long a connection may stay idle; `None` means forever.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }
    /// How long a connection may live; `None` means forever.
    pub fn max_lifetime(&self) -> Option<Duration> {
        self.max_lifetime
    }
    /// Fraction by which lifetimes and keepalive intervals are randomly shortened.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }
    /// How many times a connection may be lent; `None` means no limit.
    pub fn max_uses(&self) -> Option<u64> {
        self.max_uses
    }
    /// Idle connections kept ready per key.
    pub fn min_idle(&self) -> usize {
        self.min_idle
    }
    /// When an idle connection is pinged before it is lent.
    pub fn health_check(&self) -> HealthCheck {
        self.health_check
    }
    /// Time limit of a health-check ping.
    pub fn ping_timeout(&self) -> Duration {
        self.ping_timeout
    }
    /// Idle time after which background keepalive pings; `None`: no keepalive.
    pub fn keepalive_interval(&self) -> Option<Duration> {
        self.keepalive_interval
    }
    /// Time limit of a keepalive ping.
    pub fn keepalive_timeout(&self) -> Duration {
        self.keepalive_timeout
    }
    /// Keepalive pings failed in a row that declare a connection dead.
    pub fn keepalive_max_missed(&self) -> u32 {
        self.keepalive_max_missed
    }
    /// Dial backoff per key; `None`: none.
    pub fn backoff(&self) -> Option<Backoff> {
        self.backoff
    }
    /// Cap on dials in flight per key.
    pub fn max_connecting(&self) -> usize {
        self.max_connecting
    }
    /// Cap on the borrowers of one shared connection.
    pub fn max_borrowers(&self) -> usize {
        self.max_borrowers
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
/// | `idle_timeout` | 90 s ([`DEFAULT_IDLE_TIMEOUT`]) | Go's; idle sockets go back to the server |
/// | `max_lifetime` | 30 min ([`DEFAULT_MAX_LIFETIME`]) | HikariCP's and bb8's; follows DNS and load-balancer changes |
/// | `jitter` | 0.1 ([`DEFAULT_JITTER`]) | gRPC's `MaxConnectionAge` jitter: no synchronized expiry or ping bursts |
/// | `max_uses` | no limit | most protocols don't need it (nginx's `keepalive_requests` does) |
/// | `min_idle` | 0 | keeping connections costs the server; opt in where cold starts hurt |
/// | `health_check` | `IfIdleFor(500 ms)` ([`DEFAULT_HEALTH_CHECK`]) | HikariCP's bypass window |
/// | `ping_timeout` | 5 s ([`DEFAULT_PING_TIMEOUT`]) | fails only a peer that is gone |
/// | `keepalive_interval` | 30 s ([`DEFAULT_KEEPALIVE_INTERVAL`]) | under the ~60 s NAT idle limit |
/// | `keepalive_timeout` | 10 s ([`DEFAULT_KEEPALIVE_TIMEOUT`]) | an idle peer this slow is not worth keeping |
/// | `keepalive_max_missed` | 1 ([`DEFAULT_KEEPALIVE_MAX_MISSED`]) | gRPC's semantics |
/// | `backoff` | 100 ms doubling to 5 s ([`DEFAULT_BACKOFF_BASE`], [`DEFAULT_BACKOFF_CAP`]) | a down backend is not hammered, a recovered one is used soon |
/// | `max_connecting` | 2 ([`DEFAULT_MAX_CONNECTING`]) | MongoDB's `maxConnecting`: no reconnect storm |
/// | `max_borrowers` | 100 ([`DEFAULT_MAX_BORROWERS`]) | a multiplexed peer advertising no stream limit still fans out |
///
/// # Keepalive and the gRPC `MinTime` trap
///
/// Background keepalive calls [`Manager::ping`] on connections idle for
/// `keepalive_interval`. When a manager's ping is an HTTP/2 PING frame, keep
/// the interval at or above the server's enforcement policy (gRPC servers'
/// `MinTime`, 5 minutes by default): a client that pings more often is sent
/// GOAWAY `too_many_pings` and loses the connection. A gRPC health-check
/// RPC as the ping is an ordinary call and is not subject to that policy.
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
    /// In the order of the first call for each key; `initial_at` finds a
    /// key's place (pre-warming many keys stays linear).
    initial: Vec<(M::Key, usize)>,
    initial_at: HashMap<M::Key, usize>,
    /// The method that set `initial`, as errors name it: `initial` or
    /// `initial_for`.
    initial_method: &'static str,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    jitter: f64,
    max_uses: Option<u64>,
    min_idle: usize,
    health_check: HealthCheck,
    ping_timeout: Duration,
    keepalive_interval: Option<Duration>,
    keepalive_timeout: Duration,
    keepalive_max_missed: u32,
    backoff: Option<Backoff>,
    max_connecting: usize,
    max_borrowers: usize,
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
            initial_at: HashMap::new(),
            initial_method: "initial_for",
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_lifetime: Some(DEFAULT_MAX_LIFETIME),
            jitter: DEFAULT_JITTER,
            max_uses: None,
            min_idle: 0,
            health_check: DEFAULT_HEALTH_CHECK,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            keepalive_interval: Some(DEFAULT_KEEPALIVE_INTERVAL),
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            keepalive_max_missed: DEFAULT_KEEPALIVE_MAX_MISSED,
            backoff: Some(Backoff {
                base: DEFAULT_BACKOFF_BASE,
                cap: DEFAULT_BACKOFF_CAP,
            }),
            max_connecting: DEFAULT_MAX_CONNECTING,
            max_borrowers: DEFAULT_MAX_BORROWERS,
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
    /// `InitialCap`, per key); a second call for a key replaces its count.
    /// They are dialed concurrently; if any dial fails, `build` fails and
    /// closes the others.
    pub fn initial_for(mut self, key: M::Key, n: usize) -> Self {
        match self.initial_at.get(&key) {
            Some(&at) => self.initial[at].1 = n,
            None => {
                self.initial_at.insert(key.clone(), self.initial.len());
                self.initial.push((key, n));
            }
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
    pub fn checkout_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.checkout_timeout = d.into();
        self
    }

    /// Cap on getters waiting at once; past it a get fails at once with
    /// [`Error::TooManyWaiters`](crate::Error::TooManyWaiters) (load shedding).
    /// Every getter that finds no idle connection waits, including one whose
    /// own dial is in flight, so the cap is at least 1: 0 would refuse every
    /// get that must dial and is refused by `build`. `None` (the default)
    /// means no cap.
    pub fn max_waiters(mut self, n: impl Into<Option<usize>>) -> Self {
        self.max_waiters = n.into();
        self
    }

    /// Closes a connection idle this long, promptly (the maintenance task
    /// wakes at the deadline), unless its key would drop below `min_idle`; a
    /// stale one met at checkout is closed, not lent. `None`: never. Non-zero.
    pub fn idle_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.idle_timeout = d.into();
        self
    }

    /// Closes a connection this old (shortened by up to `jitter`), idle or
    /// when it comes back from a borrower. `None`: never. Non-zero.
    pub fn max_lifetime(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.max_lifetime = d.into();
        self
    }

    /// Fraction in `[0, 1)` by which each connection's lifetime and each
    /// keepalive interval is randomly shortened, so connections opened or
    /// returned together don't expire or ping together.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// Closes a connection once it was lent this many times (nginx's
    /// `keepalive_requests`), when it comes back. `None`: no limit. At least
    /// 1, at most 2^32 − 1.
    pub fn max_uses(mut self, n: impl Into<Option<u64>>) -> Self {
        self.max_uses = n.into();
        self
    }

    /// Idle connections kept ready for every key the pool has seen (through
    /// a get or `initial_for`), refilled in the background after checkouts
    /// and closes, within the caps and the dial backoff. The idle timeout never
    /// closes a connection that would take its key below it. With a non-zero
    /// `min_idle` keys are never forgotten: use it with a bounded set of keys.
    /// At most `max_idle_per_key`.
    pub fn min_idle(mut self, n: usize) -> Self {
        self.min_idle = n;
        self
    }

    /// When a connection taken from the idle list is pinged before it is lent.
    pub fn health_check(mut self, policy: HealthCheck) -> Self {
        self.health_check = policy;
        self
    }

    /// Time limit of a health-check ping (also bounded by the getter's
    /// checkout deadline). Non-zero.
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.ping_timeout = d;
        self
    }

    /// Background keepalive: a connection idle this long (shortened by up to
    /// `jitter`) is pinged, and again every interval while it stays idle.
    /// While its ping runs it is not lent: a getter meanwhile takes another
    /// connection, dials, or waits, and the pinged connection goes to the
    /// first waiter once its ping succeeds. `None`: no keepalive. Non-zero.
    pub fn keepalive_interval(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.keepalive_interval = d.into();
        self
    }

    /// Time limit of a keepalive ping: unanswered by then, it is missed. Non-zero.
    pub fn keepalive_timeout(mut self, d: Duration) -> Self {
        self.keepalive_timeout = d;
        self
    }

    /// Keepalive pings missed in a row that declare a connection dead
    /// (WebSocket-style counting; 1 is gRPC's semantics). A dead connection
    /// is closed and, below `min_idle`, replaced. At least 1, at most 65,535.
    pub fn keepalive_max_missed(mut self, n: u32) -> Self {
        self.keepalive_max_missed = n;
        self
    }

    /// Dial backoff per key: after the `n`th consecutive failed dial of a key,
    /// no dial of it for a random time in `[d/2, d]`, `d = min(cap, base ×
    /// 2ⁿ⁻¹)`; meanwhile a get of that key that finds no idle connection
    /// fails at once with [`Error::Backoff`](crate::Error::Backoff), carrying
    /// the last dial error. A successful dial ends it. A key whose dials
    /// failed is remembered, even with nothing open, during its backoff and
    /// for one `cap` after it, so failures in a row keep counting across
    /// retries. `base` non-zero, at most `cap`.
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff = Some(Backoff { base, cap });
        self
    }

    /// No dial backoff: every getter that finds no idle connection may dial,
    /// however often the key's dials fail.
    pub fn no_backoff(mut self) -> Self {
        self.backoff = None;
        self
    }

    /// Cap on dials in flight per key (the MongoDB pool spec's
    /// `maxConnecting`); getters past it wait for a connection or a dial
    /// slot. Pre-warm dials are not limited by it. At least 1.
    pub fn max_connecting(mut self, n: usize) -> Self {
        self.max_connecting = n;
        self
    }

    /// Cap on the borrowers of one shared connection: the limit a manager
    /// gives in [`Lending::shared`](crate::Lending::shared) (e.g. the peer's
    /// HTTP/2 stream limit) is clamped to it. Exclusive connections ignore
    /// it. At least 1 (1 lends every connection exclusively), at most 65,535.
    pub fn max_borrowers(mut self, n: usize) -> Self {
        self.max_borrowers = n;
        self
    }

    /// Validates the configuration, pre-warms the `initial` connections and
    /// returns the pool. Must be called within a tokio runtime: the pool
    /// spawns its dials and closes there. If that runtime's clock is paused
    /// now, the pool keeps time by it (see "Time in tests" in the crate docs).
    pub async fn build(self) -> Result<Pool<M>, BuildError<M::Error>> {
        let config = self.validate()?;
        Pool::start(self.manager, config, self.initial).await
    }

    pub(crate) fn validate(&self) -> Result<Config, ConfigError> {
        let max_open = self.max_open;
        if max_open == 0 {
            return Err(ConfigError::new("max_open", "must be at least 1"));
        }
        // A cap the user left unset is named by the setting it defaults to:
        // a message names only settings the user can see in their code.
        let open_per_key_cap = |n| match self.max_open_per_key {
            Some(_) => format!("`max_open_per_key` ({n})"),
            None => format!("`max_open` ({n}), which `max_open_per_key` defaults to"),
        };
        let idle_cap = |n| match self.max_idle {
            Some(_) => format!("`max_idle` ({n})"),
            None => format!("`max_open` ({n}), which `max_idle` defaults to"),
        };
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
        let idle_per_key_cap = |n| {
            let origin = if max_open_per_key <= max_idle {
                self.max_open_per_key
                    .map_or("max_open", |_| "max_open_per_key")
            } else {
                "max_idle"
            };
            match self.max_idle_per_key {
                Some(_) => format!("`max_idle_per_key` ({n})"),
                None => format!("`{origin}` ({n}), which `max_idle_per_key` defaults to"),
            }
        };
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
                    "({max_idle_per_key}) must not exceed {}",
                    open_per_key_cap(max_open_per_key)
                ),
            ));
        }
        if max_idle_per_key > max_idle {
            return Err(ConfigError::new(
                "max_idle_per_key",
                format!(
                    "({max_idle_per_key}) must not exceed {}",
                    idle_cap(max_idle)
                ),
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
        let positive = [
            ("idle_timeout", self.idle_timeout),
            ("max_lifetime", self.max_lifetime),
            ("ping_timeout", Some(self.ping_timeout)),
            ("keepalive_interval", self.keepalive_interval),
            ("keepalive_timeout", Some(self.keepalive_timeout)),
        ];
        for (field, d) in positive {
            if d.is_some_and(|d| d.is_zero()) {
                return Err(ConfigError::new(field, "must be greater than zero"));
            }
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(ConfigError::new(
                "jitter",
                format!("({}) must be in [0, 1)", self.jitter),
            ));
        }
        if let Some(n) = self.max_uses {
            count_in_range("max_uses", n, MAX_USES_LIMIT)?;
        }
        if self.min_idle > max_idle_per_key {
            return Err(ConfigError::new(
                "min_idle",
                format!(
                    "({}) must not exceed {}",
                    self.min_idle,
                    idle_per_key_cap(max_idle_per_key)
                ),
            ));
        }
        count_in_range(
            "keepalive_max_missed",
            self.keepalive_max_missed.into(),
            MAX_MISSED_LIMIT.into(),
        )?;
        if let Some(b) = self.backoff {
            if b.base.is_zero() {
                return Err(ConfigError::new(
                    "backoff",
                    "base must be greater than zero (use `no_backoff()` for none)",
                ));
            }
            if b.base > b.cap {
                return Err(ConfigError::new(
                    "backoff",
                    format!("base ({:?}) must not exceed cap ({:?})", b.base, b.cap),
                ));
            }
        }
        count_in_range("max_connecting", self.max_connecting as u64, u64::MAX)?;
        count_in_range(
            "max_borrowers",
            self.max_borrowers as u64,
            MAX_BORROWERS_LIMIT as u64,
        )?;
        let mut total = 0usize;
        let method = self.initial_method;
        for (key, n) in &self.initial {
            if *n > max_idle_per_key {
                let what = match method {
                    "initial" => format!("{n}"),
                    _ => format!("{n} for key {key:?}"),
                };
                return Err(ConfigError::new(
                    method,
                    format!(
                        "({what}) must not exceed {}: the extra connections would be closed \
                         as soon as they were opened",
                        idle_per_key_cap(max_idle_per_key)
                    ),
                ));
            }
            total += n;
        }
        if total > max_idle {
            return Err(ConfigError::new(
                method,
                format!("({total} in all) must not exceed {}", idle_cap(max_idle)),
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
            idle_timeout: self.idle_timeout,
            max_lifetime: self.max_lifetime,
            jitter: self.jitter,
            max_uses: self.max_uses,
            min_idle: self.min_idle,
            health_check: self.health_check,
            ping_timeout: self.ping_timeout,
            keepalive_interval: self.keepalive_interval,
            keepalive_timeout: self.keepalive_timeout,
            keepalive_max_missed: self.keepalive_max_missed,
            backoff: self.backoff,
            max_connecting: self.max_connecting,
            max_borrowers: self.max_borrowers,
            idle_timeout_ns: self.idle_timeout.map_or(u64::MAX, clock::nanos),
            health_idle_ns: match self.health_check {
                HealthCheck::Always => 0,
                HealthCheck::IfIdleFor(d) => clock::nanos(d).max(1),
                HealthCheck::Never => u64::MAX,
            },
        })
    }
}

impl<M: Manager<Key = ()>> Builder<M> {
    /// Pre-warms `n` connections while building (silenceper's `InitialCap`):
    /// the single-destination form of [`initial_for`](Builder::initial_for).
    pub fn initial(self, n: usize) -> Self {
        let mut builder = self.initial_for((), n);
        builder.initial_method = "initial";
        builder
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
            .field("idle_timeout", &self.idle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("jitter", &self.jitter)
            .field("max_uses", &self.max_uses)
            .field("min_idle", &self.min_idle)
            .field("health_check", &self.health_check)
            .field("ping_timeout", &self.ping_timeout)
            .field("keepalive_interval", &self.keepalive_interval)
            .field("keepalive_timeout", &self.keepalive_timeout)
            .field("keepalive_max_missed", &self.keepalive_max_missed)
            .field("backoff", &self.backoff)
            .field("max_connecting", &self.max_connecting)
            .field("max_borrowers", &self.max_borrowers)
            .finish_non_exhaustive()
    }
}
