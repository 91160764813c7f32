//! What the pool tells the log about its borrowers at `warn`: connections
//! held longer than the leak-detection threshold (emitted outside the lock,
//! from the effects of the transition that found them), and gets that
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
        pool = %config.set.name,
        ?key,
        %site,
        ?held,
        ?threshold,
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
        pool = %config.set.name,
        ?key,
        ?waited,
        behind,
        outcome,
        "checkout waited longer than acquire_slow_threshold"
    );
}
