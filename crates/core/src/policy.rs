//! The policies a setting takes as its value: when an idle connection is
//! pinged before it is lent, and how a key backs off after failed dials.
//! (Below the configuration and its defaults, which both name them.)

use std::time::Duration;

/// When a connection taken from the idle list is pinged
/// ([`Manager::ping`](crate::Manager::ping)) before it is lent.
///
/// A connection that fails the check (or its [`ping_timeout`](crate::Builder::ping_timeout))
/// is closed and the getter is served by another idle connection or a new
/// dial, within its checkout deadline. A connection handed over directly by a
/// returning borrower, or freshly dialed, is never pinged: it just worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheck {
    /// Never ping: only [`Manager::is_broken`](crate::Manager::is_broken) is checked. Cheapest; a dead
    /// connection reaches the user when `is_broken` cannot see its death.
    Never,
    /// Ping every connection taken from the idle list: no known-dead
    /// connection is ever lent, at one round trip per idle checkout.
    Always,
    /// Ping when the connection was idle this long or longer (HikariCP).
    IfIdleFor(Duration),
}

/// Exponential dial backoff of one key: after the `n`th consecutive failed
/// dial, no dial for a random time between half of and all of
/// `min(cap, base × 2ⁿ⁻¹)` ("equal jitter", so keys that failed together
/// retry apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// Delay after the first failure.
    pub(crate) base: Duration,
    /// Longest delay.
    pub(crate) cap: Duration,
}

impl Backoff {
    /// The delay after `failures` consecutive failures, before jitter.
    pub(crate) fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}
