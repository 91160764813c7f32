//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`): the series and what each records are documented for users in
//! the crate docs ("Metrics"); this module keeps them.
//!
//! **A recorder installed late.** The pool-wide series are registered when
//! the pool is built. The `metrics` facade gives a series registered
//! before any recorder is installed a handle that does nothing, for good;
//! so a pool built before its recorder (the facade's fallback, a no-op
//! recorder, is the only one of size zero) looks for one at each
//! transition, and registers its series again, once, when it finds it.
//!
//! **Per-key gauges** (`metrics_key_gauges(n)`): the maintenance task
//! publishes every `KEY_GAUGES_EVERY` (a second) the counts of the `n`
//! keys with the most connections, and the sum of the rest as key
//! `other`: at most `n + 1` series per gauge, whatever the number of keys,
//! and nothing on the get and return paths.
//!
//! **Cost.** The pool-wide series are updated through their handles:
//! a get and a return each set the gauges from counts read under the lock
//! they already hold (the two counts, when no getter waits); a get records
//! its wait time and a return its use time, after the lock. Nothing is
//! called under the lock. With the key attribute, each histogram record and
//! timeout looks its series up by labels in the recorder (a formatted key
//! and a map look-up): off by default, and costly with many keys for the
//! recorder as well.
//!
//! The methods the pool calls are written once, in `calls!`: as written
//! with the feature, and as methods that do nothing without it (of a unit
//! [`Metrics`], with [`Metrics::ON`] false), so that the call sites compile
//! away.

use std::fmt::Debug;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Config;
use crate::limits::Limits;
use crate::reason::CloseReason;
use crate::stats::{Gauges, Waiting};

/// The methods the pool calls, written once: `calls!(on)` writes them as
/// they are, `calls!(off)` as methods that do nothing and return the
/// default.
macro_rules! calls {
    ($mode:ident) => {
        calls! { @$mode
            #[inline]
            pub(crate) fn counts(&self, g: Gauges) {
                if !self.recorded.load(Ordering::Relaxed) {
                    self.look_for_recorder();
                }
                let s = self.series();
                s.idle.set(g.idle as f64);
                s.used.set(g.used as f64);
                s.pending.set(g.pending as f64);
            }

            pub(crate) fn limits(&self, limits: &Limits) {
                *self.shown.lock() = *limits;
                self.series().limits(limits);
            }

            /// How many keys have gauges of their own (0: none).
            pub(crate) fn key_gauges(&self) -> usize {
                self.key_gauges
            }

            /// The per-key gauges' turn at `now`, if they are on: whether
            /// they are due (then next due a period later), and when next.
            pub(crate) fn key_gauges_turn(&self, now: Instant) -> Option<(bool, Instant)> {
                if self.key_gauges == 0 {
                    return None;
                }
                let mut published = self.published.lock();
                let due = published.0 <= now;
                if due {
                    published.0 = now + KEY_GAUGES_EVERY;
                }
                Some((due, published.0))
            }

            /// Sets the per-key gauges to `keys` (label, counts), and to zero
            /// those of the keys published last time and absent now.
            #[cold]
            pub(crate) fn publish_keys(&self, keys: Vec<(String, Gauges)>) {
                let published = &mut self.published.lock().1;
                let now: HashSet<String> = keys.iter().map(|(k, _)| k.clone()).collect();
                for gone in published.difference(&now) {
                    self.key_counts(gone, Gauges::default());
                }
                for (key, g) in &keys {
                    self.key_counts(key, *g);
                }
                *published = now;
            }

            /// Whether series carry the key: then callers pass it (`Some`).
            #[inline]
            pub(crate) fn by_key(&self) -> bool {
                self.by_key
            }

            /// `key` if the series carry it.
            pub(crate) fn key<'k, K>(&self, key: &'k K) -> Option<&'k K> {
                self.by_key.then_some(key)
            }

            pub(crate) fn timeout(&self, key: Option<&impl Debug>) {
                match key {
                    None => self.series().timeouts.increment(1),
                    Some(key) => metrics::counter!(TIMEOUTS, self.keyed(key).to_vec()).increment(1),
                }
            }

            /// A call past its own deadline (see `Pool::count_timeout`).
            #[cold]
            pub(crate) fn call_timeout(&self, key: Option<&impl Debug>, waiting: Waiting) {
                match waiting {
                    Waiting::Connection => self.timeout(key),
                    Waiting::Reply => self.count(REPLY_TIMEOUTS, key),
                }
            }

            /// One more on the counter `name` (`DIAL_FAILURES`, `BACKOFFS`,
            /// `REJECTIONS`, `KEEPALIVE_FAILURES`), labelled by `key` if given.
            #[cold]
            pub(crate) fn count(&self, name: &'static str, key: Option<&impl Debug>) {
                let labels = match key {
                    None => vec![self.name.clone()],
                    Some(key) => self.keyed(key).to_vec(),
                };
                metrics::counter!(name, labels).increment(1);
            }

            /// A connection closed, for `reason`.
            pub(crate) fn closed(&self, reason: CloseReason) {
                let labels = [self.name.clone(), Label::new("reason", reason.as_str())];
                metrics::counter!(CLOSED, labels.to_vec()).increment(1);
            }

            pub(crate) fn created(&self, key: Option<&impl Debug>, took: Duration) {
                self.record(&self.series().create_time, CREATE_TIME, key, took);
            }

            pub(crate) fn waited(&self, key: Option<&impl Debug>, took: Duration) {
                self.record(&self.series().wait_time, WAIT_TIME, key, took);
            }

            #[inline]
            pub(crate) fn used_for(&self, key: Option<&impl Debug>, took: Duration) {
                self.record(&self.series().use_time, USE_TIME, key, took);
            }
        }
    };
    (@on $($method:tt)*) => {
        impl Metrics {
            $($method)*
        }
    };
    (@off $(
        $(#[$attr:meta])*
        pub(crate) fn $name:ident $(<$($generic:tt),*>)? (&self $(, $arg:ident: $ty:ty)*) $(-> $ret:ty)?
        $body:block
    )*) => {
        impl Metrics {
            $(#[inline(always)] pub(crate) fn $name $(<$($generic),*>)? (&self $(, _: $ty)*) $(-> $ret)? { $(<$ret>::default())? })*
        }
    };
}

/// Counters the pool counts through `Metrics::count`.
pub(crate) const DIAL_FAILURES: &str = "connpool.dial.failures";
pub(crate) const BACKOFFS: &str = "connpool.backoffs";
pub(crate) const REJECTIONS: &str = "connpool.rejections";
pub(crate) const KEEPALIVE_FAILURES: &str = "connpool.keepalive.failures";

#[cfg(feature = "metrics")]
pub(crate) use on::Metrics;

#[cfg(feature = "metrics")]
mod on {
    use super::*;
    use std::collections::HashSet;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    use metrics::{Counter, Gauge, Histogram, Label, Unit};
    use parking_lot::Mutex;

    const COUNT: &str = "db.client.connection.count";
    const MAX: &str = "db.client.connection.max";
    const IDLE_MAX: &str = "db.client.connection.idle.max";
    const IDLE_MIN: &str = "db.client.connection.idle.min";
    const PENDING: &str = "db.client.connection.pending_requests";
    const TIMEOUTS: &str = "db.client.connection.timeouts";
    const REPLY_TIMEOUTS: &str = "connpool.reply.timeouts";
    const CLOSED: &str = "connpool.connection.closed";
    const CREATE_TIME: &str = "db.client.connection.create_time";
    const WAIT_TIME: &str = "db.client.connection.wait_time";
    const USE_TIME: &str = "db.client.connection.use_time";
    const POOL_NAME: &str = "db.client.connection.pool.name";
    const KEY: &str = "connpool.key";

    /// How often per-key gauges are published (see the module docs).
    const KEY_GAUGES_EVERY: Duration = Duration::from_secs(1);

    /// One pool's series (see the module docs).
    pub(crate) struct Metrics {
        name: Label,
        by_key: bool,
        /// Registered when the pool was built.
        built: Series,
        /// Registered again when a recorder was first seen after the build.
        late: OnceLock<Series>,
        /// Whether the series in use went to a recorder (else each
        /// transition looks for one).
        recorded: AtomicBool,
        /// The limits the gauges show, kept for a late registration.
        shown: Mutex<Limits>,
        /// Keys with gauges of their own (0: none).
        key_gauges: usize,
        /// When the per-key gauges are next due, and the key labels
        /// published last time (to zero those gone).
        published: Mutex<(Instant, HashSet<String>)>,
    }

    /// The series registered with one recorder, kept as handles.
    struct Series {
        idle: Gauge,
        used: Gauge,
        pending: Gauge,
        max: Gauge,
        idle_max: Gauge,
        idle_min: Gauge,
        timeouts: Counter,
        create_time: Histogram,
        wait_time: Histogram,
        use_time: Histogram,
    }

    impl Series {
        fn register(name: &Label) -> Self {
            let labels = [name.clone()];
            let state = |s: &'static str| [name.clone(), Label::new("state", s)];
            Self {
                idle: metrics::gauge!(COUNT, state("idle").to_vec()),
                used: metrics::gauge!(COUNT, state("used").to_vec()),
                pending: metrics::gauge!(PENDING, labels.to_vec()),
                max: metrics::gauge!(MAX, labels.to_vec()),
                idle_max: metrics::gauge!(IDLE_MAX, labels.to_vec()),
                idle_min: metrics::gauge!(IDLE_MIN, labels.to_vec()),
                timeouts: metrics::counter!(TIMEOUTS, labels.to_vec()),
                create_time: metrics::histogram!(CREATE_TIME, labels.to_vec()),
                wait_time: metrics::histogram!(WAIT_TIME, labels.to_vec()),
                use_time: metrics::histogram!(USE_TIME, labels.to_vec()),
            }
        }

        fn limits(&self, limits: &Limits) {
            self.max.set(limits.max_open as f64);
            self.idle_max.set(limits.max_idle as f64);
            self.idle_min.set(limits.min_idle as f64);
        }
    }

    /// Whether a recorder is installed: the facade's fallback, its no-op
    /// recorder, is a unit (see the module docs).
    fn recorder_installed() -> bool {
        metrics::with_recorder(|r| std::mem::size_of_val(r) != 0)
    }

    calls!(on);

    impl Metrics {
        /// Registers the pool's series with the current recorder.
        pub(crate) fn new(config: &Config) -> Self {
            describe();
            let name = Label::new(POOL_NAME, config.set.name.clone());
            let recorded = recorder_installed();
            if !recorded {
                tracing::info!(
                    pool = %config.set.name,
                    "no metrics recorder installed yet: the pool's series register when one is"
                );
            }
            let m = Self {
                built: Series::register(&name),
                late: OnceLock::new(),
                recorded: AtomicBool::new(recorded),
                shown: Mutex::new(config.limits),
                key_gauges: config.set.metrics_key_gauges,
                published: Mutex::new((Instant::now(), HashSet::new())),
                by_key: config.set.metrics_key_attribute,
                name,
            };
            m.limits(&config.limits);
            m.counts(Gauges::default());
            m
        }

        #[inline]
        fn series(&self) -> &Series {
            self.late.get().unwrap_or(&self.built)
        }

        /// Registers the series again if a recorder was installed since.
        #[cold]
        fn look_for_recorder(&self) {
            if !recorder_installed() {
                return;
            }
            self.recorded.store(true, Ordering::Relaxed);
            if self.late.set(Series::register(&self.name)).is_ok() {
                self.series().limits(&self.shown.lock());
                tracing::info!(pool = %self.name.value(), "metrics recorder found: series registered");
            }
        }

        fn key_counts(&self, key: &str, g: Gauges) {
            let labels = |state: Option<&'static str>| {
                let mut l = vec![self.name.clone(), Label::new(KEY, key.to_owned())];
                l.extend(state.map(|s| Label::new("state", s)));
                l
            };
            metrics::gauge!(COUNT, labels(Some("idle"))).set(g.idle as f64);
            metrics::gauge!(COUNT, labels(Some("used"))).set(g.used as f64);
            metrics::gauge!(PENDING, labels(None)).set(g.pending as f64);
        }

        /// The labels of a series of `key`.
        fn keyed(&self, key: &impl Debug) -> [Label; 2] {
            [self.name.clone(), Label::new(KEY, format!("{key:?}"))]
        }

        #[inline]
        fn record(
            &self,
            pooled: &Histogram,
            name: &'static str,
            key: Option<&impl Debug>,
            d: Duration,
        ) {
            match key {
                None => pooled.record(d.as_secs_f64()),
                Some(key) => {
                    metrics::histogram!(name, self.keyed(key).to_vec()).record(d.as_secs_f64())
                }
            }
        }
    }

    /// Units and descriptions, for recorders that export them.
    fn describe() {
        metrics::describe_gauge!(COUNT, Unit::Count, "Connections by state (idle, used).");
        metrics::describe_gauge!(MAX, Unit::Count, "Cap on open connections.");
        metrics::describe_gauge!(IDLE_MAX, Unit::Count, "Cap on idle connections.");
        metrics::describe_gauge!(IDLE_MIN, Unit::Count, "Idle connections kept ready.");
        metrics::describe_gauge!(PENDING, Unit::Count, "Getters waiting for a connection.");
        metrics::describe_counter!(
            TIMEOUTS,
            Unit::Count,
            "Gets, and service calls, whose deadline passed while they waited for a connection."
        );
        metrics::describe_counter!(
            REPLY_TIMEOUTS,
            Unit::Count,
            "Service calls whose deadline passed while they waited for the reply."
        );
        metrics::describe_counter!(
            DIAL_FAILURES,
            Unit::Count,
            "Dials that failed or timed out."
        );
        metrics::describe_counter!(BACKOFFS, Unit::Count, "Times a key entered dial backoff.");
        metrics::describe_counter!(
            REJECTIONS,
            Unit::Count,
            "Gets refused at once: max_waiters getters already waited."
        );
        metrics::describe_counter!(
            KEEPALIVE_FAILURES,
            Unit::Count,
            "Background keepalive pings that failed or timed out."
        );
        metrics::describe_counter!(
            CLOSED,
            Unit::Count,
            "Connections closed, by reason (broken, by_server, idle_timeout, ...)."
        );
        metrics::describe_histogram!(CREATE_TIME, Unit::Seconds, "Time to dial a connection.");
        metrics::describe_histogram!(
            WAIT_TIME,
            Unit::Seconds,
            "Time a get took to obtain a connection."
        );
        metrics::describe_histogram!(USE_TIME, Unit::Seconds, "Time a connection was lent.");
    }
}

/// No metrics: every method does nothing.
#[cfg(not(feature = "metrics"))]
pub(crate) struct Metrics;

impl Metrics {
    /// Whether the metrics are on: call sites that would compute what they
    /// pass look first.
    pub(crate) const ON: bool = cfg!(feature = "metrics");
}

#[cfg(not(feature = "metrics"))]
impl Metrics {
    pub(crate) fn new(_: &Config) -> Self {
        Metrics
    }
}

#[cfg(not(feature = "metrics"))]
calls!(off);
