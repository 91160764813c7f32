//! The builder: every validation error (core caps and timeouts, and the
//! lifecycle fields: idle timeout, lifetime, jitter, max uses, min idle,
//! health check, keepalive, dial backoff, max connecting), the documented
//! defaults (constants, literal values and `pool.config()`), values at their
//! bounds being accepted, how the derived defaults follow the values that are
//! set, and `Backoff::delay`'s doubling, cap and saturation.

use crate::support::Mock;

mod accepted;
mod documented_defaults;
mod extremes;
mod refusals;

type M = Mock<u32>;
