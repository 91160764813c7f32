//! The builder: every validation error (core caps and timeouts, and the
//! lifecycle fields: idle timeout, lifetime, jitter, max uses, min idle,
//! health check, keepalive, dial backoff, max connecting), the documented
//! defaults' table, caps at their bounds being accepted, and how the derived
//! caps follow the values that are set. (Each setting as built, and the
//! backoff's doubling, cap and saturation: the core's unit tests of the
//! builder.)

use crate::support::Mock;

mod accepted;
mod documented_defaults;
mod extremes;
mod refusals;

type M = Mock<u32>;
