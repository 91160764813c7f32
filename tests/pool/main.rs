//! The pool's own logic against the scripted mock manager
//! (`support::mock`), almost all under tokio's paused clock: one module per
//! concern, run as `cargo test --test pool <module>::`.

#[path = "../support/mod.rs"]
mod support;

mod backoff;
mod cancellation;
mod clock;
mod config;
mod control;
mod core;
mod health;
mod hooks;
mod leaks;
#[cfg(feature = "metrics")]
mod metrics;
mod module_tables;
mod recycle;
#[cfg(feature = "serde")]
mod serde;
mod server_changed;
mod settled;
mod shared;
mod shutdown;
mod slow_checkout;
mod smoke;
mod timers;
mod user_code;
