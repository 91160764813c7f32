//! Connection health: the health check before lending (`None`,
//! `Always`, `IfIdleFor(d)`, `ping_timeout`, the checkout deadline during a
//! check, `health` at checkout, no check on a hand-off) and background
//! keepalive (`keepalive_interval`, `ping_timeout`,
//! `keepalive_max_missed`, jitter, a connection out for a ping is not lent,
//! a panicking ping, replacement below `min_idle`).
//!
//! Every test runs on a current-thread runtime with the clock paused; tasks
//! only run when the test yields (`settle`, an `.await`), and time only
//! passes through `tokio::time::sleep_until` (auto-advance when every task is
//! idle). Every pool starts from `support::core_builder` (every lifecycle
//! feature off: no idle timeout, no lifetime, no keepalive, health check
//! `Never`, no backoff, no `max_connecting`) plus the one feature under test,
//! always with `jitter(0.0)` where exact instants matter. Connection ids are
//! the mock's: 1, 2, 3… in order of the dials' completion. The mock's pings
//! record `(id, instant)` when they start (`mock.pings()`); `kill()` makes
//! them fail at once, `mute()` makes them hang forever.

use std::time::Duration;

use connpool::{Manager, Pool};

use crate::support::*;

mod abandoned_pings;
mod at_checkout;
mod keepalive;
mod ping_timeout;
mod pinging;

type U = Mock<()>;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `(health_checks, health_check_failures)` of the pool.
fn health<Mg: Manager>(pool: &Pool<Mg>) -> (u64, u64) {
    let c = pool.state().counters;
    (c.health_checks, c.health_check_failures)
}

/// `(keepalive_pings, keepalive_failures)` of the pool.
fn keepalive<Mg: Manager>(pool: &Pool<Mg>) -> (u64, u64) {
    let c = pool.state().counters;
    (c.keepalive_pings, c.keepalive_failures)
}

/// A pool with background keepalive only: interval 10 s, timeout 2 s, no
/// jitter, `max_missed` as given; `n` connections pre-warmed at t0 (idle
/// since t0, first ping due at t0 + 10 s).
async fn keepalive_pool(mock: &U, max_missed: u32, n: usize) -> Pool<U> {
    mock.core_pool(|b| {
        b.keepalive_interval(secs(10))
            .ping_timeout(secs(2))
            .keepalive_max_missed(max_missed)
            .jitter(0.0)
            .initial(n)
    })
    .await
}
