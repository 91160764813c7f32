//! Every setting of a pool as the [`Builder`](crate::Builder) keeps it, and
//! its default: [`Settings`].
//!
//! Each field is set by the `Builder` method of the same name (in
//! `builder/setters.rs`), whose docs say what the setting means and which
//! values it takes. What a value must satisfy is checked in
//! `builder/validate.rs`, where a rule can name the settings it compares
//! with (a cap against the caps it defaults to). A default is a constant of
//! [`defaults`], and why each was chosen is explained in the
//! [`Builder`](crate::Builder) docs' table. A new setting touches each of
//! these places.

use std::time::Duration;

use crate::defaults;
use crate::policy::Backoff;

/// Every setting of a pool as the [`Builder`](crate::Builder) takes it,
/// with its default; each field's docs are those of the setter of its name.
/// The builder's setters write these fields, its `Debug`
/// shows them, and a validated [`Config`](crate::config::Config) keeps them
/// as they were set, beside what `build` derived from them. (`None` for a
/// cap: derived from the other caps at build.)
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    pub(crate) max_open: usize,
    pub(crate) max_open_per_key: Option<usize>,
    pub(crate) max_idle: Option<usize>,
    pub(crate) max_idle_per_key: Option<usize>,
    pub(crate) connect_timeout: Duration,
    pub(crate) checkout_timeout: Option<Duration>,
    pub(crate) max_waiters: Option<usize>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) jitter: f64,
    pub(crate) max_uses: Option<u64>,
    pub(crate) min_idle: usize,
    pub(crate) health_check: Option<Duration>,
    pub(crate) ping_timeout: Duration,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_max_missed: u32,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) max_connecting: Option<usize>,
    pub(crate) max_borrowers: usize,
    pub(crate) leak_detection_threshold: Option<Duration>,
    pub(crate) acquire_slow_threshold: Option<Duration>,
    pub(crate) name: String,
    /// Kept without the `metrics` feature too (only its setter needs the
    /// feature): a `Builder`'s `Debug` is the same either way.
    pub(crate) metrics_key_attribute: bool,
    /// Keys with gauges of their own (0: none); kept as the one above.
    pub(crate) metrics_key_gauges: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_open: defaults::MAX_OPEN,
            max_open_per_key: None,
            max_idle: None,
            max_idle_per_key: None,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            checkout_timeout: Some(defaults::CHECKOUT_TIMEOUT),
            max_waiters: None,
            idle_timeout: Some(defaults::IDLE_TIMEOUT),
            max_lifetime: Some(defaults::MAX_LIFETIME),
            jitter: defaults::JITTER,
            max_uses: None,
            min_idle: 0,
            health_check: Some(defaults::HEALTH_CHECK),
            ping_timeout: defaults::PING_TIMEOUT,
            keepalive_interval: Some(defaults::KEEPALIVE_INTERVAL),
            keepalive_max_missed: defaults::KEEPALIVE_MAX_MISSED,
            backoff: Some(Backoff {
                base: defaults::BACKOFF_BASE,
                cap: defaults::BACKOFF_CAP,
            }),
            max_connecting: None,
            max_borrowers: defaults::MAX_BORROWERS,
            leak_detection_threshold: None,
            acquire_slow_threshold: Some(defaults::ACQUIRE_SLOW_THRESHOLD),
            name: defaults::NAME.to_string(),
            metrics_key_attribute: false,
            metrics_key_gauges: 0,
        }
    }
}
