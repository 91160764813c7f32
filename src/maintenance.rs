//! The maintenance task: one per pool, asleep until the earliest deadline.
//!
//! It closes idle connections past their idle timeout or lifetime, starts
//! keepalive pings and refills `min_idle` after a backoff, all through
//! [`State::maintain`](crate::state::State::maintain), then sleeps until the
//! next deadline in the pool's deadline heap or until a transition adds an
//! earlier one (`Effects::rearm`). It wakes exactly at a deadline (tokio's
//! timer has millisecond resolution), so a connection is closed within about
//! a millisecond of its idle timeout, not at the next sweep.
//!
//! It holds the pool weakly: it ends when the pool is closed, or when the
//! pool's shared state is dropped (the last handle, guard and task gone),
//! whose `Drop` wakes it for that purpose.

use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::clock::Tick;

use crate::manager::Manager;
use crate::pool::Shared;
use crate::state::Effects;

/// Spawns the maintenance task of `shared`; `wake` is its alarm clock.
pub(crate) fn spawn_maintenance<M: Manager>(shared: &Arc<Shared<M>>, wake: Arc<Notify>) {
    let pool: Weak<Shared<M>> = Arc::downgrade(shared);
    shared.runtime.spawn(async move {
        loop {
            let Some(next) = turn(&pool) else {
                tracing::debug!("maintenance task ends");
                return;
            };
            match next {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = wake.notified() => {}
                    }
                }
                None => wake.notified().await,
            }
        }
    });
}

/// One turn: `None` when the task should end, else when to run next.
fn turn<M: Manager>(pool: &Weak<Shared<M>>) -> Option<Option<Instant>> {
    let shared = pool.upgrade()?;
    let mut fx = Effects::new();
    let next = {
        let mut state = shared.state.lock();
        if state.is_closed() {
            return None;
        }
        state.maintain(Tick::now(), &shared.config, &mut fx)
    };
    shared.apply(fx);
    Some(next.map(Tick::into_instant))
}
