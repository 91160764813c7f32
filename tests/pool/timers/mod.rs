//! Time-driven closes and the maintenance task: the idle timeout (closed by
//! the maintenance task exactly at `idle_since + idle_timeout`, restarted by
//! every return, met at checkout, off with `None`), the maximum lifetime
//! (exactly at birth + `max_lifetime` with no jitter, checked on return, met
//! at checkout, spread over `[0.9 × life, life]` by a 0.1 jitter), `max_uses`,
//! the maintenance task's own life (one per pool, ending when the pool is
//! dropped or closed), 100 000 idle connections expiring on time with that one
//! task, and the idle timeout against `min_idle`.
//!
//! Every test runs on a current-thread runtime with the clock paused; tasks
//! only run when the test yields (`settle`, an `.await`), and time only
//! passes through `tokio::time::sleep_until`/`advance` (auto-advance when
//! every task is idle). tokio's timer has millisecond resolution and the
//! paused clock starts on a millisecond tick, so with whole-millisecond
//! offsets and `jitter(0.0)` a deadline fires exactly at its instant. Every
//! pool starts from `support::core_builder` (every lifecycle feature off: no
//! idle timeout, no lifetime, no keepalive, health check `Never`, no backoff,
//! no `max_connecting`) plus the feature under test. Connection ids are the
//! mock's: 1, 2, 3… in order of the dials' completion; the mock records the
//! instant of every `Manager::close`.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use connpool::{Manager, Pool};

use crate::support::*;

mod idle_timeout;
mod lifetime;
mod maintenance;
mod min_idle;
mod recently_returned;

type U = Mock<()>;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Moves the paused clock forward by `d` without yielding to the scheduler:
/// the timers that fall due (the maintenance task's included) only fire at
/// the runtime's next park, so what the test does next synchronously runs at
/// the new instant before any other task has seen it.
async fn jump(d: Duration) {
    let mut advance = pin!(tokio::time::advance(d));
    std::future::poll_fn(|cx| {
        // The first poll moves the clock, then yields: drop it there.
        let _ = advance.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
}

/// Tasks alive in the runtime (the test's own future is not one).
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Yields until every pending `Manager::close` task ended (bounded).
async fn drain_closes<Mg: Manager>(pool: &Pool<Mg>) {
    for _ in 0..100_000 {
        if pool.state().closing == 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("closes never finished: {:?}", counts(pool));
}
