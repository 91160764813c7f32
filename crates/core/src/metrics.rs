//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`): the series and what each records are documented for users in
//! the crate docs ("Metrics"); this module keeps them.
//!
//! **Cost.** The pool-wide series are registered once, when the pool is
//! built (install the recorder first), and updated through their handles:
//! a get and a return each set the gauges from counts read under the lock
//! they already hold (the two counts, when no getter waits); a get records
//! its wait time and a return its use time, after the lock. Nothing is
//! called under the lock. With the key attribute, each histogram record and
//! timeout looks its series up by labels in the recorder (a formatted key
//! and a map look-up): off by default, and costly with many keys for the
//! recorder as well.
//!
//! Without the feature, [`Metrics`] is a unit whose methods do nothing and
//! [`Metrics::ON`] is false: the call sites compile away.

use std::fmt::Debug;
use std::time::Duration;

use crate::config::Config;
use crate::limits::Limits;
use crate::stats::{CloseReason, Gauges, Waiting};

#[cfg(feature = "metrics")]
pub(crate) use on::Metrics;

#[cfg(not(feature = "metrics"))]
pub(crate) use off::Metrics;

#[cfg(feature = "metrics")]
mod on {
    use super::*;
    use metrics::{Counter, Gauge, Histogram, Label, Unit};

    const COUNT: &str = "db.client.connection.count";
    const MAX: &str = "db.client.connection.max";
    const IDLE_MAX: &str = "db.client.connection.idle.max";
    const IDLE_MIN: &str = "db.client.connection.idle.min";
    const PENDING: &str = "db.client.connection.pending_requests";
    const TIMEOUTS: &str = "db.client.connection.timeouts";
    const REPLY_TIMEOUTS: &str = "connpool.reply.timeouts";
    const CLOSED: &str = "connpool.connection.closed";
    const DIAL_FAILURES: &str = "connpool.dial.failures";
    const BACKOFFS: &str = "connpool.backoffs";
    const REJECTIONS: &str = "connpool.rejections";
    const KEEPALIVE_FAILURES: &str = "connpool.keepalive.failures";
    const CREATE_TIME: &str = "db.client.connection.create_time";
    const WAIT_TIME: &str = "db.client.connection.wait_time";
    const USE_TIME: &str = "db.client.connection.use_time";
    const POOL_NAME: &str = "db.client.connection.pool.name";
    const KEY: &str = "connpool.key";

    /// One pool's series (see the module docs).
    pub(crate) struct Metrics {
        name: Label,
        by_key: bool,
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

    impl Metrics {
        pub(crate) const ON: bool = true;

        /// Registers the pool's series with the current recorder.
        pub(crate) fn new(config: &Config) -> Self {
            describe();
            let name = Label::new(POOL_NAME, config.set.name.clone());
            let labels = [name.clone()];
            let state = |s: &'static str| [name.clone(), Label::new("state", s)];
            let m = Self {
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
                by_key: config.set.metrics_key_attribute,
                name,
            };
            m.limits(&config.limits());
            m.counts(Gauges::default());
            m
        }

        #[inline]
        pub(crate) fn counts(&self, g: Gauges) {
            self.idle.set(g.idle as f64);
            self.used.set(g.used as f64);
            self.pending.set(g.pending as f64);
        }

        pub(crate) fn limits(&self, limits: &Limits) {
            self.max.set(limits.max_open as f64);
            self.idle_max.set(limits.max_idle as f64);
            self.idle_min.set(limits.min_idle as f64);
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

        /// The labels of a series of `key`.
        fn keyed(&self, key: &impl Debug) -> [Label; 2] {
            [self.name.clone(), Label::new(KEY, format!("{key:?}"))]
        }

        pub(crate) fn timeout(&self, key: Option<&impl Debug>) {
            match key {
                None => self.timeouts.increment(1),
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

        /// A dial that failed.
        #[cold]
        pub(crate) fn dial_failed(&self, key: Option<&impl Debug>) {
            self.count(DIAL_FAILURES, key);
        }

        /// A key entered dial backoff.
        #[cold]
        pub(crate) fn backoff(&self, key: Option<&impl Debug>) {
            self.count(BACKOFFS, key);
        }

        /// A get refused at once: `max_waiters` getters already waited.
        #[cold]
        pub(crate) fn rejection(&self, key: Option<&impl Debug>) {
            self.count(REJECTIONS, key);
        }

        /// A keepalive ping that failed or timed out.
        #[cold]
        pub(crate) fn keepalive_failed(&self, key: Option<&impl Debug>) {
            self.count(KEEPALIVE_FAILURES, key);
        }

        fn count(&self, name: &'static str, key: Option<&impl Debug>) {
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
            self.record(&self.create_time, CREATE_TIME, key, took);
        }

        pub(crate) fn waited(&self, key: Option<&impl Debug>, took: Duration) {
            self.record(&self.wait_time, WAIT_TIME, key, took);
        }

        #[inline]
        pub(crate) fn used_for(&self, key: Option<&impl Debug>, took: Duration) {
            self.record(&self.use_time, USE_TIME, key, took);
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

#[cfg(not(feature = "metrics"))]
mod off {
    use super::*;

    /// No metrics: every method does nothing.
    pub(crate) struct Metrics;

    #[allow(clippy::unused_self)]
    impl Metrics {
        pub(crate) const ON: bool = false;

        pub(crate) fn new(_: &Config) -> Self {
            Metrics
        }

        #[inline(always)]
        pub(crate) fn counts(&self, _: Gauges) {}

        #[inline(always)]
        pub(crate) fn limits(&self, _: &Limits) {}

        #[inline(always)]
        pub(crate) fn by_key(&self) -> bool {
            false
        }

        #[inline(always)]
        pub(crate) fn key<'k, K>(&self, _: &'k K) -> Option<&'k K> {
            None
        }

        #[inline(always)]
        pub(crate) fn timeout(&self, _: Option<&impl Debug>) {}

        #[inline(always)]
        pub(crate) fn call_timeout(&self, _: Option<&impl Debug>, _: Waiting) {}

        #[inline(always)]
        pub(crate) fn closed(&self, _: CloseReason) {}

        #[inline(always)]
        pub(crate) fn dial_failed(&self, _: Option<&impl Debug>) {}

        #[inline(always)]
        pub(crate) fn backoff(&self, _: Option<&impl Debug>) {}

        #[inline(always)]
        pub(crate) fn rejection(&self, _: Option<&impl Debug>) {}

        #[inline(always)]
        pub(crate) fn keepalive_failed(&self, _: Option<&impl Debug>) {}

        #[inline(always)]
        pub(crate) fn created(&self, _: Option<&impl Debug>, _: Duration) {}

        #[inline(always)]
        pub(crate) fn waited(&self, _: Option<&impl Debug>, _: Duration) {}

        #[inline(always)]
        pub(crate) fn used_for(&self, _: Option<&impl Debug>, _: Duration) {}
    }
}
