//! The [`Builder`]: a pool's settings, their defaults, and `build`.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::*;
use crate::error::BuildError;
use crate::hooks::Hooks;
use crate::manager::Manager;
use crate::pool::Pool;

mod hooks;
mod validate;

/// Builds a [`Pool`]: set what differs from the defaults, then [`build`](Builder::build).
///
/// | field | default | why |
/// |---|---|---|
/// | `max_open` | 100 ([`defaults::MAX_OPEN`](crate::defaults::MAX_OPEN)) | Go's default global idle cap (`MaxIdleConns`): enough for most services, and below PostgreSQL's default `max_connections` |
/// | `max_open_per_key` | `max_open` | one destination may use the whole pool, as Go's `MaxConnsPerHost = 0` |
/// | `max_idle` | `max_open` | nothing a burst opened is closed just for being returned |
/// | `max_idle_per_key` | min(`max_open_per_key`, `max_idle`) | no Go `MaxIdleConnsPerHost = 2` trap: no close/reopen churn, no `TIME_WAIT` pile-up |
/// | `initial` | none | pre-warming is a choice: it makes `build` fail when the backend is down |
/// | `connect_timeout` | 10 s ([`defaults::CONNECT_TIMEOUT`](crate::defaults::CONNECT_TIMEOUT)) | long enough for a slow TLS handshake across regions; a black-holed host frees its slot |
/// | `checkout_timeout` | 30 s ([`defaults::CHECKOUT_TIMEOUT`](crate::defaults::CHECKOUT_TIMEOUT)) | bb8's: a getter never hangs; waiting forever is an explicit opt-in |
/// | `max_waiters` | no cap | the checkout deadline already bounds how long waiters pile up |
/// | `idle_timeout` | 90 s ([`defaults::IDLE_TIMEOUT`](crate::defaults::IDLE_TIMEOUT)) | Go's `IdleConnTimeout`: carries a connection across the gaps of ordinary traffic; a quiet client hands its sockets back |
/// | `max_lifetime` | 30 min ([`defaults::MAX_LIFETIME`](crate::defaults::MAX_LIFETIME)) | HikariCP's and bb8's; follows DNS and load-balancer changes, bounds server-side leaks |
/// | `jitter` | 0.1 ([`defaults::JITTER`](crate::defaults::JITTER)) | gRPC's `MaxConnectionAge` jitter (applied downwards): no synchronized expiry or ping bursts |
/// | `max_uses` | no limit | most protocols don't need it (nginx's `keepalive_requests` does) |
/// | `min_idle` | 0 | keeping connections costs the server; opt in where cold starts hurt |
/// | `min_idle_for` | none (`min_idle`) | one value for every key is wrong when keys differ (a primary and its replicas) |
/// | `health_check` | `IfIdleFor(500 ms)` ([`defaults::HEALTH_CHECK`](crate::defaults::HEALTH_CHECK)) | HikariCP's bypass window (`aliveBypassWindowMs`): a connection that just worked almost surely works, and a busy pool pays no round trip |
/// | `ping_timeout` | 5 s ([`defaults::PING_TIMEOUT`](crate::defaults::PING_TIMEOUT)) | a healthy peer answers in milliseconds: this fails only a peer that is gone |
/// | `keepalive_interval` | 30 s ([`defaults::KEEPALIVE_INTERVAL`](crate::defaults::KEEPALIVE_INTERVAL)) | half the ~60 s after which NATs and firewalls drop an idle flow; a dead connection is found before a user meets it |
/// | `keepalive_timeout` | 10 s ([`defaults::KEEPALIVE_TIMEOUT`](crate::defaults::KEEPALIVE_TIMEOUT)) | an idle peer this slow is not worth keeping (gRPC's is 20 s) |
/// | `keepalive_max_missed` | the manager's ([`Manager::keepalive_max_missed`]): 1 ([`defaults::KEEPALIVE_MAX_MISSED`](crate::defaults::KEEPALIVE_MAX_MISSED)), WebSocket 3 | gRPC's semantics: a missed ping on an idle connection costs one dial to repair, keeping a doubtful one costs a user's request; WebSocket heartbeats' custom |
/// | `backoff` | 100 ms doubling to 5 s ([`defaults::BACKOFF_BASE`](crate::defaults::BACKOFF_BASE), [`defaults::BACKOFF_CAP`](crate::defaults::BACKOFF_CAP)) | a down backend is not hammered; one transient failure costs a key at most 100 ms of fast failures, a recovered backend is used within 5 s |
/// | `max_connecting` | 2 ([`defaults::MAX_CONNECTING`](crate::defaults::MAX_CONNECTING)) | MongoDB's `maxConnecting`: a burst on a cold key dials two at a time (each serving a waiter once up, returns serving the rest), no reconnect storm on a restarted backend |
/// | `max_borrowers` | 100 ([`defaults::MAX_BORROWERS`](crate::defaults::MAX_BORROWERS)) | gRPC's usual `MAX_CONCURRENT_STREAMS`: a multiplexed peer advertising no limit (or a huge one) still fans out over connections |
/// | `clock_thread` | off | a library starts no thread unasked; the coarse clock is nearly as cheap |
/// | `leak_detection_threshold` | off | what is "too long" depends on the work; a scan of the connections costs while on |
/// | `acquire_slow_threshold` | 2 s ([`defaults::ACQUIRE_SLOW_THRESHOLD`](crate::defaults::ACQUIRE_SLOW_THRESHOLD)) | sqlx's: a get waiting this long is a symptom, well before its checkout deadline fails it |
/// | `name` | `"connpool"` ([`defaults::NAME`](crate::defaults::NAME)) | OpenTelemetry's `db.client.connection.pool.name`; name pools apart when there are several |
/// | `metrics_key_attribute` | off | a key per series multiplies the series (cardinality) and costs a look-up per record |
/// | `after_connect` | none | a hook costs a round trip per dial; nothing to set by default |
/// | `before_lend` | none | the health check already covers liveness; without it a checkout runs no user code |
/// | `after_return` | none (the manager's own [`recycle`](Manager::recycle) still runs) | without it a return spawns no task |
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
/// # Hooks
///
/// [`after_connect`](Builder::after_connect), [`before_lend`](Builder::before_lend)
/// and [`after_return`](Builder::after_return) take an async function of a
/// connection and its key (a closure returning a boxed future, a
/// [`HookFuture`](crate::HookFuture)); each may fail with the manager's error.
///
/// | hook | runs | bounded by | an error (or a panic, or the time limit) |
/// |---|---|---|---|
/// | [`after_connect`](crate::Builder::after_connect) | on each new connection, inside its dial, before it is first lent or parked | `connect_timeout` (with the dial; after a recycle, the recycle's `ping_timeout`) | fails the dial with it ([`ConnectError::Manager`](crate::ConnectError::Manager)) |
/// | [`before_lend`](crate::Builder::before_lend) | before a connection taken from the idle list is lent, in the getter's task (after the health-check ping, if one is due) | `ping_timeout` and the checkout deadline | closes the connection ([`CloseReason::Broken`](crate::CloseReason::Broken)); the getter is served by another |
/// | [`after_return`](crate::Builder::after_return) | after a borrower gives back a connection lent exclusively, in a task of its own, before the connection is lent again or parked | `ping_timeout` | closes the connection ([`CloseReason::Broken`](crate::CloseReason::Broken)) |
///
/// A manager's own reset ([`Manager::recycle`],
/// e.g. the PostgreSQL manager's `DISCARD ALL`) runs at the same point as
/// `after_return`, first, followed by `after_connect` again (the session is
/// as new, and is set up as a new one is: a `SET` made by `after_connect`
/// survives the reset). While either runs the connection is *recycling*:
/// it counts as open (in [`PoolState::recycling`](crate::PoolState)), is
/// lent to nobody, and then goes through the hand-off like a returned
/// connection. The borrower's drop does not wait for it.
///
/// **Shared connections.** `after_connect` runs on every new connection.
/// `before_lend` runs on each borrower's handle before it is lent from a
/// checkout that did not wait (like the health check, not on a hand-off).
/// `after_return` and `Manager::recycle` do not run for shared
/// (multiplexed) connections: their borrowers share one session, so there
/// is no borrower's state to reset when one of them leaves.
///
/// `build` refuses inconsistent values with a [`ConfigError`](crate::ConfigError) naming the field.
pub struct Builder<M: Manager> {
    manager: M,
    set: Settings,
    /// In the order of the first call for each key; `initial_at` finds a
    /// key's place (pre-warming many keys stays linear).
    initial: Vec<(M::Key, usize)>,
    initial_at: HashMap<M::Key, usize>,
    /// The method that set `initial`, as errors name it: `initial` or
    /// `initial_for`.
    initial_method: &'static str,
    min_idle_for: Vec<(M::Key, usize)>,
    hooks: Hooks<M>,
}

impl<M: Manager> Builder<M> {
    pub(crate) fn new(manager: M) -> Self {
        Self {
            manager,
            set: Settings::default(),
            initial: Vec::new(),
            initial_at: HashMap::new(),
            initial_method: "initial_for",
            min_idle_for: Vec::new(),
            hooks: Hooks::default(),
        }
    }

    /// Cap on open connections (idle + lent + dialing) across all keys. At
    /// least 1. When it is reached, a getter of a key with no idle connection
    /// evicts the least recently used idle connection of another key, or waits.
    pub fn max_open(mut self, n: usize) -> Self {
        self.set.max_open = n;
        self
    }

    /// Cap on open connections of one key (Go's `MaxConnsPerHost`). At least
    /// 1, at most `max_open`; defaults to `max_open`.
    pub fn max_open_per_key(mut self, n: usize) -> Self {
        self.set.max_open_per_key = Some(n);
        self
    }

    /// Cap on idle connections across all keys (Go's `MaxIdleConns`); past it
    /// the least recently used idle connection of any key is closed. At least
    /// 1, at most `max_open`; defaults to `max_open`.
    pub fn max_idle(mut self, n: usize) -> Self {
        self.set.max_idle = Some(n);
        self
    }

    /// Cap on idle connections of one key (Go's `MaxIdleConnsPerHost`); a
    /// connection returned past it is closed. At least 1, at most
    /// `max_open_per_key` and `max_idle`; defaults to the smaller of them.
    pub fn max_idle_per_key(mut self, n: usize) -> Self {
        self.set.max_idle_per_key = Some(n);
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
        self.set.connect_timeout = d;
        self
    }

    /// How long a get may wait for a connection before it fails with
    /// [`Error::Timeout`](crate::Error::Timeout). `None` waits forever (an
    /// explicit opt-in: a dead backend then hangs its callers). Non-zero.
    ///
    /// The deadline costs a waiting get no timer: the pool's maintenance
    /// task wakes the getter when it passes (a getter on a runtime other
    /// than the pool's arms a timer of its own too, since the pool's
    /// runtime may not be driven).
    pub fn checkout_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.set.checkout_timeout = d.into();
        self
    }

    /// Cap on getters waiting at once; past it a get fails at once with
    /// [`Error::TooManyWaiters`](crate::Error::TooManyWaiters) (load shedding).
    /// Every getter that finds no idle connection waits, including one whose
    /// own dial is in flight, so the cap is at least 1: 0 would refuse every
    /// get that must dial and is refused by `build`. `None` (the default)
    /// means no cap.
    pub fn max_waiters(mut self, n: impl Into<Option<usize>>) -> Self {
        self.set.max_waiters = n.into();
        self
    }

    /// Closes a connection idle this long, promptly (the maintenance task
    /// wakes at the deadline), unless its key would drop below `min_idle`; a
    /// stale one met at checkout is closed, not lent. `None`: never. Non-zero.
    pub fn idle_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.set.idle_timeout = d.into();
        self
    }

    /// Closes a connection this old (shortened by up to `jitter`), idle or
    /// when it comes back from a borrower. `None`: never. Non-zero.
    pub fn max_lifetime(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.set.max_lifetime = d.into();
        self
    }

    /// Fraction in `[0, 1)` by which each connection's lifetime and each
    /// keepalive interval is randomly shortened, so connections opened or
    /// returned together don't expire or ping together.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.set.jitter = fraction;
        self
    }

    /// Closes a connection once it was lent this many times (nginx's
    /// `keepalive_requests`), when it comes back. `None`: no limit. At least
    /// 1, at most 2^32 − 1.
    pub fn max_uses(mut self, n: impl Into<Option<u64>>) -> Self {
        self.set.max_uses = n.into();
        self
    }

    /// Idle connections kept ready for every key the pool has seen (through
    /// a get or `initial_for`), refilled in the background after checkouts
    /// and closes, within the caps and the dial backoff. The idle timeout never
    /// closes a connection that would take its key below it. With a non-zero
    /// `min_idle` keys are never forgotten: use it with a bounded set of keys.
    /// At most `max_idle_per_key`.
    pub fn min_idle(mut self, n: usize) -> Self {
        self.set.min_idle = n;
        self
    }

    /// `min_idle` for `key` alone, where one value for every key is wrong
    /// (a primary kept warm, replicas not): the pool tracks `key` from the
    /// start and keeps `n` idle connections of it ready; other keys keep
    /// [`min_idle`](Builder::min_idle). Set again for the same key, the
    /// last value counts. Change it at run time with
    /// [`Pool::set_min_idle_for`]. At most `max_idle_per_key`.
    pub fn min_idle_for(mut self, key: M::Key, n: usize) -> Self {
        self.min_idle_for.push((key, n));
        self
    }

    /// When a connection taken from the idle list is pinged before it is lent.
    pub fn health_check(mut self, policy: HealthCheck) -> Self {
        self.set.health_check = policy;
        self
    }

    /// Time limit of a health-check ping (also bounded by the getter's
    /// checkout deadline). Non-zero.
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.set.ping_timeout = d;
        self
    }

    /// Background keepalive: a connection idle this long (shortened by up to
    /// `jitter`) is pinged, and again every interval while it stays idle.
    /// While its ping runs it is not lent: a getter meanwhile takes another
    /// connection, dials, or waits, and the pinged connection goes to the
    /// first waiter once its ping succeeds. `None`: no keepalive. Non-zero.
    pub fn keepalive_interval(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.set.keepalive_interval = d.into();
        self
    }

    /// Time limit of a keepalive ping: unanswered by then, it is missed. Non-zero.
    pub fn keepalive_timeout(mut self, d: Duration) -> Self {
        self.set.keepalive_timeout = d;
        self
    }

    /// Keepalive pings missed in a row that declare a connection dead
    /// (WebSocket-style counting; 1 is gRPC's semantics). A dead connection
    /// is closed and, below `min_idle`, replaced. At least 1, at most 65,535.
    /// Unset, the manager's ([`Manager::keepalive_max_missed`]).
    pub fn keepalive_max_missed(mut self, n: u32) -> Self {
        self.set.keepalive_max_missed = Some(n);
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
        self.set.backoff = Some(Backoff { base, cap });
        self
    }

    /// No dial backoff: every getter that finds no idle connection may dial,
    /// however often the key's dials fail.
    pub fn no_backoff(mut self) -> Self {
        self.set.backoff = None;
        self
    }

    /// Cap on dials in flight per key (the MongoDB pool spec's
    /// `maxConnecting`); getters past it wait for a connection or a dial
    /// slot. Pre-warm dials are not limited by it. At least 1.
    pub fn max_connecting(mut self, n: usize) -> Self {
        self.set.max_connecting = n;
        self
    }

    /// Cap on the borrowers of one shared connection: the limit a manager
    /// gives in [`Lending::shared`](crate::Lending::shared) (e.g. the peer's
    /// HTTP/2 stream limit) is clamped to it. Exclusive connections ignore
    /// it. At least 1 (1 lends every connection exclusively), at most 65,535.
    pub fn max_borrowers(mut self, n: usize) -> Self {
        self.set.max_borrowers = n;
        self
    }

    /// Checkout and return read the time from a clock thread instead of
    /// the kernel's coarse clock: one thread per process (`connpool-clock`,
    /// started by the first reading of a pool that asked for it) publishes
    /// the time every millisecond in an atomic while such pools are busy,
    /// and parks after 100 ms without a reading. The gain is a few
    /// nanoseconds per get + return (a vDSO call saved on each; see
    /// `BENCHMARKS.md`), worth it only for pools serving millions of gets a
    /// second; the cost is an OS thread that wakes a thousand times a second
    /// while any such pool is busy. Off by default: the hot path then reads
    /// `CLOCK_MONOTONIC_COARSE`. No effect under tokio's paused clock (the
    /// pool follows it) or off Linux.
    pub fn clock_thread(mut self, on: bool) -> Self {
        self.set.clock_thread = on;
        self
    }

    /// Leak detection (HikariCP's `leakDetectionThreshold`): a connection
    /// lent exclusively and held longer than `d` is reported once, at
    /// `warn`, with the call site of the [`get`](Pool::get) or
    /// [`get_for`](Pool::get_for) that took it, its key and how long it
    /// has been held, and counted in [`Counters::leaks`](crate::Counters::leaks).
    /// The connection stays lent: a report is a hint, not a verdict
    /// (a long transaction looks the same). Handles to shared connections
    /// are not tracked.
    ///
    /// No timer or task per borrow: a checkout stamps the connection's
    /// record with the time and the call site (two stores it makes
    /// whether or not this is on), and the maintenance task scans the
    /// pool's connection records while this is on: when the connection
    /// lent longest ago that it knows of passes `d`, or `d` after the last
    /// scan, but never sooner than `d / 4` after it. So a connection is
    /// reported between `d` and `1.25 d` after it was lent, and the cost is
    /// at most four scans per `d`, each O(open connections). `None` (the
    /// default): no scan. Non-zero.
    pub fn leak_detection_threshold(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.set.leak_detection_threshold = d.into();
        self
    }

    /// A get that waited longer than `d` for its connection (or its error)
    /// is logged at `warn` when its wait ends, with its key, how long it
    /// waited, how it ended and what it waited behind: every connection of
    /// the key lent (`all_lent`), dials in flight or `max_connecting`
    /// (`dialing`), the pool's `max_open` (`pool_full`) or a backoff that
    /// failed it (`backoff`). sqlx's `acquire_slow_threshold`. `None`: never.
    /// Non-zero.
    pub fn acquire_slow_threshold(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.set.acquire_slow_threshold = d.into();
        self
    }

    /// The pool's name, in its metrics (`db.client.connection.pool.name`)
    /// and its log events (`pool`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.set.name = name.into();
        self
    }

    /// Metrics carry the key too (`connpool.key`, the key's `Debug`): the
    /// histograms and the timeouts counter, not the gauges. Each key makes
    /// its own series, and each record then looks its series up in the
    /// recorder: use it with a small, bounded set of keys.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics_key_attribute(mut self, on: bool) -> Self {
        self.set.metrics_key_attribute = on;
        self
    }

    /// Validates the configuration, pre-warms the `initial` connections and
    /// returns the pool. Must be called within a tokio runtime: the pool
    /// spawns its dials and closes there. If that runtime's clock is paused
    /// now, the pool keeps time by it (see "Time in tests" in the crate docs).
    pub async fn build(self) -> Result<Pool<M>, BuildError<M::Error>> {
        let config = self.validate()?;
        let mut hooks = self.hooks;
        hooks.recycles = hooks.after_return.is_some() || self.manager.recycles();
        Pool::start(self.manager, config, hooks, self.initial, self.min_idle_for).await
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
            .field("settings", &self.set)
            .field("initial", &self.initial)
            .field("min_idle_for", &self.min_idle_for)
            .field("hooks", &self.hooks.names())
            .finish_non_exhaustive()
    }
}
