//! The pool's core behaviour, deterministically, under tokio's paused clock:
//! FIFO hand-off, per-key and global caps, LRU eviction, the idle/dial race,
//! dial failures, `max_waiters`, the checkout deadline, close, the guard's
//! operations, the counters and pre-warming.
//!
//! Every test runs on a current-thread runtime with the clock paused; tasks
//! only run when the test yields (`settle`, an `.await`), and time only
//! passes through `tokio::time::advance` or tokio's auto-advance when every
//! task is idle. Connection ids are the mock's: 1, 2, 3… in order of the
//! dials' completion.

use std::time::Duration;

use connpool::{ConnectError, Error};

use crate::support::*;

mod caps;
mod checkout_deadline;
mod close;
mod counters;
mod dial_failures;
mod guard;
mod handoff;
mod max_waiters;
mod prewarm;
mod race;

type M = Mock<u32>;
type U = Mock<()>;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The message of a `Error::Connect(ConnectError::Manager(_))`.
#[track_caller]
fn manager_error(e: &Error<MockError>) -> String {
    match e {
        Error::Connect(ConnectError::Manager(m)) => m.0.clone(),
        other => panic!("expected Error::Connect(ConnectError::Manager(_)), got {other:?}"),
    }
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}
