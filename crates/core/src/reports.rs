//! What the pool tells the log about its borrowers at `warn`: connections
//! held longer than the leak-detection threshold (emitted outside the lock,
//! from the effects of the transition that found them), and gets that
//! waited longer than `acquire_slow_threshold` (by the getter, once its
//! wait ends).

use std::fmt::Debug;
use std::panic::Location;
use std::time::Duration;

use crate::config::Config;
use crate::contain;

/// A connection held longer than the leak-detection threshold
/// ([`Builder::leak_detection_threshold`](crate::Builder::leak_detection_threshold)),
/// as the pool's [`on_leak`](crate::Builder::on_leak) callback is told of it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Leak<'a, K> {
    /// The key of the connection.
    pub key: &'a K,
    /// Where the `get` that took it was called.
    pub site: &'static Location<'static>,
    /// How long it has been held.
    pub held: Duration,
    /// The threshold it passed.
    pub threshold: Duration,
    /// The pool's [`name`](crate::Builder::name).
    pub pool: &'a str,
}

/// What the pool does with a leak besides the `warn` line: the user's
/// callback, if set.
pub(crate) type OnLeak<K> = Box<dyn Fn(&Leak<'_, K>) + Send + Sync>;

/// A connection of `key`, taken by the `get` at `site`, has been held for
/// `held`, past the configured threshold: a `warn` line, then the user's
/// callback (its panic contained and logged).
pub(crate) fn report_leak<K: Debug>(
    key: &K,
    site: &'static Location<'static>,
    held: Duration,
    config: &Config,
    on_leak: Option<&OnLeak<K>>,
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
    if let Some(on_leak) = on_leak {
        let leak = Leak {
            key,
            site,
            held,
            threshold,
            pool: &config.set.name,
        };
        if let Err(panic) = contain::call(|| on_leak(&leak)) {
            panic.log("the on_leak callback", key);
        }
    }
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
