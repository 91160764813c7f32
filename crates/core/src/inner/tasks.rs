//! The tasks a pool spawns: dials, keepalive pings, recycles and closes.
//!
//! Each runs on the runtime the pool was built in, never on a getter's task:
//! a getter that gives up must not cancel a dial (its connection serves the
//! next getter), and a guard dropped in synchronous code cannot await a close.
//! Each task reports back through a drop guard, so a task that panics or is
//! dropped with its runtime still settles its counts. A part of `inner`:
//! it spawns them, and they report back through it.

use std::sync::Arc;

use crate::clock::Tick;

use super::PoolInner;
use crate::contain::{self, Caught, Panic};
use crate::engine::DialOrder;
use crate::engine::{KeyId, Slot, WaiterId};
use crate::error::ConnectError;
use crate::features::Check;
use crate::features::Conn;
use crate::features::Dialed;
use crate::features::{PingResult, Tended};
use crate::hooks::{self, HookFailure};
use crate::manager::{Health, Lending, Manager};
use crate::reason::CloseReason;

/// Starts a dial in its own task.
pub(crate) fn spawn_dial<M: Manager>(inner: &Arc<PoolInner<M>>, order: DialOrder<M::Key>) {
    let key_id = order.slot.key();
    let mut guard = DialGuard {
        inner: Arc::clone(inner),
        slot: Some(order.slot),
        waiter: order.waiter,
        epoch: order.epoch,
    };
    let key = order.key;
    inner.runtime.spawn(async move {
        let result = dial(&guard.inner, &key, key_id).await;
        if result.is_err() {
            let metrics = &guard.inner.metrics;
            metrics.dial_failed(metrics.key(&key));
        }
        guard.finish(result);
    });
}

/// One `Manager::connect` of `key` and its `after_connect` hook, together
/// under the connect timeout, and how the manager lends the connection it
/// made. A connection that is broken on arrival, or whose hook failed, is
/// closed, not lent; a panic in the manager or the hook fails the dial, and
/// so does one in the pool's own code around them (reported as a panic,
/// not as an abort: the runtime did not shut down).
pub(crate) async fn dial<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    key: &M::Key,
    key_id: KeyId,
) -> Dialed<M> {
    match Caught(Box::pin(dial_once(inner, key, key_id))).await {
        Ok(dialed) => dialed,
        Err(panic) => {
            tracing::error!(panic = %panic, "a dial task panicked");
            Err(ConnectError::Panicked(panic.message()))
        }
    }
}

/// [`dial`], its panics not contained.
async fn dial_once<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    key: &M::Key,
    key_id: KeyId,
) -> Dialed<M> {
    let timeout = inner.config.set.connect_timeout;
    // Saturating: a `connect_timeout` of `Duration::MAX` means "never".
    let deadline = (Tick::now() + timeout).into_instant();
    let manager = &inner.manager;
    tracing::debug!(?key, "dial started");
    let started = tokio::time::Instant::now();
    let mut conn = match tokio::time::timeout_at(deadline, Caught(manager.connect(key))).await {
        Ok(Ok(Ok(conn))) => conn,
        Ok(Ok(Err(e))) => {
            tracing::debug!(?key, error = %e, "dial failed");
            return Err(ConnectError::Manager(Arc::new(e)));
        }
        Ok(Err(panic)) => {
            panic.log("Manager::connect", key);
            return Err(ConnectError::Panicked(panic.message()));
        }
        Err(_) => {
            tracing::debug!(?key, ?timeout, "dial timed out");
            return Err(ConnectError::Timeout(timeout));
        }
    };
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let hooked = hooks::run::<M>(
        inner.hooks.after_connect.as_ref(),
        &mut conn,
        key,
        Some(left),
    )
    .await;
    let err = match hooked {
        Ok(()) => match checked(manager, &mut conn) {
            Ok((false, lending)) => {
                tracing::debug!(?key, ?lending, "dial succeeded");
                let metrics = &inner.metrics;
                metrics.created(metrics.key(key), started.elapsed());
                return Ok((conn, lending));
            }
            Ok((true, _)) => {
                tracing::debug!(?key, "dial made a connection that is already broken");
                ConnectError::Broken
            }
            Err((panic, what)) => {
                panic.log(what, key);
                ConnectError::Panicked(panic.message())
            }
        },
        Err(failure) => {
            failure.log("the after_connect hook", key);
            match failure {
                HookFailure::Failed(e) => ConnectError::Manager(Arc::new(e)),
                HookFailure::Panicked(panic) => ConnectError::Panicked(panic.message()),
                HookFailure::TimedOut(_) => ConnectError::Timeout(timeout),
            }
        }
    };
    // Made but never lent: closed all the same.
    inner.state.lock().count_close_of_dialed(key_id);
    spawn_close(inner, conn, CloseReason::Broken);
    Err(err)
}

/// `health` and `lending` of a connection just made, panics contained
/// (with the name of the method that panicked).
#[allow(clippy::type_complexity)]
fn checked<M: Manager>(
    manager: &M,
    conn: &mut M::Connection,
) -> Result<(bool, Lending<M::Connection>), (Panic, &'static str)> {
    contain::call(|| manager.health(conn).is_broken())
        .map_err(|panic| (panic, "Manager::health"))
        .and_then(|broken| {
            contain::call(|| (broken, manager.lending(conn)))
                .map_err(|panic| (panic, "Manager::lending"))
        })
}

/// Settles a dial: with its result, or as aborted if dropped unfinished.
/// Holds the dial's slot until then (`None` once settled).
struct DialGuard<M: Manager> {
    inner: Arc<PoolInner<M>>,
    slot: Option<Slot>,
    waiter: Option<WaiterId>,
    epoch: u32,
}

impl<M: Manager> DialGuard<M> {
    fn finish(&mut self, result: Dialed<M>) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let (waiter, epoch) = (self.waiter, self.epoch);
        self.inner
            .transition(Tick::now(), |t| t.dial_done(slot, waiter, epoch, result));
        self.inner.task_ended();
    }
}

impl<M: Manager> Drop for DialGuard<M> {
    fn drop(&mut self) {
        if self.slot.is_some() {
            tracing::debug!("dial aborted");
            self.finish(Err(ConnectError::Aborted));
        }
    }
}

/// Runs a background keepalive ping of an idle connection in its own task.
pub(crate) fn spawn_ping<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    slot: Slot,
    mut conn: Conn<M::Connection>,
    epoch: u32,
) {
    let key_id = slot.key();
    let mut guard = TendGuard::new(inner, slot, epoch, Tended::Keepalive(PingResult::Missed));
    inner.runtime.spawn(async move {
        let inner = &guard.inner;
        let manager = &inner.manager;
        let timeout = inner.config.set.ping_timeout;
        tracing::trace!("keepalive ping");
        let ping = tokio::time::timeout(timeout, Caught(manager.ping(&mut conn.conn))).await;
        let ok = match ping {
            Ok(Ok(Ok(()))) => Some(true),
            Ok(Ok(Err(e))) => {
                tracing::debug!(error = %e, "keepalive ping failed");
                Some(false)
            }
            Ok(Err(panic)) => {
                panic.log("Manager::ping", &inner.key(key_id));
                None
            }
            Err(_) => {
                tracing::debug!(?timeout, "keepalive ping timed out");
                Some(false)
            }
        };
        if ok != Some(true) {
            let metrics = &inner.metrics;
            let key = metrics.by_key().then(|| inner.key(key_id));
            metrics.keepalive_failed(key.as_ref());
        }
        let health = match ok {
            Some(_) => inner.health(key_id, &mut conn.conn),
            None => Health::Broken,
        };
        let result = match (ok, health) {
            (_, Health::ServerChanged) => PingResult::ServerChanged,
            (_, health) if health.is_broken() => PingResult::Broken,
            (Some(true), _) => PingResult::Ok,
            _ => PingResult::Missed,
        };
        guard.finish(Some(conn), Tended::Keepalive(result));
    });
}

/// Recycles a returned connection in its own task (see the `hooks`
/// module): `Manager::recycle` and the `after_return` hook, then
/// `health`.
pub(crate) fn spawn_recycle<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    slot: Slot,
    key: M::Key,
    mut conn: Conn<M::Connection>,
    epoch: u32,
) {
    let key_id = slot.key();
    let mut guard = TendGuard::new(inner, slot, epoch, Tended::Recycle(Check::Failed, false));
    inner.runtime.spawn(async move {
        let inner = &guard.inner;
        let limit = inner.config.set.ping_timeout;
        let recycled = hooks::recycle(&inner.manager, &inner.hooks, &mut conn.conn, &key, limit);
        let recycled = recycled.await;
        if let Err(failure) = &recycled {
            failure.log("the recycle", &key);
        }
        // Asked after a failed recycle too: it may have found the server changed.
        let health = inner.health(key_id, &mut conn.conn);
        let check = Check::passed_if(recycled.is_ok() && !health.is_broken());
        let changed = health == Health::ServerChanged;
        guard.finish(Some(conn), Tended::Recycle(check, changed));
    });
}

/// Settles the task of a connection that is out (a keepalive ping, a
/// recycle); if dropped unfinished (it panicked, or its runtime shut down),
/// the connection is gone and is counted as closed. Holds the connection's
/// slot until then (`None` once settled).
struct TendGuard<M: Manager> {
    inner: Arc<PoolInner<M>>,
    slot: Option<Slot>,
    /// The key's epoch when the connection was taken out.
    epoch: u32,
    /// What the task does, as it counts if the task dies with its
    /// connection (a missed ping, a failed recycle).
    what: Tended,
}

impl<M: Manager> TendGuard<M> {
    fn new(inner: &Arc<PoolInner<M>>, slot: Slot, epoch: u32, what: Tended) -> Self {
        Self {
            inner: Arc::clone(inner),
            slot: Some(slot),
            epoch,
            what,
        }
    }

    fn finish(&mut self, conn: Option<Conn<M::Connection>>, how: Tended) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let (epoch, key) = (self.epoch, slot.key());
        let cleared = self
            .inner
            .transition(Tick::now(), |t| t.tended(slot, conn, epoch, how));
        if cleared {
            self.inner.log_cleared(key);
        }
        self.inner.task_ended();
    }
}

impl<M: Manager> Drop for TendGuard<M> {
    fn drop(&mut self) {
        if self.slot.is_some() {
            tracing::debug!(what = ?self.what, "tending task aborted");
            self.finish(None, self.what);
        }
    }
}

/// Runs `Manager::close` in its own task.
pub(crate) fn spawn_close<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    conn: M::Connection,
    reason: CloseReason,
) {
    inner.metrics.closed(reason);
    let guard = CloseGuard(Arc::clone(inner));
    inner.runtime.spawn(async move {
        tracing::debug!(reason = reason.as_str(), "closing connection");
        if let Err(panic) = Caught(guard.0.manager.close(conn)).await {
            tracing::error!(reason = reason.as_str(), panic = %panic, "Manager::close panicked");
        }
        drop(guard);
    });
}

/// Ends the `closing` count of one close, however its task ends.
struct CloseGuard<M: Manager>(Arc<PoolInner<M>>);

impl<M: Manager> Drop for CloseGuard<M> {
    fn drop(&mut self) {
        let drained = self.0.state.lock().close_finished();
        if drained {
            self.0.quiet.notify_waiters();
        } else {
            self.0.task_ended();
        }
    }
}
