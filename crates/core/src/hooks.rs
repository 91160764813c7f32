//! Hooks: user code the pool runs at three points of a connection's life
//! (after its dial, before it is lent, after it comes back), set on the
//! [`Builder`](crate::Builder); what each does is documented there
//! ("Hooks").
//!
//! A returned connection that is recycled (an `after_return` hook, or a
//! manager whose `health` says it needs one) is taken out by the core like a
//! connection due a keepalive ping (`features::tending`) and tended by a task
//! (`inner::tasks::spawn_recycle`) running [`recycle`].
//!
//! **No cost when unset.** Without hooks the checkout and return paths test
//! one `Option` each and are otherwise unchanged.

use std::time::Duration;

use futures_core::future::BoxFuture;

use crate::contain::{Caught, Panic};
use crate::manager::{Health, Manager};

/// A hook: an async function of a connection and its key, whose future
/// borrows them.
pub(crate) type Hook<M> = Box<
    dyn for<'a> Fn(
            &'a mut <M as Manager>::Connection,
            &'a <M as Manager>::Key,
        ) -> BoxFuture<'a, Result<(), <M as Manager>::Error>>
        + Send
        + Sync,
>;

/// How a hook call ended, when it did not succeed.
pub(crate) enum HookFailure<E> {
    /// It returned this error.
    Failed(E),
    /// It panicked.
    Panicked(Panic),
    /// It ran into its time limit.
    TimedOut(Duration),
}

/// A pool's hooks (see the module docs).
pub(crate) struct Hooks<M: Manager> {
    pub(crate) after_connect: Option<Hook<M>>,
    pub(crate) before_lend: Option<Hook<M>>,
    pub(crate) after_return: Option<Hook<M>>,
}

impl<M: Manager> Hooks<M> {
    /// The names of the hooks set, for `Debug`.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        [
            ("after_connect", self.after_connect.is_some()),
            ("before_lend", self.before_lend.is_some()),
            ("after_return", self.after_return.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// Runs `hook` (if any) on `conn` of `key`, its panic contained, within
/// `limit` (`None`: the caller bounds it).
pub(crate) async fn run<M: Manager>(
    hook: Option<&Hook<M>>,
    conn: &mut M::Connection,
    key: &M::Key,
    limit: Option<Duration>,
) -> Result<(), HookFailure<M::Error>> {
    let Some(hook) = hook else {
        return Ok(());
    };
    within(limit, caught(hook(conn, key))).await
}

/// [`Manager::recycle`] of `conn` if [`Manager::health`] says
/// [`Health::NeedsRecycle`] (a panic says so too), and then the
/// `after_connect` hook again (a recycle resets the session to a new
/// one's), then the `after_return` hook, within `limit` together, panics
/// contained.
pub(crate) async fn recycle<M: Manager>(
    manager: &M,
    hooks: &Hooks<M>,
    conn: &mut M::Connection,
    key: &M::Key,
    limit: Duration,
) -> Result<(), HookFailure<M::Error>> {
    let all = async {
        let health = crate::contain::call(|| manager.health(conn));
        if matches!(health, Ok(Health::NeedsRecycle) | Err(_)) {
            caught(manager.recycle(conn)).await?;
            // The session is as new: set it up as a new one.
            run::<M>(hooks.after_connect.as_ref(), conn, key, None).await?;
        }
        run::<M>(hooks.after_return.as_ref(), conn, key, None).await
    };
    within(Some(limit), all).await
}

/// How a call into user code ended, its panic contained.
async fn caught<E>(call: BoxFuture<'_, Result<(), E>>) -> Result<(), HookFailure<E>> {
    Caught(call)
        .await
        .map_err(HookFailure::Panicked)?
        .map_err(HookFailure::Failed)
}

/// `call`, failed with [`HookFailure::TimedOut`] past `limit`.
async fn within<E>(
    limit: Option<Duration>,
    call: impl Future<Output = Result<(), HookFailure<E>>>,
) -> Result<(), HookFailure<E>> {
    match limit {
        None => call.await,
        Some(limit) => tokio::time::timeout(limit, call)
            .await
            .unwrap_or(Err(HookFailure::TimedOut(limit))),
    }
}

impl<E: std::fmt::Display> HookFailure<E> {
    /// Logs the failure of hook `what` of a connection of `key`: a panic at
    /// `error`, the rest at `debug`.
    pub(crate) fn log(&self, what: &'static str, key: &dyn std::fmt::Debug) {
        match self {
            HookFailure::Failed(e) => tracing::debug!(?key, error = %e, "{what} failed"),
            HookFailure::Panicked(panic) => panic.log(what, key),
            HookFailure::TimedOut(limit) => tracing::debug!(?key, ?limit, "{what} timed out"),
        }
    }
}
