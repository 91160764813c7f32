//! Every setting of a pool as the [`Builder`](crate::Builder) keeps it,
//! with its default: [`Settings`].
//!
//! A setting is written in two places: its field here, with its default,
//! and its setter (the `Builder` method of the same name, in
//! `builder/setters.rs`), whose docs say what it means and which values it
//! takes, and which refuses a value outside them. Rules that compare
//! settings (a cap against the caps it defaults to) are kept by the type
//! they bound ([`Limits`](crate::Limits)) and checked by `build`. Why each
//! default was chosen: the table in the [`Builder`](crate::Builder) docs.

use std::time::Duration;

use crate::policy::Backoff;

/// Declares [`Settings`]: each field with its type and its default.
macro_rules! settings {
    ($($(#[$doc:meta])* $name:ident: $ty:ty = $default:expr;)*) => {
        /// Every setting of a pool as the [`Builder`](crate::Builder) takes
        /// it, with its default. The builder's setters write these fields,
        /// its `Debug` shows them, and a validated
        /// [`Config`](crate::config::Config) keeps them as they were set,
        /// beside what `build` derived from them.
        #[derive(Debug, Clone, PartialEq)]
        pub(crate) struct Settings {
            $($(#[$doc])* pub(crate) $name: $ty,)*
        }

        impl Default for Settings {
            fn default() -> Self {
                Self { $($name: $default,)* }
            }
        }
    };
}

settings! {
    /// Cap on open connections; a manager may ask for another
    /// ([`Manager::default_max_open`](crate::Manager::default_max_open)).
    max_open: usize = 100;
    /// `None`: `max_open`.
    max_open_per_key: Option<usize> = None;
    /// `None`: `max_open`.
    max_idle: Option<usize> = None;
    /// `None`: the smaller of `max_open_per_key` and `max_idle`.
    max_idle_per_key: Option<usize> = None;
    connect_timeout: Duration = Duration::from_secs(10);
    /// `None`: a get waits forever.
    checkout_timeout: Option<Duration> = Some(Duration::from_secs(30));
    max_waiters: Option<usize> = None;
    idle_timeout: Option<Duration> = Some(Duration::from_secs(90));
    max_lifetime: Option<Duration> = Some(Duration::from_secs(30 * 60));
    jitter: f64 = 0.1;
    max_uses: Option<u64> = None;
    min_idle: usize = 0;
    health_check: Option<Duration> = Some(Duration::from_millis(500));
    ping_timeout: Duration = Duration::from_secs(5);
    keepalive_interval: Option<Duration> = Some(Duration::from_secs(30));
    keepalive_max_missed: u32 = 1;
    backoff: Option<Backoff> = Some(Backoff::DEFAULT);
    /// `None`: [`Settings::MAX_CONNECTING_UNSET`] while a key is untried or
    /// recovers, no cap once it is healthy.
    max_connecting: Option<usize> = None;
    max_borrowers: usize = 100;
    leak_detection_threshold: Option<Duration> = None;
    acquire_slow_threshold: Option<Duration> = Some(Duration::from_secs(2));
    name: String = "connpool".to_owned();
    /// Kept without the `metrics` feature too (only its setter needs the
    /// feature): a `Builder`'s `Debug` is the same either way.
    metrics_key_attribute: bool = false;
    /// Keys with gauges of their own (0: none); kept as the one above.
    metrics_key_gauges: usize = 0;
}

impl Settings {
    /// Dials at once of a key that is untried or recovers, while
    /// `max_connecting` is unset.
    pub(crate) const MAX_CONNECTING_UNSET: usize = 2;
}
