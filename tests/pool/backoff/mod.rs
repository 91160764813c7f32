//! Dial backoff, `max_connecting` and `min_idle`, deterministically, under
//! tokio's paused clock:
//!
//! - the backoff schedule (the n-th failure in a row backs the key off for a
//!   time in [d/2, d], d = min(cap, base × 2ⁿ⁻¹)), measured exactly through
//!   `KeyState::backoff_left`, and its jitter;
//! - a get during a backoff waits for the pool's probe at its end (no dial
//!   before it) and fails with the probe's error, other keys and idle
//!   connections unaffected;
//! - getters queued for a dial slot failed when the backoff starts, getters
//!   whose own dial is in flight kept waiting;
//! - the end of the backoff and the reset by a successful dial;
//! - `no_backoff()`: every getter dials again (the core behaviour);
//! - `max_connecting`: dials in flight per key, and pre-warm not limited by it;
//! - probes: a wanted key in a long backoff dialed by the pool, one dial at
//!   a time, a success ending the backoff for everyone; a getter after a
//!   probe time that passed unwanted sets the next;
//! - a restarted backend: 64 retrying clients make few dials during the
//!   outage and are all served soon after it;
//! - `min_idle`: the background top-up after the first get, replacement of
//!   closed idle connections, the caps and `max_connecting` respected, a
//!   failed refill retried when its backoff ends, no idle-timeout churn.
//!
//! Every test but `schedule::a_short_backoff_ends_on_time_on_a_running_clock`
//! runs on a current-thread runtime with the clock paused; tasks
//! only run when the test yields (`settle`, an `.await`), and time only passes
//! through `tokio::time::sleep_until`/`advance` (auto-advance when every task
//! is idle). `Instant::now()` under the paused clock is exact to the
//! nanosecond, so a backoff's end is checked 1 ns before and at its instant;
//! tokio's timers round up to the next millisecond. Every pool starts from
//! `support::core_builder` (every lifecycle feature off: no timers, health
//! check `Never`, no backoff, no `max_connecting`) plus the feature under
//! test, unless a test says otherwise. Connection ids are the mock's: 1, 2, 3…
//! in order of the dials' completion. The mock can switch its whole backend
//! down and up, and records the instant of every dial.

use std::time::Duration;

use connpool::{ConnectError, Error, Manager, Pool};

use crate::support::*;

mod getters;
mod max_connecting;
mod min_idle;
mod probes;
mod refused;
mod reset;
mod restarted_backend;
mod schedule;

type M = Mock<u32>;
type U = Mock<()>;

/// The backoff under test: 100 ms doubling to 1 s.
const BASE: Duration = Duration::from_millis(100);
const CAP: Duration = Duration::from_secs(1);

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const fn ns(n: u64) -> Duration {
    Duration::from_nanos(n)
}

/// The undithered delay after the `n`-th failure in a row, computed here
/// independently of the crate: `min(CAP, BASE × 2ⁿ⁻¹)`.
fn delay(n: u32) -> Duration {
    delay_of(BASE, CAP, n)
}

/// The undithered delay after the `n`-th failure in a row of a backoff
/// from `base` to `cap`.
fn delay_of(base: Duration, cap: Duration, n: u32) -> Duration {
    let mut d = base;
    for _ in 1..n {
        d = (d * 2).min(cap);
    }
    d.min(cap)
}

/// The message of an `Error::Connect(ConnectError::Manager(_))`: the getter's
/// own dial failed.
#[track_caller]
fn connect_error(e: &Error<MockError>) -> String {
    match e {
        Error::Connect(ConnectError::Manager(m)) => m.0.clone(),
        other => panic!("expected Error::Connect(ConnectError::Manager(_)), got {other:?}"),
    }
}

/// `(retry_in, manager message)` of an `Error::Backoff` carrying the
/// manager's error.
#[track_caller]
fn backoff_error(e: &Error<MockError>) -> (Duration, String) {
    match e {
        Error::Backoff { retry_in, last_connect_error: ConnectError::Manager(m), .. } => {
            (*retry_in, m.0.clone())
        }
        other => panic!("expected Error::Backoff carrying a manager error, got {other:?}"),
    }
}

/// Asserts `retry_in` is in the band `[d/2, d]`.
#[track_caller]
fn assert_in_band(retry_in: Duration, d: Duration) {
    assert!(
        retry_in >= d / 2 && retry_in <= d,
        "retry_in {retry_in:?} outside [{:?}, {d:?}]",
        d / 2
    );
}

/// `(backing off, dial_failures_in_a_row)` of one key (which must be known).
#[track_caller]
fn backoff_state<Mg: Manager>(pool: &Pool<Mg>, key: &Mg::Key) -> (bool, u32) {
    let s = pool
        .key_state(key)
        .unwrap_or_else(|| panic!("key {key:?} was forgotten"));
    (s.backoff_left.is_some(), s.dial_failures_in_a_row)
}

/// How long one key's backoff lasts still (it must be backing off).
#[track_caller]
fn backoff_left<Mg: Manager>(pool: &Pool<Mg>, key: &Mg::Key) -> Duration {
    pool.key_state(key)
        .and_then(|s| s.backoff_left)
        .unwrap_or_else(|| panic!("key {key:?} is not backing off"))
}

/// `(backoffs, dial_failures, backoff_rejections)` of the whole pool.
fn backoff_counters<Mg: Manager>(pool: &Pool<Mg>) -> (u64, u64, u64) {
    let c = pool.state().counters;
    (c.backoffs, c.dial_failures, c.backoff_rejections)
}
