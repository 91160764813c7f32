//! Vetting a connection taken from the idle list before it is lent, in
//! the getter's task: the health-check ping (if the policy says it is due)
//! and the `before_lend` hook (if set). A connection that fails either is
//! closed by the getter, who is then served by another.

use std::sync::Arc;

use tokio::time::Instant;

use crate::clock::Tick;
use crate::contain::Caught;
use crate::engine::Checkup;
use crate::features::Check;
use crate::guard::Pooled;
use crate::hooks;
use crate::inner::PoolInner;
use crate::manager::{Health, Manager};
use crate::reason::CloseReason;

/// What vetting found.
pub(crate) enum Verdict {
    /// Lend it.
    Lend,
    /// It failed: close it for this reason, with what [`Manager::health`]
    /// said of it if that is why.
    Close(CloseReason, Option<Health>),
    /// The checkout deadline passed first.
    TimedOut,
}

/// Vets `conn` of `key` before lending it: pings it if its `ping` is
/// due, then runs the `before_lend` hook.
pub(crate) async fn vet<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    conn: &mut Pooled<'_, M>,
    key: &M::Key,
    ping: Checkup,
    deadline: Option<Instant>,
) -> Verdict {
    match health_check(inner, conn, key, ping, deadline).await {
        Some((Check::Passed, _)) => {}
        Some((Check::Failed, health)) => return Verdict::Close(CloseReason::HealthCheck, health),
        None => return Verdict::TimedOut,
    }
    let Some(hook) = &inner.hooks.before_lend else {
        return Verdict::Lend;
    };
    // Abandoned mid-hook, the connection is in an unknown state.
    Pooled::set_close(conn, Some(CloseReason::Broken));
    let run = hooks::run::<M>(Some(hook), conn, key, Some(inner.config.set.ping_timeout));
    let Some(result) = before(deadline, run).await else {
        return Verdict::TimedOut;
    };
    if let Err(failure) = &result {
        failure.log("the before_lend hook", key);
    }
    let (id, check) = (Pooled::key_id(conn), Check::passed_if(result.is_ok()));
    // Lent (so `id` is live) and vetted in the getter's task.
    inner.state.lock().count_call(id, check, |c| {
        (&mut c.before_lend_checks, &mut c.before_lend_failures)
    });
    if check == Check::Passed {
        Pooled::set_close(conn, None);
        Verdict::Lend
    } else {
        Verdict::Close(CloseReason::Broken, None)
    }
}

/// Pings `conn` of `key` before lending it, if its `ping` is due: how the check
/// ended (passed without a ping), with what [`Manager::health`] said if it
/// failed the check after a ping that answered, or `None` if the checkout
/// deadline passed first.
async fn health_check<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    conn: &mut Pooled<'_, M>,
    key: &M::Key,
    ping: Checkup,
    deadline: Option<Instant>,
) -> Option<(Check, Option<Health>)> {
    if ping == Checkup::NotDue {
        return Some((Check::Passed, None));
    }
    // Abandoned mid-ping (the getter gave up), the connection is in an
    // unknown state: it is closed, not returned.
    Pooled::set_close(conn, Some(CloseReason::HealthCheck));
    let ping = tokio::time::timeout(
        inner.config.set.ping_timeout,
        Caught(inner.manager.ping(conn)),
    );
    let Some(result) = before(deadline, ping).await else {
        health_checked(inner, conn, Check::Failed);
        return None;
    };
    tracing::trace!("health check ping");
    let mut broken = None;
    let check = match result {
        Ok(Ok(Ok(()))) => {
            let health = inner.health(Pooled::key_id(conn), conn);
            broken = health.is_broken().then_some(health);
            Check::passed_if(broken.is_none())
        }
        Ok(Ok(Err(e))) => {
            tracing::debug!(error = %e, "health check failed");
            Check::Failed
        }
        Ok(Err(panic)) => {
            panic.log("Manager::ping", key);
            Check::Failed
        }
        Err(_) => {
            tracing::debug!("health check timed out");
            Check::Failed
        }
    };
    health_checked(inner, conn, check);
    if check == Check::Passed {
        Pooled::set_close(conn, None);
    }
    Some((check, broken))
}

fn health_checked<M: Manager>(inner: &Arc<PoolInner<M>>, conn: &Pooled<'_, M>, check: Check) {
    let (id, slot) = (Pooled::key_id(conn), Pooled::shared_slot(conn));
    inner.transition(Tick::now(), |t| t.health_checked(id, slot, check));
}

/// `fut`'s output, or `None` if the checkout `deadline` passes first.
async fn before<T>(deadline: Option<Instant>, fut: impl Future<Output = T>) -> Option<T> {
    match deadline {
        None => Some(fut.await),
        Some(deadline) => tokio::time::timeout_at(deadline, fut).await.ok(),
    }
}
