//! What the pool tells the log about its borrowers and its keys at `warn`:
//! connections held longer than the leak-detection threshold and keys
//! whose dials fail (emitted outside the lock, from the effects of the
//! transition that found them; a key back again at `info`), and gets that
//! waited longer than `acquire_slow_threshold` (by the getter, once its
//! wait ends).

use std::fmt::Debug;
use std::panic::Location;
use std::time::Duration;

use crate::config::Config;

/// A connection of `key`, taken by the `get` at `site`, has been held for
/// `held`, past the configured threshold: a `warn` line.
pub(crate) fn report_leak<K: Debug>(
    key: &K,
    site: &'static Location<'static>,
    held: Duration,
    config: &Config,
) {
    let threshold = config.set.leak_detection_threshold.unwrap_or_default();
    tracing::warn!(
        pool = %config.set.name, ?key, %site, ?held, ?threshold,
        "connection held longer than the leak detection threshold (taken by the get at {site})"
    );
}

/// A get of `key` waited `waited`, past `acquire_slow_threshold`, behind
/// `behind`, and ended with `outcome`.
pub(crate) fn report_slow_checkout(
    key: &impl Debug,
    waited: Duration,
    behind: &'static str,
    outcome: &'static str,
    config: &Config,
) {
    tracing::warn!(
        pool = %config.set.name, ?key, ?waited, behind, outcome,
        "checkout waited longer than acquire_slow_threshold"
    );
}

/// A dial of `key` failed with `error`, its `failures`th in a row, and the
/// key backs off `delay`: a `warn` line at the first failure of a run and
/// at each power of two after it (so an outage of any length logs a few
/// dozen lines at most, whatever the getters do), `debug` otherwise.
pub(crate) fn report_backoff<K: Debug, E: std::error::Error>(
    key: &K,
    error: &crate::error::ConnectError<E>,
    delay: Duration,
    failures: u32,
    config: &Config,
) {
    if failures.is_power_of_two() {
        tracing::warn!(
            pool = %config.set.name, ?key, %error, failures, ?delay,
            "dials of the key fail: it backs off, and its gets that find no idle connection fail with this error until a dial succeeds"
        );
    } else {
        tracing::debug!(pool = %config.set.name, ?key, %error, failures, ?delay, "dial backoff");
    }
}

/// A key whose dials failed made a connection again, after `down_for`:
/// an `info` line.
pub(crate) fn report_recovery<K: Debug>(key: &K, down_for: Duration, config: &Config) {
    tracing::info!(
        pool = %config.set.name, ?key, ?down_for,
        "the key is back: a dial succeeded after failed ones"
    );
}
