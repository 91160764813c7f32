//! The cancellation matrix: a `get` future given up at every await point,
//! by every means, with every outcome of the dial involved, alone or with a
//! second waiter queued behind it.
//!
//! Each cell builds a fresh pool and mock, arms a getter `G`, optionally
//! queues a second waiter `W2` (a spawned task) behind it, drives `G` to its
//! point, cancels it, then lets the rest of the story happen (the dial
//! resolves, the borrower lets go). After the cancel and after the rest it
//! asserts the exact counts (open, idle, lent, dialing, pinging, waiting), that no
//! connection was lost (it reached `W2` or the idle list, with the expected
//! id), that no connection was closed that should not have been, that the pool
//! still serves, and that `close` closes every connection the mock ever made
//! exactly once.
//!
//! Dimensions (see the enums in `cell`): `Point` × `Dial` × `Second` × `Cancel`;
//! one `#[tokio::test]` per point runs its sub-matrix and reports every
//! failing cell by name.
//!
//! Timeline of a cell, in virtual time from `t0` (the first poll of `G`):
//! `W2` arrives at 5 s (checkout deadline 15 s), a `tokio::time::timeout`
//! wrapper around `G` fires at 8 s, `G`'s own checkout deadline is 10 s.
//! Dials that must still be in flight at the cancel take 12 s (slow) or hang
//! until 13 s (`connect_timeout`); dials that must be delivered before it take
//! 6 s / 7 s; dials started after the cancel take 3 s / 4 s.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use connpool::{Error, Pooled};
use tokio::time::Instant;

use crate::support::{Mock, MockError, settle};

mod cell;
mod matrix;
mod real_tasks;
mod world;

type M = Mock<u32>;
type Conn = Pooled<'static, M>;
type GetResult = Result<Conn, Error<MockError>>;
/// A get under test; `None` when a `tokio::time::timeout` wrapper elapsed.
type GetFuture<'a> = Pin<Box<dyn Future<Output = Option<GetResult>> + Send + 'a>>;

/// The key of the getter under test (and of the second waiter).
const K: u32 = 1;
/// Another key (the borrower's, when the pool's cap is what blocks `G`).
const OTHER: u32 = 2;
/// The pool's `checkout_timeout`.
const CHECKOUT: Duration = Duration::from_secs(10);
/// The `tokio::time::timeout` wrapped around `G` by `Cancel::Timeout`.
const WRAPPER: Duration = Duration::from_secs(8);
/// When the second waiter arrives.
const SECOND_ARRIVES: Duration = Duration::from_secs(5);
/// A cell that takes longer than this (virtual time) is reported as stuck.
const CELL_LIMIT: Duration = Duration::from_secs(3600);
/// The message of a scripted dial failure.
const REFUSED: &str = "refused";

fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Advances the paused clock to `t` (yielding once, as `advance` does).
async fn advance_to_raw(t: Instant) {
    let now = Instant::now();
    assert!(t >= now, "the test's timeline runs backwards");
    if t > now {
        tokio::time::advance(t - now).await;
    }
}

/// Advances the paused clock to `t` and lets the woken tasks run.
async fn advance_to(t: Instant) {
    advance_to_raw(t).await;
    settle().await;
}
