//! The public pool: [`Pool`], its checkout and its close.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::builder::Builder;
use crate::clock::Tick;
use crate::config::Config;
use crate::core::{Checkout, Outcome};
use crate::error::{BuildError, CloseTimeout, ConnectError, Error};
use crate::guard::Pooled;
use crate::hooks::Hooks;
use crate::inner::PoolInner;
use crate::maintenance::spawn_maintenance;
use crate::manager::Manager;
use crate::stats::{CloseReason, KeyState, PoolState};
use crate::store::WaiterId;
use crate::tasks::dial;
use crate::vetting;

/// A keyed async connection pool. Cheap to clone: clones share one pool.
///
/// Get a connection with [`get_for`](Pool::get_for) (or [`get`](Pool::get)
/// when `Key = ()`); it comes back to the pool when the returned [`Pooled`]
/// guard drops. See the crate docs for the model, and [`Builder`] for the
/// configuration and its defaults.
///
/// Dropping the last handle closes the pool as [`close`](Pool::close) does,
/// without waiting: its idle connections get their [`Manager::close`] in
/// tasks on the runtime the pool was built in (if that runtime is still
/// running; if not, they are dropped), and connections still lent are
/// closed when their guards drop. Call `close` to wait for all of it.
pub struct Pool<M: Manager> {
    inner: Arc<PoolInner<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        self.inner.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<M: Manager> Drop for Pool<M> {
    /// The last handle closes the pool, as [`close`](Pool::close) does
    /// without waiting: nobody can borrow from it any more, and its
    /// connections get their [`Manager::close`].
    fn drop(&mut self) {
        // AcqRel: the last handle sees every other handle's work done.
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.begin_close();
        }
    }
}

impl<M: Manager> std::fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.inner.config)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl<M: Manager> Pool<M> {
    /// A builder for a pool of `manager`'s connections.
    pub fn builder(manager: M) -> Builder<M> {
        Builder::new(manager)
    }

    pub(crate) async fn start(
        manager: M,
        config: Config,
        hooks: Hooks<M>,
        initial: Vec<(M::Key, usize)>,
    ) -> Result<Self, BuildError<M::Error>> {
        let wake = Arc::new(Notify::new());
        let inner = Arc::new(PoolInner::new(manager, config, hooks, Arc::clone(&wake)));
        spawn_maintenance(&inner, wake);
        let pool = Pool { inner };
        if initial.iter().any(|(_, n)| *n > 0) {
            pool.prewarm(initial).await?;
        }
        pool.inner.transition(Tick::now(), |t| t.refill_all());
        Ok(pool)
    }

    /// Dials the `initial` connections concurrently; on any failure closes
    /// the pool (and so the connections already made) and reports it.
    async fn prewarm(&self, initial: Vec<(M::Key, usize)>) -> Result<(), BuildError<M::Error>> {
        let mut dials = JoinSet::new();
        // A panicking dial leaves only its task id behind: map it to its key
        // so the reserved count is released all the same.
        let mut keys_of = HashMap::new();
        for (key, n) in initial.into_iter().filter(|(_, n)| *n > 0) {
            let id = self.inner.state.lock().reserve_initial(&key, n);
            for _ in 0..n {
                let inner = Arc::clone(&self.inner);
                let key = key.clone();
                let handle = dials.spawn(async move { dial(&inner, &key, id).await });
                keys_of.insert(handle.id(), id);
            }
        }
        let mut failure = None;
        while let Some(joined) = dials.join_next_with_id().await {
            let (task, result) = match joined {
                Ok((task, result)) => (task, result),
                Err(e) => (e.id(), Err(ConnectError::Aborted)),
            };
            let id = keys_of[&task];
            if let Err(e) = &result {
                failure.get_or_insert_with(|| e.clone());
            }
            self.inner
                .transition(Tick::now(), |t| t.dial_done(id, None, result));
        }
        match failure {
            None => Ok(()),
            Some(e) => {
                self.close().await;
                Err(BuildError::Connect(e))
            }
        }
    }

    /// Borrows a connection to `key`: the newest idle one (closing stale or
    /// expired ones it meets, pinging it first if the health-check policy
    /// says so), else whichever comes first of a connection of `key` coming
    /// back and a new dial.
    ///
    /// Fails with the dial's error if the dial started for this getter fails,
    /// with [`Error::Backoff`] at once when the key is in dial backoff and no
    /// idle connection is left, with [`Error::Timeout`] at the checkout
    /// deadline (carrying the key's last dial error), with
    /// [`Error::TooManyWaiters`] at once when `max_waiters` getters already
    /// wait, and with [`Error::Closed`] once the pool is closed. A connection
    /// that fails its health check is closed and the next one tried, all
    /// within the checkout deadline.
    ///
    /// Cancel-safe: dropping the future at any point leaks nothing; a
    /// connection on its way to this getter goes to the next one.
    pub async fn get_for(&self, key: &M::Key) -> Result<Pooled<M>, Error<M::Error>> {
        let start = self.inner.clock.now();
        // The common case (an idle connection, no health check due) is
        // decided by a plain function: the state machine of the rest, with
        // its waits and pings, is entered only when needed.
        match self.attempt(key, true, start) {
            Attempt::Lent(conn) => Ok(conn),
            attempt => self.get_slowly(key, start, attempt).await,
        }
    }

    /// One checkout attempt at `now`: lent, failed, or what to do next.
    #[inline]
    fn attempt(&self, key: &M::Key, count: bool, now: Tick) -> Attempt<M> {
        let config = &self.inner.config;
        let mut state = self.inner.state.lock();
        let recent = if count {
            state.lend_recent(now, config)
        } else {
            None
        };
        let checkout = match recent {
            Some((id, lent)) => {
                drop(state);
                Ok(Checkout::Lent(id, lent, false))
            }
            None => self
                .inner
                .transition_in(state, now, |t| t.checkout(key, count)),
        };
        match checkout {
            Err(e) => Attempt::Failed(e),
            Ok(Checkout::Wait(w)) => Attempt::Wait(w),
            Ok(Checkout::Lent(id, conn, check)) => {
                let mut conn = Pooled::new(Arc::clone(&self.inner), id, conn);
                if self.inner.is_broken(id, &mut conn) {
                    Pooled::close_for(conn, CloseReason::Broken);
                    Attempt::Again
                } else if check {
                    Attempt::Check(conn)
                } else if self.inner.hooks.before_lend.is_some() {
                    Attempt::Vet(conn)
                } else {
                    Attempt::Lent(conn)
                }
            }
        }
    }

    /// The rest of [`get_for`](Pool::get_for) after its first attempt:
    /// waits, health checks and further attempts, within the deadline.
    async fn get_slowly(
        &self,
        key: &M::Key,
        start: Tick,
        mut attempt: Attempt<M>,
    ) -> Result<Pooled<M>, Error<M::Error>> {
        let config = &self.inner.config;
        // Computed when first needed: most gets never wait or ping.
        let deadline = || config.checkout_timeout.map(|t| (start + t).into_instant());
        loop {
            let (mut conn, ping) = match attempt {
                Attempt::Lent(conn) => return Ok(conn),
                Attempt::Failed(e) => return Err(e),
                Attempt::Wait(w) => {
                    // Handed over by a borrower, a dial or a keepalive ping:
                    // it just worked.
                    let (id, conn) = self
                        .wait(w, deadline())
                        .await
                        .map_err(|e| self.hint_runtime(e))?;
                    return Ok(Pooled::new(Arc::clone(&self.inner), id, conn));
                }
                Attempt::Check(conn) => (conn, true),
                Attempt::Vet(conn) => (conn, false),
                Attempt::Again => {
                    attempt = self.attempt(key, false, self.inner.clock.now());
                    continue;
                }
            };
            match vetting::vet(&self.inner, &mut conn, ping, deadline()).await {
                Some(None) => return Ok(conn),
                Some(Some(reason)) => Pooled::close_for(conn, reason),
                None => {
                    // The error first: closing the connection may make the
                    // pool forget its key.
                    let id = Pooled::key_id(&conn);
                    let waited = self.inner.clock.now().saturating_duration_since(start);
                    let err = self.inner.state.lock().timeout_error(id, waited);
                    Pooled::close_for(conn, CloseReason::HealthCheck);
                    return Err(self.hint_runtime(err));
                }
            }
            attempt = self.attempt(key, false, self.inner.clock.now());
        }
    }

    /// Marks a checkout timeout of a getter that runs outside the pool's
    /// runtime, where the dials it waited for run (off the hot path: only a
    /// getter that timed out asks).
    #[cold]
    fn hint_runtime(&self, mut e: Error<M::Error>) -> Error<M::Error> {
        if let Error::Timeout {
            foreign_runtime, ..
        } = &mut e
        {
            *foreign_runtime =
                Handle::try_current().map_or(true, |h| h.id() != self.inner.runtime.id());
        }
        e
    }

    async fn wait(&self, id: WaiterId, deadline: Option<Instant>) -> Outcome<M> {
        let mut waiting = Waiting {
            inner: &self.inner,
            id,
            done: false,
        };
        match deadline {
            None => (&mut waiting).await,
            Some(deadline) => match tokio::time::timeout_at(deadline, &mut waiting).await {
                Ok(outcome) => outcome,
                Err(_) => waiting.expire(),
            },
        }
    }

    /// A snapshot of the whole pool: counts and cumulative counters.
    pub fn state(&self) -> PoolState {
        self.inner.state.lock().snapshot()
    }

    /// A snapshot of one key, or `None` if the pool tracks nothing for it.
    ///
    /// A key is tracked while it has a connection (idle, lent, dialing or
    /// pinged) or a waiter, while it is in dial backoff and for a while
    /// after a failed dial (so failures in a row keep counting), and for
    /// good when `min_idle` is set. Otherwise it is forgotten, so that a
    /// pool that sees many keys stays bounded: its per-key counters then
    /// start again from zero the next time it is used. The pool-wide
    /// counters of [`state`](Pool::state) never restart.
    pub fn key_state(&self, key: &M::Key) -> Option<KeyState> {
        self.inner.state.lock().key_snapshot(key)
    }

    /// The validated configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The manager.
    pub fn manager(&self) -> &M {
        &self.inner.manager
    }

    /// Whether [`close`](Pool::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.state.lock().is_closed()
    }

    /// Closes the pool: new gets fail with [`Error::Closed`], waiting getters
    /// are woken with it, idle connections are closed through
    /// [`Manager::close`], lent ones when they come back, dialing ones when
    /// their dial ends. Resolves when every connection is closed. Calling it
    /// again (or from several handles) just waits.
    pub async fn close(&self) {
        self.begin_close();
        self.drained().await;
    }

    /// [`close`](Pool::close), giving up waiting after `grace`; the pool
    /// stays closed and the rest is still closed as it comes back.
    pub async fn close_timeout(&self, grace: Duration) -> Result<(), CloseTimeout> {
        self.begin_close();
        match tokio::time::timeout(grace, self.drained()).await {
            Ok(()) => Ok(()),
            Err(_) => {
                let (open, closing) = self.inner.state.lock().open_and_closing();
                Err(CloseTimeout { open, closing })
            }
        }
    }

    fn begin_close(&self) {
        let state = self.inner.state.lock();
        if state.is_closed() {
            return;
        }
        self.inner.transition_in(state, Tick::now(), |t| t.close());
        tracing::debug!("pool closed");
    }

    async fn drained(&self) {
        loop {
            let notified = self.inner.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inner.state.lock().is_drained() {
                return;
            }
            notified.await;
        }
    }
}

impl<M: Manager<Key = ()>> Pool<M> {
    /// Borrows a connection from a single-destination pool: [`get_for`](Pool::get_for)`(&())`.
    ///
    /// (The future is `get_for`'s own: no second state machine around it.)
    pub fn get(&self) -> impl Future<Output = Result<Pooled<M>, Error<M::Error>>> + Send + '_ {
        self.get_for(&())
    }
}

/// What one checkout attempt of [`Pool::get_for`] came to.
enum Attempt<M: Manager> {
    /// Lent (no check due).
    Lent(Pooled<M>),
    /// Failed.
    Failed(Error<M::Error>),
    /// No idle connection: wait on this slot.
    Wait(WaiterId),
    /// Lent, but the health-check policy wants it pinged first (then the
    /// `before_lend` hook runs, if set).
    Check(Pooled<M>),
    /// Lent, but the `before_lend` hook runs first.
    Vet(Pooled<M>),
    /// It was broken and is closed: try again.
    Again,
}

/// A getter waiting on its slot. Dropping it unserved cancels the wait.
struct Waiting<'a, M: Manager> {
    inner: &'a Arc<PoolInner<M>>,
    id: WaiterId,
    /// Set once the slot is gone (picked up or expired).
    done: bool,
}

impl<M: Manager> Waiting<'_, M> {
    fn expire(&mut self) -> Outcome<M> {
        self.done = true;
        let id = self.id;
        self.inner.transition(Tick::now(), |t| t.expire(id))
    }
}

impl<M: Manager> Future for Waiting<'_, M> {
    type Output = Outcome<M>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<M>> {
        let outcome = self.inner.state.lock().poll_waiter(self.id, cx.waker());
        match outcome {
            Some(outcome) => {
                self.done = true;
                Poll::Ready(outcome)
            }
            None => Poll::Pending,
        }
    }
}

impl<M: Manager> Drop for Waiting<'_, M> {
    fn drop(&mut self) {
        if !self.done {
            let id = self.id;
            self.inner.transition(Tick::now(), |t| t.cancel(id, false));
        }
    }
}
