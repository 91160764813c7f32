//! Vetting a connection taken from the idle list before it is lent, in
//! the getter's task: the health-check ping (if the policy says it is due)
//! and the `before_lend` hook (if set). A connection that fails either is
//! closed by the getter, who is then served by another.

use std::sync::Arc;

use tokio::time::Instant;

use crate::contain::Caught;
use crate::guard::Pooled;
use crate::hooks;
use crate::inner::PoolInner;
use crate::manager::Manager;
use crate::stats::CloseReason;

/// Vets `conn` before lending it: pings it if `ping`, then runs the
/// `before_lend` hook. `Some(None)`: lend it; `Some(Some(reason))`: it
/// failed, close it for `reason`; `None`: the checkout deadline passed
/// first.
pub(crate) async fn vet<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    conn: &mut Pooled<M>,
    ping: bool,
    deadline: Option<Instant>,
) -> Option<Option<CloseReason>> {
    if ping && !health_check(inner, conn, deadline).await? {
        return Some(Some(CloseReason::HealthCheck));
    }
    let Some(hook) = &inner.hooks.before_lend else {
        return Some(None);
    };
    let id = Pooled::key_id(conn);
    let key = inner.key(id);
    // Abandoned mid-hook, the connection is in an unknown state.
    Pooled::set_close(conn, Some(CloseReason::Broken));
    let run = hooks::run::<M>(Some(hook), conn, &key, Some(inner.config.ping_timeout));
    let result = match deadline {
        None => run.await,
        Some(deadline) => tokio::time::timeout_at(deadline, run).await.ok()?,
    };
    let ok = result
        .inspect_err(|failure| failure.log("the before_lend hook", &key))
        .is_ok();
    inner.state.lock().count_before_lend(id, ok);
    if ok {
        Pooled::set_close(conn, None);
        Some(None)
    } else {
        Some(Some(CloseReason::Broken))
    }
}

/// Pings `conn` before lending it: `Some(healthy)`, or `None` if the
/// checkout deadline passed first.
async fn health_check<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    conn: &mut Pooled<M>,
    deadline: Option<Instant>,
) -> Option<bool> {
    // Abandoned mid-ping (the getter gave up), the connection is in an
    // unknown state: it is closed, not returned.
    Pooled::set_close(conn, Some(CloseReason::HealthCheck));
    let ping = tokio::time::timeout(inner.config.ping_timeout, Caught(inner.manager.ping(conn)));
    let result = match deadline {
        None => ping.await,
        Some(deadline) => match tokio::time::timeout_at(deadline, ping).await {
            Ok(result) => result,
            Err(_) => {
                health_checked(inner, conn, false);
                return None;
            }
        },
    };
    tracing::trace!("health check ping");
    let key = Pooled::key_id(conn);
    let ok = match result {
        Ok(Ok(Ok(()))) => !inner.is_broken(key, conn),
        Ok(Ok(Err(e))) => {
            tracing::debug!(error = %e, "health check failed");
            false
        }
        Ok(Err(panic)) => {
            panic.log("Manager::ping", &inner.key(key));
            false
        }
        Err(_) => {
            tracing::debug!("health check timed out");
            false
        }
    };
    health_checked(inner, conn, ok);
    if ok {
        Pooled::set_close(conn, None);
    }
    Some(ok)
}

fn health_checked<M: Manager>(inner: &Arc<PoolInner<M>>, conn: &Pooled<M>, ok: bool) {
    let (id, slot) = (Pooled::key_id(conn), Pooled::shared_slot(conn));
    inner.transition(inner.clock.now(), |t| t.health_checked(id, slot, ok));
}
