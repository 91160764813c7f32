//! The policy a setting takes as its value: how a key backs off after
//! failed dials.
//! (Below the settings, which name it.)

use std::time::Duration;

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
    /// The default: 100 ms doubling to 5 s.
    pub(crate) const DEFAULT: Backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(5),
    };

    /// The delay after `failures` consecutive failures, before jitter.
    pub(crate) fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}
