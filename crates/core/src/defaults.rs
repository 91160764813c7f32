//! The defaults a [`Builder`](crate::Builder) starts from, one constant per
//! setting. Why each was chosen: the table in the [`Builder`](crate::Builder)
//! docs, the one place that says.

use std::time::Duration;

/// `max_open`'s default.
pub const MAX_OPEN: usize = 100;
/// `connect_timeout`'s default.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `checkout_timeout`'s default.
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// `idle_timeout`'s default.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// `max_lifetime`'s default.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// `jitter`'s default (applied downwards: a lifetime never exceeds
/// `max_lifetime`).
pub const JITTER: f64 = 0.1;
/// `health_check`'s default.
pub const HEALTH_CHECK: Duration = Duration::from_millis(500);
/// `ping_timeout`'s default.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// `keepalive_interval`'s default.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// `keepalive_max_missed`'s default.
pub const KEEPALIVE_MAX_MISSED: u32 = 1;
/// `backoff`'s default first delay.
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// `backoff`'s default cap.
pub const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// `max_connecting`'s default: dials at once of a key recovering from a failure.
pub const MAX_CONNECTING: usize = 2;
/// `acquire_slow_threshold`'s default.
pub const ACQUIRE_SLOW_THRESHOLD: Duration = Duration::from_secs(2);
/// `name`'s default.
pub const NAME: &str = "connpool";
/// `max_borrowers`'s default.
pub const MAX_BORROWERS: usize = 100;
