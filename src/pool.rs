//! The public pool: [`Pool`] and the shared core behind its handles.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::clock::{Clock, Tick};

use crate::config::{Builder, Config};
use crate::contain::{self, Caught};
use crate::error::{BuildError, CloseTimeout, ConnectError, Error};
use crate::guard::Pooled;
use crate::store::ConnId;
use crate::store::KeyId;
use crate::maintenance::spawn_maintenance;
use crate::manager::Manager;
use crate::state::{Action, Checkout, Detached, Effects, Outcome, State};
use crate::stats::{CloseReason, KeyState, PoolState};
use crate::sync::Mutex;
use crate::tasks::{dial, spawn_close, spawn_dial, spawn_ping};
use crate::store::WaiterId;

/// What every handle, guard and task of one pool shares.
pub(crate) struct Shared<M: Manager> {
    pub(crate) manager: M,
    pub(crate) config: Config,
    /// The one lock: see the `state` module for what it guards. On lines
    /// of its own, starting one: its byte and the state's first field (the
    /// single-key fast path's stack) share a line.
    pub(crate) state: Lined<Mutex<State<M>>>,
    /// Notified when a closed pool has nothing open or closing left.
    pub(crate) drained: Notify,
    /// Where dials, pings, closes and maintenance run (the runtime the pool
    /// was built in).
    pub(crate) runtime: Handle,
    /// Wakes the maintenance task: an earlier deadline, a close, or this
    /// state being dropped.
    pub(crate) maintenance: Arc<Notify>,
    /// Where checkout and return read the time (the coarse clock, unless
    /// the runtime's clock was paused when the pool was built).
    pub(crate) clock: Clock,
    /// Live [`Pool`] handles: the last one dropped closes the pool.
    handles: AtomicUsize,
}

/// A value that starts a cache line and ends one (the lines next to it are
/// someone else's).
#[repr(align(64))]
pub(crate) struct Lined<T>(T);

impl<T> std::ops::Deref for Lined<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<M: Manager> Drop for Shared<M> {
    fn drop(&mut self) {
        // The maintenance task holds the pool weakly: let it see it is gone.
        self.maintenance.notify_one();
    }
}

impl<M: Manager> Shared<M> {
    /// Carries out what a transition decided, outside the lock.
    #[inline]
    pub(crate) fn apply(self: &Arc<Self>, fx: Effects<M>) {
        // The common checkout and return decide nothing: don't move the
        // effects into the general path.
        if !fx.is_empty() {
            self.apply_all(fx);
        }
    }

    /// Applies `fx` now, or, when called from inside another application
    /// on this thread, right after it. Applying may re-enter: a task spawned
    /// on a runtime that has shut down is dropped at once, and its guard
    /// settles a transition whose effects spawn the next task (a dial for
    /// the next queued getter…). Running those in a loop instead of nested
    /// keeps the stack flat however long the queue.
    fn apply_all(self: &Arc<Self>, fx: Effects<M>) {
        match Flat::enter() {
            Some(outer) => {
                self.apply_now(fx);
                outer.run_deferred();
            }
            None => {
                let shared = Arc::clone(self);
                Flat::defer(Box::new(move || shared.apply_now(fx)));
            }
        }
    }

    fn apply_now(self: &Arc<Self>, mut fx: Effects<M>) {
        let (rearm, drained, backoff) = (fx.rearm(), fx.drained(), fx.backoff());
        if let Some(waker) = fx.wake.take() {
            waker.wake();
        }
        for action in std::mem::take(&mut fx.actions) {
            match action {
                Action::Wake(waker) => waker.wake(),
                Action::Dial(order) => spawn_dial(self, order),
                Action::Close(conn, reason) => spawn_close(self, conn, reason),
                Action::Ping(key_id, conn) => spawn_ping(self, key_id, conn),
            }
        }
        if let Some(delay) = backoff {
            tracing::debug!(?delay, "dial backoff");
        }
        if rearm {
            self.maintenance.notify_one();
        }
        if drained {
            self.drained.notify_waiters();
        }
    }

    /// The key `id` names, for a log line (takes the lock).
    pub(crate) fn key(&self, id: KeyId) -> M::Key {
        self.state.lock().key(id)
    }

    /// [`Manager::is_broken`] of a connection of `key`; a panic says broken.
    pub(crate) fn is_broken(&self, key: KeyId, conn: &mut M::Connection) -> bool {
        contain::call(|| self.manager.is_broken(conn)).unwrap_or_else(|panic| {
            panic.log("is_broken", &self.key(key));
            true
        })
    }

    /// Gives back `conn`, lent exclusively as `cid`.
    pub(crate) fn give_back(
        self: &Arc<Self>,
        key: KeyId,
        cid: ConnId,
        mut conn: M::Connection,
        close: Option<CloseReason>,
    ) {
        // User code runs before the lock is taken, never under it.
        let close = close.or_else(|| {
            self.is_broken(key, &mut conn)
                .then_some(CloseReason::Broken)
        });
        let now = self.clock.now();
        let mut state = self.state.lock();
        let conn = match close {
            None => match state.return_recent(key, cid, conn, now, &self.config) {
                Ok(()) => return,
                Err(conn) => conn,
            },
            Some(_) => conn,
        };
        let mut fx = Effects::new();
        state.give_back(key, cid, conn, close, now, &self.config, &mut fx);
        drop(state);
        self.apply(fx);
    }

    /// Gives back a borrower's handle to the shared connection in `slot`.
    pub(crate) fn give_back_handle(
        self: &Arc<Self>,
        key: KeyId,
        slot: usize,
        mut handle: M::Connection,
        close: Option<CloseReason>,
    ) {
        // The handle shares the connection's state: it tells whether the
        // connection is broken, and it is dropped before the lock is taken.
        let mut close = close.or_else(|| {
            self.is_broken(key, &mut handle)
                .then_some(CloseReason::Broken)
        });
        // The peer may have changed its limit since the dial.
        let limit = contain::call(|| {
            self.manager
                .lending(&handle)
                .clamped(self.config.max_borrowers)
                .0
        })
        .unwrap_or_else(|panic| {
            panic.log("lending", &self.key(key));
            close = Some(CloseReason::Broken);
            0
        });
        drop(handle);
        let now = self.clock.now();
        let mut fx = Effects::new();
        {
            let mut state = self.state.lock();
            if limit > 0 {
                state.relimit(key, slot, limit);
            }
            state.give_back_handle(key, slot, close, now, &self.config, &mut fx);
        }
        self.apply(fx);
    }

    pub(crate) fn detach(self: &Arc<Self>, key: KeyId, lent: Detached) {
        let mut fx = Effects::new();
        self.state
            .lock()
            .detach(key, lent, self.clock.now(), &self.config, &mut fx);
        self.apply(fx);
    }
}

thread_local! {
    /// Whether an application of effects runs on this thread.
    static APPLYING: Cell<bool> = const { Cell::new(false) };
    /// Applications that re-entered it, to run after it.
    static DEFERRED: RefCell<VecDeque<Box<dyn FnOnce()>>> = const { RefCell::new(VecDeque::new()) };
}

/// The outermost application of effects on this thread: while it lives,
/// nested applications are deferred to it (see [`Shared::apply_all`]).
struct Flat(());

impl Flat {
    /// `Some` if no application runs on this thread (also when its
    /// thread-locals are gone, at thread exit: then nothing is deferred).
    fn enter() -> Option<Flat> {
        match APPLYING.try_with(|a| a.replace(true)) {
            Ok(true) => None,
            Ok(false) | Err(_) => Some(Flat(())),
        }
    }

    fn defer(f: Box<dyn FnOnce()>) {
        DEFERRED.with_borrow_mut(|d| d.push_back(f));
    }

    fn run_deferred(&self) {
        while let Some(f) = DEFERRED
            .try_with(|d| d.borrow_mut().pop_front())
            .ok()
            .flatten()
        {
            f();
        }
    }
}

impl Drop for Flat {
    fn drop(&mut self) {
        // Also on a panic (then what was deferred runs with the next
        // application on this thread).
        let _ = APPLYING.try_with(|a| a.set(false));
    }
}

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
    shared: Arc<Shared<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<M: Manager> Drop for Pool<M> {
    /// The last handle closes the pool, as [`close`](Pool::close) does
    /// without waiting: nobody can borrow from it any more, and its
    /// connections get their [`Manager::close`].
    fn drop(&mut self) {
        // AcqRel: the last handle sees every other handle's work done.
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.begin_close();
        }
    }
}

impl<M: Manager> std::fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.shared.config)
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
        initial: Vec<(M::Key, usize)>,
    ) -> Result<Self, BuildError<M::Error>> {
        let wake = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            state: Lined(Mutex::new(State::new(&config))),
            manager,
            config,
            drained: Notify::new(),
            runtime: Handle::current(),
            maintenance: Arc::clone(&wake),
            clock: Clock::detect(),
            handles: AtomicUsize::new(1),
        });
        spawn_maintenance(&shared, wake);
        let pool = Pool { shared };
        if initial.iter().any(|(_, n)| *n > 0) {
            pool.prewarm(initial).await?;
        }
        let mut fx = Effects::new();
        pool.shared
            .state
            .lock()
            .refill_all(Tick::now(), &pool.shared.config, &mut fx);
        pool.shared.apply(fx);
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
            let id = self.shared.state.lock().reserve_initial(&key, n);
            for _ in 0..n {
                let shared = Arc::clone(&self.shared);
                let key = key.clone();
                let handle = dials.spawn(async move { dial(&shared, &key, id).await });
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
            let mut fx = Effects::new();
            self.shared.state.lock().dial_done(
                id,
                None,
                result,
                Tick::now(),
                &self.shared.config,
                &mut fx,
            );
            self.shared.apply(fx);
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
        let start = self.shared.clock.now();
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
        let config = &self.shared.config;
        let mut state = self.shared.state.lock();
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
            None => {
                let mut fx = Effects::new();
                let checkout = state.checkout(key, count, now, config, &mut fx);
                drop(state);
                self.shared.apply(fx);
                checkout
            }
        };
        match checkout {
            Err(e) => Attempt::Failed(e),
            Ok(Checkout::Wait(w)) => Attempt::Wait(w),
            Ok(Checkout::Lent(id, conn, check)) => {
                let mut conn = Pooled::new(Arc::clone(&self.shared), id, conn);
                if self.shared.is_broken(id, &mut conn) {
                    Pooled::close_for(conn, CloseReason::Broken);
                    Attempt::Again
                } else if check {
                    Attempt::Check(conn)
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
        let config = &self.shared.config;
        // Computed when first needed: most gets never wait or ping.
        let deadline = || config.checkout_timeout.map(|t| (start + t).into_instant());
        loop {
            match attempt {
                Attempt::Lent(conn) => return Ok(conn),
                Attempt::Failed(e) => return Err(e),
                Attempt::Wait(w) => {
                    // Handed over by a borrower, a dial or a keepalive ping:
                    // it just worked.
                    let (id, conn) = self
                        .wait(w, deadline())
                        .await
                        .map_err(|e| self.hint_runtime(e))?;
                    return Ok(Pooled::new(Arc::clone(&self.shared), id, conn));
                }
                Attempt::Check(mut conn) => match self.health_check(&mut conn, deadline()).await {
                    Some(true) => return Ok(conn),
                    Some(false) => Pooled::close_for(conn, CloseReason::HealthCheck),
                    None => {
                        // The error first: closing the connection may make
                        // the pool forget its key.
                        let id = Pooled::key_id(&conn);
                        let waited = self.shared.clock.now().saturating_duration_since(start);
                        let err = self.shared.state.lock().timeout_error(id, waited);
                        Pooled::close_for(conn, CloseReason::HealthCheck);
                        return Err(self.hint_runtime(err));
                    }
                },
                Attempt::Again => {}
            }
            attempt = self.attempt(key, false, self.shared.clock.now());
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
                Handle::try_current().map_or(true, |h| h.id() != self.shared.runtime.id());
        }
        e
    }

    /// Pings `conn` before lending it: `Some(healthy)`, or `None` if the
    /// checkout deadline passed first.
    async fn health_check(&self, conn: &mut Pooled<M>, deadline: Option<Instant>) -> Option<bool> {
        let shared = &self.shared;
        // Abandoned mid-ping (the getter gave up), the connection is in an
        // unknown state: it is closed, not returned.
        Pooled::set_close(conn, Some(CloseReason::HealthCheck));
        let ping = tokio::time::timeout(
            shared.config.ping_timeout,
            Caught(shared.manager.ping(conn)),
        );
        let result = match deadline {
            None => ping.await,
            Some(deadline) => match tokio::time::timeout_at(deadline, ping).await {
                Ok(result) => result,
                Err(_) => {
                    self.health_checked(conn, false);
                    return None;
                }
            },
        };
        tracing::trace!("health check ping");
        let key = Pooled::key_id(conn);
        let ok = match result {
            Ok(Ok(Ok(()))) => !shared.is_broken(key, conn),
            Ok(Ok(Err(e))) => {
                tracing::debug!(error = %e, "health check failed");
                false
            }
            Ok(Err(panic)) => {
                panic.log("ping", &shared.key(key));
                false
            }
            Err(_) => {
                tracing::debug!("health check timed out");
                false
            }
        };
        self.health_checked(conn, ok);
        if ok {
            Pooled::set_close(conn, None);
        }
        Some(ok)
    }

    fn health_checked(&self, conn: &Pooled<M>, ok: bool) {
        let mut fx = Effects::new();
        self.shared.state.lock().health_checked(
            Pooled::key_id(conn),
            Pooled::shared_slot(conn),
            ok,
            &mut fx,
        );
        self.shared.apply(fx);
    }

    async fn wait(&self, id: WaiterId, deadline: Option<Instant>) -> Outcome<M> {
        let mut waiting = Waiting {
            shared: &self.shared,
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
        self.shared.state.lock().snapshot()
    }

    /// A snapshot of one key, or `None` if the pool tracks nothing for it
    /// (no connection, no waiter).
    pub fn key_state(&self, key: &M::Key) -> Option<KeyState> {
        self.shared.state.lock().key_snapshot(key)
    }

    /// The validated configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The manager.
    pub fn manager(&self) -> &M {
        &self.shared.manager
    }

    /// Whether [`close`](Pool::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.state.lock().is_closed()
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
                let (open, closing) = self.shared.state.lock().open_and_closing();
                Err(CloseTimeout { open, closing })
            }
        }
    }

    fn begin_close(&self) {
        let mut fx = Effects::new();
        {
            let mut state = self.shared.state.lock();
            if state.is_closed() {
                return;
            }
            state.close(&self.shared.config, &mut fx);
        }
        self.shared.apply(fx);
        tracing::debug!("pool closed");
    }

    async fn drained(&self) {
        loop {
            let notified = self.shared.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.state.lock().is_drained() {
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
    /// Lent, but the health-check policy wants it pinged first.
    Check(Pooled<M>),
    /// It was broken and is closed: try again.
    Again,
}

/// A getter waiting on its slot. Dropping it unserved cancels the wait.
struct Waiting<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    id: WaiterId,
    /// Set once the slot is gone (picked up or expired).
    done: bool,
}

impl<M: Manager> Waiting<'_, M> {
    fn expire(&mut self) -> Outcome<M> {
        self.done = true;
        let mut fx = Effects::new();
        let outcome = self
            .shared
            .state
            .lock()
            .expire(self.id, &self.shared.config, &mut fx);
        self.shared.apply(fx);
        outcome
    }
}

impl<M: Manager> Future for Waiting<'_, M> {
    type Output = Outcome<M>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<M>> {
        let outcome = self.shared.state.lock().poll_waiter(self.id, cx.waker());
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
            let mut fx = Effects::new();
            self.shared
                .state
                .lock()
                .cancel(self.id, false, &self.shared.config, &mut fx);
            self.shared.apply(fx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manager for layout checks: never dials.
    struct Nothing;

    #[async_trait::async_trait]
    impl Manager for Nothing {
        type Key = ();
        type Connection = u64;
        type Error = std::io::Error;

        async fn connect(&self, _: &()) -> Result<u64, std::io::Error> {
            unreachable!("layout only")
        }
    }

    /// The lock's byte and the single-key fast path's stack (the state's
    /// first field) are on one cache line, which starts at the lock.
    #[test]
    fn the_lock_and_the_recent_stack_share_one_line() {
        let config = Builder::new(Nothing).validate().expect("valid config");
        let lined = Lined(Mutex::new(State::<Nothing>::new(&config)));
        let lock = std::ptr::from_ref(&*lined).addr();
        let state = std::ptr::from_ref(&*lined.lock()).addr();
        assert_eq!(lock % 64, 0, "the lock starts a line");
        assert_eq!(state - lock, 8, "the state follows the lock's byte");
        assert!(
            state - lock + State::<Nothing>::RECENT_END <= 64,
            "the stack ends on the lock's line"
        );
    }
}
