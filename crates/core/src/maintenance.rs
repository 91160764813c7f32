//! The maintenance task: one per pool, asleep until the earliest deadline.
//!
//! It closes idle connections past their idle timeout or lifetime, starts
//! keepalive pings, refills `min_idle` after a backoff and wakes the
//! getters whose checkout deadline passed, all through
//! [`Transition::maintain`](crate::engine::Transition::maintain), then sleeps until the
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

use crate::contain;
use crate::inner::PoolInner;
use crate::manager::Manager;

/// Spawns the maintenance task of `shared`; `wake` is its alarm clock.
pub(crate) fn spawn_maintenance<M: Manager>(inner: &Arc<PoolInner<M>>, wake: Arc<Notify>) {
    let pool = Arc::downgrade(inner);
    inner.runtime.spawn(async move {
        loop {
            match turn(&pool) {
                Turn::End => {
                    tracing::debug!("maintenance task ends");
                    return;
                }
                Turn::NextAt(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = wake.notified() => {}
                    }
                }
                Turn::WhenWoken => wake.notified().await,
            }
        }
    });
}

/// What the maintenance task does after a turn.
enum Turn {
    /// Ends: the pool is closed or gone.
    End,
    /// Runs again at this instant, or when woken before.
    NextAt(Instant),
    /// Runs again only when woken.
    WhenWoken,
}

/// One turn of maintenance.
fn turn<M: Manager>(pool: &Weak<PoolInner<M>>) -> Turn {
    let Some(inner) = pool.upgrade() else {
        return Turn::End;
    };
    let state = inner.state.lock();
    if state.closed {
        return Turn::End;
    }
    let next = inner.transition_in(state, Tick::now(), |t| t.maintain());
    let gauges = publish_key_gauges(&inner);
    let earliest = next.map(Tick::into_instant).into_iter().chain(gauges).min();
    earliest.map_or(Turn::WhenWoken, Turn::NextAt)
}

/// Publishes the per-key gauges if they are due (`metrics_key_gauges`);
/// when they are next due, if they are on.
fn publish_key_gauges<M: Manager>(inner: &PoolInner<M>) -> Option<Instant> {
    let (due, next) = inner.metrics.key_gauges_turn(Instant::now())?;
    if due {
        let keys = inner.state.lock().key_gauges(inner.metrics.key_gauges());
        // Named as errors name a key, outside the lock; a `key_name` that
        // panics names its key `?` and leaves the task running.
        let manager = &inner.manager;
        let name =
            |key: &M::Key| contain::call(|| manager.key_name(key)).unwrap_or_else(|_| "?".into());
        let named = keys
            .into_iter()
            .map(|(key, g)| (key.as_ref().map_or_else(|| "other".to_owned(), name), g))
            .collect();
        inner.metrics.publish_keys(named);
    }
    Some(next)
}
