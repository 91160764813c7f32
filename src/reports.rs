//! What the pool tells the log about its borrowers: connections held
//! longer than the leak-detection threshold. Emitted outside the lock, from
//! the effects of the transition that found them.

use std::fmt::Debug;
use std::panic::Location;
use std::time::Duration;

use crate::config::Config;

/// A connection of `key`, taken by the `get` at `site`, has been held for
/// `held`, past the configured threshold.
pub(crate) fn report_leak(
    key: &impl Debug,
    site: &'static Location<'static>,
    held: Duration,
    config: &Config,
) {
    tracing::warn!(
        ?key,
        %site,
        ?held,
        threshold = ?config.leak_detection_threshold.unwrap_or_default(),
        "connection held longer than the leak detection threshold (taken by the get at {site})"
    );
}
