//! The tasks a pool spawns: dials, keepalive pings and closes.
//!
//! Both run on the runtime the pool was built in, never on a getter's task:
//! a getter that gives up must not cancel a dial (its connection serves the
//! next getter), and a guard dropped in synchronous code cannot await a close.
//! Each task reports back through a drop guard, so a task that panics or is
//! dropped with its runtime still settles its counts.

use std::sync::Arc;

use crate::clock::Tick;

use crate::contain::{self, Caught};
use crate::core::{DialOrder, Dialed, PingResult};
use crate::error::ConnectError;
use crate::inner::PoolInner;
use crate::manager::Manager;
use crate::stats::CloseReason;
use crate::store::Conn;
use crate::store::KeyId;
use crate::store::WaiterId;

/// Starts a dial in its own task.
pub(crate) fn spawn_dial<M: Manager>(inner: &Arc<PoolInner<M>>, order: DialOrder<M::Key>) {
    let mut guard = DialGuard {
        inner: Arc::clone(inner),
        key_id: order.key_id,
        waiter: order.waiter,
        epoch: order.epoch,
        done: false,
    };
    let key = order.key;
    inner.runtime.spawn(async move {
        let result = dial(&guard.inner, &key, guard.key_id).await;
        guard.finish(result);
    });
}

/// One `Manager::connect` of `key` under the connect timeout, and how the
/// manager lends the connection it made. A connection that is broken on
/// arrival is dropped, not lent; a panic in the manager fails the dial.
pub(crate) async fn dial<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    key: &M::Key,
    key_id: KeyId,
) -> Dialed<M> {
    let timeout = inner.config.connect_timeout;
    let manager = &inner.manager;
    tracing::debug!(?key, "dial started");
    let started = tokio::time::Instant::now();
    match tokio::time::timeout(timeout, Caught(manager.connect(key))).await {
        Ok(Ok(Ok(mut conn))) => {
            let checked = contain::call(|| manager.is_broken(&mut conn))
                .map_err(|panic| (panic, "is_broken"))
                .and_then(|broken| {
                    contain::call(|| (broken, manager.lending(&conn)))
                        .map_err(|panic| (panic, "lending"))
                });
            let err = match checked {
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
            };
            // Made but never lent: closed all the same.
            inner.state.lock().count_close_of_dialed(key_id);
            spawn_close(inner, conn, CloseReason::Broken);
            Err(err)
        }
        Ok(Ok(Err(e))) => {
            tracing::debug!(?key, error = %e, "dial failed");
            Err(ConnectError::Manager(Arc::new(e)))
        }
        Ok(Err(panic)) => {
            panic.log("connect", key);
            Err(ConnectError::Panicked(panic.message()))
        }
        Err(_) => {
            tracing::debug!(?key, ?timeout, "dial timed out");
            Err(ConnectError::Timeout(timeout))
        }
    }
}

/// Settles a dial: with its result, or as aborted if dropped unfinished.
struct DialGuard<M: Manager> {
    inner: Arc<PoolInner<M>>,
    key_id: KeyId,
    waiter: Option<WaiterId>,
    epoch: u32,
    done: bool,
}

impl<M: Manager> DialGuard<M> {
    fn finish(&mut self, result: Dialed<M>) {
        self.done = true;
        let (key_id, waiter, epoch) = (self.key_id, self.waiter, self.epoch);
        self.inner
            .transition(Tick::now(), |t| t.dial_done(key_id, waiter, epoch, result));
    }
}

impl<M: Manager> Drop for DialGuard<M> {
    fn drop(&mut self) {
        if !self.done {
            tracing::debug!("dial aborted");
            self.finish(Err(ConnectError::Aborted));
        }
    }
}

/// Runs a background keepalive ping of an idle connection in its own task.
pub(crate) fn spawn_ping<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    key_id: KeyId,
    mut conn: Conn<M::Connection>,
    epoch: u32,
) {
    let mut guard = PingGuard {
        inner: Arc::clone(inner),
        key_id,
        epoch,
        done: false,
    };
    inner.runtime.spawn(async move {
        let inner = &guard.inner;
        let manager = &inner.manager;
        let timeout = inner.config.keepalive_timeout;
        tracing::trace!("keepalive ping");
        let ping = tokio::time::timeout(timeout, Caught(manager.ping(&mut conn.conn))).await;
        let ok = match ping {
            Ok(Ok(Ok(()))) => Some(true),
            Ok(Ok(Err(e))) => {
                tracing::debug!(error = %e, "keepalive ping failed");
                Some(false)
            }
            Ok(Err(panic)) => {
                panic.log("ping", &inner.key(guard.key_id));
                None
            }
            Err(_) => {
                tracing::debug!(?timeout, "keepalive ping timed out");
                Some(false)
            }
        };
        let broken = ok.is_none()
            || contain::call(|| manager.is_broken(&mut conn.conn)).unwrap_or_else(|panic| {
                panic.log("is_broken", &inner.key(guard.key_id));
                true
            });
        let result = match (ok, broken) {
            (_, true) => PingResult::Broken,
            (Some(true), false) => PingResult::Ok,
            (_, false) => PingResult::Missed,
        };
        guard.finish(Some(conn), result);
    });
}

/// Settles a keepalive ping; if dropped unfinished (the ping panicked), the
/// connection is gone and is counted as closed.
struct PingGuard<M: Manager> {
    inner: Arc<PoolInner<M>>,
    key_id: KeyId,
    /// The key's epoch when the ping started.
    epoch: u32,
    done: bool,
}

impl<M: Manager> PingGuard<M> {
    fn finish(&mut self, conn: Option<Conn<M::Connection>>, ping: PingResult) {
        self.done = true;
        let (key_id, epoch) = (self.key_id, self.epoch);
        self.inner
            .transition(Tick::now(), |t| t.keepalive_done(key_id, conn, epoch, ping));
    }
}

impl<M: Manager> Drop for PingGuard<M> {
    fn drop(&mut self) {
        if !self.done {
            tracing::debug!("keepalive ping aborted");
            self.finish(None, PingResult::Missed);
        }
    }
}

/// Runs `Manager::close` in its own task.
pub(crate) fn spawn_close<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    conn: M::Connection,
    reason: CloseReason,
) {
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
            self.0.drained.notify_waiters();
        }
    }
}
