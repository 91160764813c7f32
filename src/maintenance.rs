//! The maintenance task: one per pool, asleep until the earliest deadline.
//!
//! It closes idle connections past their idle timeout or lifetime, starts
//! keepalive pings and refills `min_idle` after a backoff, all through
//! [`Transition::maintain`](crate::core::Transition::maintain), then sleeps until the
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

use crate::inner::PoolInner;
use crate::manager::Manager;

/// Spawns the maintenance task of `shared`; `wake` is its alarm clock.
pub(crate) fn spawn_maintenance<M: Manager>(inner: &Arc<PoolInner<M>>, wake: Arc<Notify>) {
    let pool: Weak<PoolInner<M>> = Arc::downgrade(inner);
    inner.runtime.spawn(async move {
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
fn turn<M: Manager>(pool: &Weak<PoolInner<M>>) -> Option<Option<Instant>> {
    let inner = pool.upgrade()?;
    let state = inner.state.lock();
    if state.is_closed() {
        return None;
    }
    let next = inner.transition_in(state, Tick::now(), |t| t.maintain());
    Some(next.map(Tick::into_instant))
}
