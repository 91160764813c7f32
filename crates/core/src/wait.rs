//! A getter's wait for its slot in a key's queue: the future that polls
//! the slot under the getter's own deadline timer, and its cancel when
//! dropped unserved.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::clock::Tick;
use crate::engine::Outcome;
use crate::engine::WaiterId;
use crate::error::Error;
use crate::inner::PoolInner;
use crate::manager::Manager;

/// Waits on slot `id` until served, or until `deadline`, for a get
/// that began at `began`. The deadline is a timer of the getter's own: it
/// wakes the getter itself, whatever else the runtime runs.
pub(crate) async fn wait<M: Manager>(
    inner: &Arc<PoolInner<M>>,
    id: WaiterId,
    began: Tick,
    deadline: Option<Tick>,
) -> Outcome<M> {
    let mut waiting = Waiting {
        inner,
        id,
        began,
        deadline: deadline.filter(|&at| at < Tick::NEVER),
        done: false,
    };
    match waiting.deadline {
        Some(at) => match tokio::time::timeout_at(at.into_instant(), &mut waiting).await {
            Ok(outcome) => outcome,
            Err(_) => waiting.expire(),
        },
        None => (&mut waiting).await,
    }
}

/// How a wait ended, as the wait's span and the slow checkout warning name it.
pub(crate) fn outcome_name<M: Manager>(outcome: &Outcome<M>) -> &'static str {
    match outcome {
        Ok(_) => "lent",
        Err(Error::Timeout { .. }) => "timeout",
        Err(Error::Backoff { .. }) => "backoff",
        Err(Error::Connect(_)) => "connect_error",
        Err(Error::Closed) => "closed",
        Err(_) => "error",
    }
}

/// A getter waiting on its slot. Dropping it unserved cancels the wait.
struct Waiting<'a, M: Manager> {
    inner: &'a Arc<PoolInner<M>>,
    id: WaiterId,
    /// When the get began.
    began: Tick,
    /// The checkout deadline, if any.
    deadline: Option<Tick>,
    /// Set once the slot is gone (picked up or expired).
    done: bool,
}

impl<M: Manager> Waiting<'_, M> {
    fn expire(&mut self) -> Outcome<M> {
        self.done = true;
        let id = self.id;
        let began = self.began;
        self.inner.transition(Tick::now(), |t| t.expire(id, began))
    }
}

impl<M: Manager> Future for Waiting<'_, M> {
    type Output = Outcome<M>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<M>> {
        // Read before the lock, as a checkout's is.
        let now = Tick::now();
        let outcome = self
            .inner
            .state
            .lock()
            .poll_waiter(self.id, cx.waker(), now);
        match outcome {
            Some(outcome) => {
                self.done = true;
                Poll::Ready(outcome)
            }
            // Its deadline passed (its timer and a hand-off may race).
            None if self.deadline.is_some_and(|at| now >= at) => Poll::Ready(self.expire()),
            None => Poll::Pending,
        }
    }
}

impl<M: Manager> Drop for Waiting<'_, M> {
    fn drop(&mut self) {
        if !self.done {
            let id = self.id;
            self.inner.transition(Tick::now(), |t| t.cancel(id));
        }
    }
}
