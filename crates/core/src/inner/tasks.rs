//! The tasks a pool spawns: dials, keepalive pings, recycles and closes.
//!
//! Each runs on the runtime the pool was built in, never on a getter's task:
//! a getter that gives up must not cancel a dial (its connection serves the
//! next getter), and a guard dropped in synchronous code cannot await a close.
//! Each task reports back through a drop guard, so a task that panics or is
//! dropped with its runtime still settles its counts. A part of `inner`:
//! it spawns them, and they report back through it.

use std::sync::Arc;

use super::PoolInner;
use crate::clock::Tick;
use crate::contain::{self, Caught, Panic};
use crate::engine::{DialOrder, KeyId, Slot};
use crate::error::ConnectError;
use crate::features::{Check, Conn, Dialed, PingResult, Tended};
use crate::hooks::{self, HookFailure};
use crate::manager::{Health, Lending, Manager};
use crate::metrics::{DIAL_FAILURES, KEEPALIVE_FAILURES};
use crate::reason::CloseReason;

/// Starts a dial in its own task.
pub(crate) fn spawn_dial<M: Manager>(inner: &Arc<PoolInner<M>>, order: DialOrder<M::Key>) {
    let (key, key_id) = (order.key, order.slot.key());
    let guard = Settle::new(inner, move |inner, dialed| {
        let dialed = dialed.unwrap_or_else(|| {
            tracing::debug!("dial aborted");
            Err(ConnectError::Aborted)
        });
        let (slot, waiter, epoch) = (order.slot, order.waiter, order.epoch);
        inner.transition(Tick::now(), |t| t.dial_done(slot, waiter, epoch, dialed));
        inner.task_ended();
    });
    inner.runtime.spawn(async move {
        let inner = &guard.inner;
        let dialed = dial(inner, &key, key_id).await;
        if dialed.is_err() {
            inner.metrics.count(DIAL_FAILURES, inner.metrics.key(&key));
        }
        guard.finish(dialed);
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
    let dialed = Caught(Box::pin(dial_once(inner, key, key_id))).await;
    dialed.unwrap_or_else(|panic| {
        tracing::error!(panic = %panic, "a dial task panicked");
        Err(ConnectError::Panicked(panic.message()))
    })
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
        Ok(Err(panic)) => return Err(panicked(panic, "Manager::connect", key)),
        Err(_) => {
            tracing::debug!(?key, ?timeout, "dial timed out");
            return Err(ConnectError::Timeout(timeout));
        }
    };
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let hook = inner.hooks.after_connect.as_ref();
    let hooked = hooks::run::<M>(hook, &mut conn, key, Some(left)).await;
    let hooked = hooked.map_err(|failure| {
        failure.log("the after_connect hook", key);
        match failure {
            HookFailure::Failed(e) => ConnectError::Manager(Arc::new(e)),
            HookFailure::Panicked(panic) => ConnectError::Panicked(panic.message()),
            HookFailure::TimedOut(_) => ConnectError::Timeout(timeout),
        }
    });
    match hooked.and_then(|()| checked_lending(manager, &mut conn, key)) {
        Ok(lending) => {
            tracing::debug!(?key, ?lending, "dial succeeded");
            let metrics = &inner.metrics;
            metrics.created(metrics.key(key), started.elapsed());
            Ok((conn, lending))
        }
        Err(err) => {
            // Made but never lent: closed all the same.
            inner.state.lock().count_close_of_dialed(key_id);
            spawn_close(inner, conn, CloseReason::Broken);
            Err(err)
        }
    }
}

/// How a connection just made is lent, unless `health` calls it broken;
/// a panic in either fails the dial, logged with the method's name.
fn checked_lending<M: Manager>(
    manager: &M,
    conn: &mut M::Connection,
    key: &M::Key,
) -> Result<Lending<M::Connection>, ConnectError<M::Error>> {
    let broken = contain::call(|| manager.health(conn).is_broken());
    if broken.map_err(|panic| panicked(panic, "Manager::health", key))? {
        tracing::debug!(?key, "dial made a connection that is already broken");
        return Err(ConnectError::Broken);
    }
    contain::call(|| manager.lending(conn))
        .map_err(|panic| panicked(panic, "Manager::lending", key))
}

/// A panic of `what` in a dial of `key`, logged: the dial's error.
fn panicked<E>(panic: Panic, what: &'static str, key: &dyn std::fmt::Debug) -> ConnectError<E> {
    panic.log(what, key);
    ConnectError::Panicked(panic.message())
}

/// Runs a background keepalive ping of an idle connection in its own task.
pub(crate) fn spawn_ping<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    slot: Slot,
    mut conn: Conn<M::Connection>,
    epoch: u32,
) {
    let key_id = slot.key();
    let died = Tended::Keepalive(PingResult::Missed);
    let guard = Settle::new(inner, move |inner, done| {
        tended(inner, slot, epoch, done, died);
    });
    inner.runtime.spawn(async move {
        let inner = &guard.inner;
        let timeout = inner.config.set.ping_timeout;
        tracing::trace!("keepalive ping");
        let ping = tokio::time::timeout(timeout, Caught(inner.manager.ping(&mut conn.conn))).await;
        // `None`: it panicked, and the connection counts as broken.
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
            let key = inner.metrics.by_key().then(|| inner.key(key_id));
            inner.metrics.count(KEEPALIVE_FAILURES, key.as_ref());
        }
        let health = ok.map_or(Health::Broken, |_| inner.health(key_id, &mut conn.conn));
        let result = match (ok, health) {
            (_, Health::ServerChanged) => PingResult::ServerChanged,
            (_, health) if health.is_broken() => PingResult::Broken,
            (Some(true), _) => PingResult::Ok,
            _ => PingResult::Missed,
        };
        guard.finish((conn, Tended::Keepalive(result)));
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
    let died = Tended::Recycle(Check::Failed, false);
    let guard = Settle::new(inner, move |inner, done| {
        tended(inner, slot, epoch, done, died);
    });
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
        guard.finish((conn, Tended::Recycle(check, changed)));
    });
}

/// Settles the task of a connection that is out (a keepalive ping, a
/// recycle) with the connection and how it went; if the task died, the
/// connection is gone and counts as closed after `died` (a missed ping, a
/// failed recycle).
fn tended<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    slot: Slot,
    epoch: u32,
    done: Option<(Conn<M::Connection>, Tended)>,
    died: Tended,
) {
    if done.is_none() {
        tracing::debug!(what = ?died, "tending task aborted");
    }
    let (conn, how) = done.map_or((None, died), |(conn, how)| (Some(conn), how));
    let key = slot.key();
    if inner.transition(Tick::now(), |t| t.tended(slot, conn, epoch, how)) {
        inner.log_cleared(key);
    }
    inner.task_ended();
}

/// Runs `Manager::close` in its own task.
pub(crate) fn spawn_close<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    conn: M::Connection,
    reason: CloseReason,
) {
    inner.metrics.closed(reason);
    // Ends the close's `closing` count.
    let guard = Settle::new(inner, |inner, _: Option<()>| {
        if inner.state.lock().close_finished() {
            inner.quiet.notify_waiters();
        } else {
            inner.task_ended();
        }
    });
    inner.runtime.spawn(async move {
        tracing::debug!(reason = reason.as_str(), "closing connection");
        if let Err(panic) = Caught(guard.inner.manager.close(conn)).await {
            tracing::error!(reason = reason.as_str(), panic = %panic, "Manager::close panicked");
        }
        guard.finish(());
    });
}

/// Settles a task however it ends: `settle` runs once, with the task's
/// result if it finished, or with `None` if it was dropped unfinished (it
/// panicked, or its runtime shut down). Whatever the task holds in the
/// pool's counts (a dial's slot, a closing connection) `settle` gives back.
struct Settle<M: Manager, T, F: FnOnce(&Arc<PoolInner<M>>, Option<T>)> {
    inner: Arc<PoolInner<M>>,
    result: Option<T>,
    settle: Option<F>,
}

impl<M: Manager, T, F: FnOnce(&Arc<PoolInner<M>>, Option<T>)> Settle<M, T, F> {
    fn new(inner: &Arc<PoolInner<M>>, settle: F) -> Self {
        Self {
            inner: Arc::clone(inner),
            result: None,
            settle: Some(settle),
        }
    }

    fn finish(mut self, result: T) {
        self.result = Some(result);
    }
}

impl<M: Manager, T, F: FnOnce(&Arc<PoolInner<M>>, Option<T>)> Drop for Settle<M, T, F> {
    fn drop(&mut self) {
        if let Some(settle) = self.settle.take() {
            settle(&self.inner, self.result.take());
        }
    }
}
