//! The [`Builder`]'s setters of the fields of
//! [`Settings`](crate::settings::Settings): each sets the field of its
//! name, and refuses a value outside what its docs say it takes (`build`
//! then fails naming it). The defaults are with the fields. The setters
//! that do more than set a field (`initial_for`, `min_idle_for`,
//! `no_backoff`, `initial`) are in `builder.rs`, the hooks' in `hooks.rs`;
//! the rules that compare settings (the caps) are checked by `build`
//! (`validate.rs`).

use std::time::Duration;

use super::{Builder, at_least_one, non_zero};
use crate::manager::Manager;
use crate::policy::Backoff;
#[cfg(doc)]
use crate::pool::Pool;

impl<M: Manager> Builder<M> {
    /// Cap on open connections (idle + lent + dialing) across all keys. At
    /// least 1. When it is reached, a getter of a key with no idle connection
    /// evicts the least recently used idle connection of another key, or waits.
    /// Unset: 100, or what the manager asks for
    /// ([`Manager::default_max_open`]: PostgreSQL's, 2 × CPUs).
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

    /// Time limit of one dial (`Manager::connect`). Non-zero.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.set.connect_timeout = d;
        self.rule("connect_timeout", non_zero(Some(d), ""))
    }

    /// How long a get may wait for a connection before it fails with
    /// [`Error::Timeout`](crate::Error::Timeout): all of its wait, for an
    /// idle connection, a dial (its own or one it queued behind) or the
    /// probe of a key backing off, and the health checks of idle
    /// connections it tried. `None` waits forever (an explicit opt-in: a
    /// dead backend then hangs its callers). Non-zero.
    ///
    /// A getter that waits keeps its deadline with a timer of its own, so
    /// that its error comes on time whatever else the runtime runs (no
    /// other task has to be scheduled first; RELIABILITY.md has how late
    /// it comes on a saturated runtime).
    pub fn checkout_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.set.checkout_timeout = d.into();
        let forever = " (use `None` to wait forever)";
        let refused = non_zero(self.set.checkout_timeout, forever);
        self.rule("checkout_timeout", refused)
    }

    /// Cap on getters waiting at once; past it a get fails at once with
    /// [`Error::TooManyWaiters`](crate::Error::TooManyWaiters) (load shedding).
    /// Every getter that finds no idle connection waits, including one whose
    /// own dial is in flight, so the cap is at least 1: 0 would refuse every
    /// get that must dial and is refused by `build`. `None` (the default)
    /// means no cap.
    pub fn max_waiters(mut self, n: impl Into<Option<usize>>) -> Self {
        let n = n.into();
        self.set.max_waiters = n;
        let why = "must be at least 1 (a getter waits for its own dial; use `None` for no cap)";
        self.rule("max_waiters", (n == Some(0)).then(|| why.into()))
    }

    /// Closes a connection idle this long, promptly (the maintenance task
    /// wakes at the deadline), unless its key would drop below `min_idle`; a
    /// stale one met at checkout is closed, not lent. `None`: never. Non-zero.
    pub fn idle_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.set.idle_timeout = d.into();
        let refused = non_zero(self.set.idle_timeout, "");
        self.rule("idle_timeout", refused)
    }

    /// Closes a connection this old (shortened by up to `jitter`), idle or
    /// when it comes back from a borrower. `None`: never. Non-zero.
    pub fn max_lifetime(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.set.max_lifetime = d.into();
        let refused = non_zero(self.set.max_lifetime, "");
        self.rule("max_lifetime", refused)
    }

    /// Fraction in `[0, 1)` by which each connection's lifetime and each
    /// keepalive interval is randomly shortened, so connections opened or
    /// returned together don't expire or ping together.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.set.jitter = fraction;
        let why = format!("({fraction}) must be in [0, 1)");
        let refused = (!(0.0..1.0).contains(&fraction)).then_some(why);
        self.rule("jitter", refused)
    }

    /// Closes a connection once it was lent this many times (nginx's
    /// `keepalive_requests`), when it comes back. `None`: no limit. At least
    /// 1, at most 2^32 − 1.
    pub fn max_uses(mut self, n: impl Into<Option<u64>>) -> Self {
        let n = n.into();
        self.set.max_uses = n;
        self.rule("max_uses", n.and_then(|n| at_least_one(n, u32::MAX.into())))
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

    /// Health check before lending (HikariCP's rule): a connection taken
    /// from the idle list after `d` or more idle is pinged
    /// ([`Manager::ping`]) before it is lent; `Duration::ZERO` pings
    /// every one, `None` none (only [`Manager::health`] is
    /// checked: cheapest, and a dead connection reaches the borrower
    /// when `health` cannot see its death). A connection that fails
    /// the ping (or its `ping_timeout`) is closed, and the getter is
    /// served by another idle connection or a new dial, within its
    /// checkout deadline. A connection handed over by a returning
    /// borrower, or freshly dialed, is never pinged: it just worked.
    pub fn health_check(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.set.health_check = d.into();
        self
    }

    /// Time limit of each check the pool runs on a connection, one
    /// by one:
    ///
    /// - the health check before lending ([`Manager::ping`]; also
    ///   bounded by the getter's checkout deadline): past it the
    ///   connection is closed and the getter served otherwise;
    /// - the background keepalive's ping: past it the ping is missed;
    /// - the [`before_lend`](crate::Builder::before_lend) hook (after
    ///   the health check, with a limit of its own; also bounded by
    ///   the checkout deadline): past it the connection is closed;
    /// - a returned connection's recycle: [`Manager::recycle`] and the
    ///   [`after_return`](crate::Builder::after_return) hook, together:
    ///   past it the connection is closed as broken.
    ///
    /// Not the dial ([`connect_timeout`](crate::Builder::connect_timeout),
    /// which also bounds the `after_connect` hook) nor a borrower's
    /// own calls. Non-zero.
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.set.ping_timeout = d;
        self.rule("ping_timeout", non_zero(Some(d), ""))
    }

    /// Background keepalive: a connection idle this long (shortened by up to
    /// `jitter`) is pinged, and again every interval while it stays idle.
    /// While its ping runs it is not lent: a getter meanwhile takes another
    /// connection, dials, or waits, and the pinged connection goes to the
    /// first waiter once its ping succeeds. `None`: no keepalive. Non-zero.
    pub fn keepalive_interval(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.set.keepalive_interval = d.into();
        let refused = non_zero(self.set.keepalive_interval, "");
        self.rule("keepalive_interval", refused)
    }

    /// Keepalive pings missed in a row that declare a connection dead
    /// (WebSocket-style counting; 1 is gRPC's semantics). A dead connection
    /// is closed and, below `min_idle`, replaced. At least 1, at most 65,535.
    /// A manager whose connections watch themselves while lent (the
    /// WebSocket heartbeat) counts with it too ([`Manager::liveness`]).
    pub fn keepalive_max_missed(mut self, n: u32) -> Self {
        self.set.keepalive_max_missed = n;
        let refused = at_least_one(n.into(), u16::MAX.into());
        self.rule("keepalive_max_missed", refused)
    }

    /// Dial backoff per key: after the `n`th consecutive failed dial of a key,
    /// no getter dials it for a random time in `[d/2, d]`, `d = min(cap,
    /// base × 2ⁿ⁻¹)`. A successful dial ends it. While getters ask, the
    /// pool probes the key itself, one dial at a time, within 400 ms of each
    /// failure (200–400 ms, jittered) or, once the key has been down longer
    /// than 1.6 s, within a quarter of the outage so far (half to all of
    /// it, jittered), and never later than the backoff's end: a server back
    /// from a short outage ends the backoff for everyone within about half
    /// a second, however long the backoff had grown, and one down for a
    /// minute costs each client about 30 dials of the key, not 200
    /// (`Counters::probes`). A get that finds the key in backoff and
    /// nothing idle waits for the next probe, within its own deadline: the
    /// probe's success serves it, its failure fails it with
    /// [`Error::Backoff`](crate::Error::Backoff), carrying the dial error
    /// (so a get asked after the server is back is served, by the next
    /// probe: within its deadline if that is longer than the probe delay).
    /// A key whose dials failed is remembered, even with nothing open,
    /// during its backoff and for one `cap` after it, so failures in a row
    /// keep counting across retries. `base` non-zero, at most `cap`.
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.set.backoff = Some(Backoff { base, cap });
        let refused = match base.is_zero() {
            true => Some("base must be greater than zero (use `no_backoff()` for none)".into()),
            false => (base > cap).then(|| format!("base ({base:?}) must not exceed cap ({cap:?})")),
        };
        self.rule("backoff", refused)
    }

    /// Cap on dials in flight per key (the MongoDB pool spec's
    /// `maxConnecting`); getters past it wait for a connection or a dial
    /// slot. Pre-warm dials are not limited by it. A key whose last dial
    /// failed has one dial in flight at a time until one succeeds. At
    /// least 1.
    ///
    /// Unset (the default), the cap holds, at 2, only **while a key is untried or recovers**: it has made no connection
    /// yet (the first tells whether its connections are shared, and by how
    /// many: a burst on a cold HTTP/2 key dials what its streams need, not
    /// a connection per getter), or a dial of it failed, or its server was
    /// found changed, within its failure memory (the backoff cap), so that
    /// a backend coming back is not met by a dial per waiter. A healthy key
    /// dials as many at once as `max_open_per_key` and `max_open` let it,
    /// as Go's `Transport` does, so a server that closes every connection
    /// after one request is served at full speed. Set, it holds always
    /// (a database whose connections are costly to open, at a cold start).
    pub fn max_connecting(mut self, n: usize) -> Self {
        self.set.max_connecting = Some(n);
        self.rule("max_connecting", at_least_one(n as u64, u64::MAX))
    }

    /// Cap on the borrowers of one shared connection: the limit a manager
    /// gives in [`Lending::shared`](crate::Lending::shared) (e.g. the peer's
    /// HTTP/2 stream limit) is clamped to it. Exclusive connections ignore
    /// it. At least 1 (1 lends every connection exclusively), at most 65,535.
    pub fn max_borrowers(mut self, n: usize) -> Self {
        self.set.max_borrowers = n;
        self.rule("max_borrowers", at_least_one(n as u64, u16::MAX.into()))
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
        let refused = non_zero(self.set.leak_detection_threshold, "");
        self.rule("leak_detection_threshold", refused)
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
        let refused = non_zero(self.set.acquire_slow_threshold, "");
        self.rule("acquire_slow_threshold", refused)
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

    /// Gauges per key (`connpool.key`): the connection counts by state and
    /// the waiting getters of the `n` keys with the most connections, and
    /// of the rest summed as key `other`, published each second by the
    /// maintenance task. At most `n + 1` series per gauge however many
    /// keys come and go; nothing on the get and return paths. 0 (the
    /// default): the pool-wide gauges only.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics_key_gauges(mut self, n: usize) -> Self {
        self.set.metrics_key_gauges = n;
        self
    }
}
