//! The public pool: [`Pool`], its checkout and its close.
//!
//! A get that finds an idle connection, top to bottom: [`Pool::get_for`]
//! makes one attempt ([`Pool::attempt`]), which runs [`Transition::checkout`](crate::engine::Transition::checkout) under
//! the lock through [`PoolInner::transition`] (`engine/checkout.rs`: the
//! key's newest idle connection, lent there, and the features' point
//! `on_fewer_idle`; then `finish` in `engine/mod.rs`); back here, [`Pool::lent`] wraps it in its
//! [`Pooled`] guard and asks the manager whether it is broken. Anything else
//! (waiting, a health check, the `before_lend` hook, a retry) is
//! [`Pool::get_slowly`].

use std::collections::HashMap;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::clock::Tick;
use crate::config::Config;
use crate::contain;
use crate::engine::{Behind, Checkout, Checkup, Lent, Round, Site, WaiterId};
use crate::error::{ConnectError, Error};
use crate::features::State;
use crate::guard::Pooled;
use crate::hooks::Hooks;
use crate::inner::{PoolInner, dial};
use crate::maintenance::spawn_maintenance;
use crate::manager::Manager;
use crate::metrics::{Metrics, REJECTIONS};
use crate::reason::CloseReason;
use crate::reports::report_slow_checkout;
use crate::single::OneKey;
use crate::stats::{KeyState, PoolState, Waiting};
use crate::vetting::{self, Verdict};
use crate::wait;

/// A keyed async connection pool. Cheap to clone: clones share one pool.
///
/// Get a connection with [`get_for`](Pool::get_for) (or [`get`](Pool::get)
/// when `Key = ()`); it comes back to the pool when the returned [`Pooled`]
/// guard drops. See the crate docs for the model, and [`Builder`](crate::Builder) for the
/// configuration and its defaults.
///
/// Dropping the last handle closes the pool as [`close`](Pool::close) does,
/// without waiting: its idle connections get their [`Manager::close`] in
/// tasks on the runtime the pool was built in (if that runtime is still
/// running; if not, they are dropped), and connections still lent are
/// closed when their guards drop. Call `close` to wait for all of it.
pub struct Pool<M: Manager> {
    pub(crate) inner: Arc<PoolInner<M>>,
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
    pub(crate) async fn start(
        manager: M,
        config: Config,
        hooks: Hooks<M>,
        initial: Vec<(M::Key, usize)>,
        min_idle_for: Vec<(M::Key, usize)>,
    ) -> Result<Self, Error<M::Error>> {
        let wake = Arc::new(Notify::new());
        let inner = Arc::new(PoolInner::new(manager, config, hooks, Arc::clone(&wake)));
        spawn_maintenance(&inner, wake);
        let pool = Pool { inner };
        pool.prewarm(initial).await?;
        // After the pre-warm dials: a refill counts what they made.
        for (key, n) in &min_idle_for {
            pool.inner
                .transition(Tick::now(), |t| t.set_min_idle_for(key, *n));
        }
        pool.inner.transition(Tick::now(), |t| t.refill_all());
        pool.inner.transition(Tick::now(), |t| t.start_leak_scans());
        Ok(pool)
    }

    /// Dials the `initial` connections concurrently; on any failure closes
    /// the pool (and so the connections already made) and reports it.
    async fn prewarm(&self, initial: Vec<(M::Key, usize)>) -> Result<(), Error<M::Error>> {
        let mut dials = JoinSet::new();
        // A panicking dial leaves only its task id behind: map it to its
        // slot so that the slot is given back all the same.
        let mut slots = HashMap::new();
        for (key, n) in initial.into_iter().filter(|(_, n)| *n > 0) {
            // (Nothing can close the key before the pool is returned: its
            // epoch is the first.)
            let reserved = self.inner.state.lock().reserve_initial(&key, n);
            for slot in reserved {
                let (inner, key, id) = (Arc::clone(&self.inner), key.clone(), slot.key());
                let handle = dials.spawn(async move { dial(&inner, &key, id).await });
                slots.insert(handle.id(), slot);
            }
        }
        let mut failure = None;
        while let Some(joined) = dials.join_next_with_id().await {
            let (task, result) = joined.unwrap_or_else(|e| (e.id(), Err(ConnectError::Aborted)));
            let slot = slots.remove(&task).expect("each dial task has its slot");
            if let Err(e) = &result {
                failure.get_or_insert_with(|| e.clone());
            }
            self.inner
                .transition(Tick::now(), |t| t.dial_done(slot, None, 0, result));
        }
        if let Some(e) = failure {
            self.close().await;
            return Err(Error::Connect(e));
        }
        Ok(())
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
    ///
    /// The guard borrows this handle: [`Pooled::into_owned`] makes one that
    /// can move into a spawned task or outlive the handle.
    ///
    /// The call site is recorded for leak reports (see
    /// [`Builder::leak_detection_threshold`](crate::Builder::leak_detection_threshold)).
    #[track_caller]
    pub fn get_for<'p>(
        &'p self,
        key: &M::Key,
    ) -> impl Future<Output = Result<Pooled<'p, M>, Error<M::Error>>> + Send {
        self.get_at(key, Location::caller())
    }

    /// [`get_for`](Pool::get_for), called at `site`.
    async fn get_at(
        &self,
        key: &M::Key,
        site: &'static Location<'static>,
    ) -> Result<Pooled<'_, M>, Error<M::Error>> {
        let site = Some(site);
        let start = Tick::now();
        // The common case (an idle connection, no health check due) is
        // decided by a plain function: the state machine of the rest, with
        // its waits and pings, is entered only when needed.
        let got = match self.attempt(key, Round::First, start, site) {
            Attempt::Lent(conn) => Ok(conn),
            // Boxed: a wait, a health check or a retry costs far more than
            // the box, and inline its state would make every get's future
            // (and each copy a caller makes of it) several times larger.
            attempt => Box::pin(self.get_slowly(key, start, attempt, site)).await,
        };
        if Metrics::ON {
            let metrics = &self.inner.metrics;
            match &got {
                Ok(_) => {
                    let waited = Tick::now().saturating_duration_since(start);
                    metrics.waited(metrics.key(key), waited);
                }
                Err(Error::Timeout { .. }) => metrics.timeout(metrics.key(key)),
                Err(Error::TooManyWaiters { .. }) => metrics.count(REJECTIONS, metrics.key(key)),
                Err(_) => {}
            }
        }
        got
    }

    /// One checkout attempt at `now` for a `get` at `site`, under the
    /// lock: lent, failed, or what to do next. (Not inlined, and what it
    /// calls inlined into it: see BENCHMARKS.md, "Inlining and layout".)
    #[inline(never)]
    fn attempt(&self, key: &M::Key, round: Round, now: Tick, site: Site) -> Attempt<'_, M> {
        match self.inner.transition(now, |t| t.checkout(key, round, site)) {
            Err(e) => Attempt::Failed(e),
            Ok(Checkout::Wait(w, behind)) => Attempt::Wait(w, behind),
            Ok(Checkout::Lent(conn, check)) => self.lent(conn, check),
        }
    }

    /// A connection the checkout lent, `check` saying whether a health
    /// check is due: lent on, or what to do with it first.
    #[inline(always)]
    fn lent(&self, conn: Lent<M::Connection>, check: Checkup) -> Attempt<'_, M> {
        let id = conn.back.key();
        let mut conn = Pooled::new(&self.inner, conn);
        let health = self.inner.health(id, &mut conn);
        if let Some(reason) = health.close_reason() {
            Pooled::close_for(conn, reason, Some(health));
            Attempt::Again
        } else if check == Checkup::Due {
            Attempt::Check(conn)
        } else if self.inner.hooks.before_lend.is_some() {
            Attempt::Vet(conn)
        } else {
            Attempt::Lent(conn)
        }
    }

    /// The rest of [`get_for`](Pool::get_for) after its first attempt:
    /// waits, health checks and further attempts, within the deadline.
    async fn get_slowly<'a>(
        &'a self,
        key: &M::Key,
        start: Tick,
        mut attempt: Attempt<'a, M>,
        site: Site,
    ) -> Result<Pooled<'a, M>, Error<M::Error>> {
        let config = &self.inner.config;
        // Computed when first needed: most gets never wait or ping.
        let deadline = || config.set.checkout_timeout.map(|t| start + t);
        loop {
            let (mut conn, ping) = match attempt {
                Attempt::Lent(conn) => return Ok(conn),
                Attempt::Failed(e) => return Err(self.explain(e, key)),
                Attempt::Wait(w, behind) => {
                    let span = tracing::debug_span!(
                        "connpool.wait",
                        pool = %config.set.name,
                        ?key,
                        behind = behind.as_str(),
                        outcome = tracing::field::Empty,
                    );
                    let wait = wait::wait(&self.inner, w, start, deadline());
                    // Entering a span nobody records still asks `log`
                    // whether it is enabled, on every poll, where tracing's
                    // `log` feature is on (sqlx turns it on).
                    let outcome = if span.is_disabled() {
                        wait.await
                    } else {
                        wait.instrument(span.clone()).await
                    };
                    let outcome_name = wait::outcome_name::<M>(&outcome);
                    span.record("outcome", outcome_name);
                    let waited = Tick::now().saturating_duration_since(start);
                    let slow = config.set.acquire_slow_threshold;
                    if slow.is_some_and(|t| waited > t) {
                        let behind = match &outcome {
                            Err(Error::Backoff { .. }) => "backoff",
                            _ => behind.as_str(),
                        };
                        report_slow_checkout(key, waited, behind, outcome_name, config);
                    }
                    // Handed over by a borrower, a dial or a keepalive ping:
                    // it just worked.
                    let (_, conn) = outcome.map_err(|e| self.explain(e, key))?;
                    return Ok(Pooled::new(&self.inner, conn));
                }
                Attempt::Check(conn) => (conn, Checkup::Due),
                Attempt::Vet(conn) => (conn, Checkup::NotDue),
                Attempt::Again => {
                    attempt = self.attempt(key, Round::Retry(start), Tick::now(), site);
                    continue;
                }
            };
            let deadline = deadline().map(Tick::into_instant);
            // Boxed: a health check or a hook is rare beside its round
            // trip, and inline it would make every wait's box larger.
            match Box::pin(vetting::vet(&self.inner, &mut conn, key, ping, deadline)).await {
                Verdict::Lend => return Ok(conn),
                Verdict::Close(reason, health) => Pooled::close_for(conn, reason, health),
                Verdict::TimedOut => {
                    // The error first: closing the connection may make the
                    // pool forget its key.
                    let id = Pooled::key_id(&conn);
                    let waited = Tick::now().saturating_duration_since(start);
                    let err = self.inner.state.lock().timeout_error(id, waited);
                    Pooled::close_for(conn, CloseReason::HealthCheck, None);
                    return Err(self.explain(err, key));
                }
            }
            attempt = self.attempt(key, Round::Retry(start), Tick::now(), site);
        }
    }

    /// Adds to a getter's error what the core, under its lock, does not
    /// know: the key's name for a timeout or a backoff (the manager's
    /// code), and whether a getter that timed out runs outside the pool's
    /// runtime, where the dials it waited for run. Off the hot path: only
    /// failed gets ask.
    #[cold]
    fn explain(&self, mut e: Error<M::Error>, key: &M::Key) -> Error<M::Error> {
        let named = || {
            let named = contain::call(|| self.inner.manager.key_name(key));
            Some(named.unwrap_or_else(|_| format!("{key:?}")).into())
        };
        match &mut e {
            Error::Timeout {
                key: name,
                foreign_runtime,
                ..
            } => {
                *foreign_runtime = !self.inner.on_own_runtime();
                if !State::<M>::ONE_KEY {
                    *name = named();
                }
            }
            Error::Backoff { key: name, .. } if !State::<M>::ONE_KEY => *name = named(),
            _ => {}
        }
        e
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
    /// start again from zero the next time it is used. A closed pool
    /// tracks a key only while it has a connection. The pool-wide
    /// counters of [`state`](Pool::state) never restart.
    pub fn key_state(&self, key: &M::Key) -> Option<KeyState> {
        self.inner.state.lock().key_snapshot(key)
    }

    /// Counts a call of `key` that ran out of its own deadline (one the
    /// caller set, beside the pool's `checkout_timeout`) while it was
    /// `waiting`: [`Waiting::Connection`] in [`Counters::timeouts`] and the
    /// `db.client.connection.timeouts` series, as a get past its checkout
    /// deadline; [`Waiting::Reply`] in [`Counters::reply_timeouts`] and
    /// `db.client.operation.timeouts`. connpool's services count their
    /// deadlines so; a service of a user's own calls it where it gives up.
    ///
    /// [`Counters::timeouts`]: crate::Counters::timeouts
    /// [`Counters::reply_timeouts`]: crate::Counters::reply_timeouts
    #[cold]
    pub fn count_timeout(&self, key: &M::Key, waiting: Waiting) {
        self.inner.state.lock().count_timeout(key, waiting);
        let metrics = &self.inner.metrics;
        metrics.call_timeout(metrics.key(key), waiting);
    }

    /// The manager.
    pub fn manager(&self) -> &M {
        &self.inner.manager
    }

    /// Whether [`close`](Pool::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.state.lock().closed
    }

    /// Borrows a connection from a pool of one key (`Key = ()`: a
    /// manager's `single()`, or [`Single`](crate::Single)):
    /// [`get_for`](Pool::get_for)`(&())`. A keyed pool borrows with
    /// `get_for(&key)`.
    ///
    /// The guard borrows this handle; for a task of its own, make it
    /// owned with [`Pooled::into_owned`]:
    ///
    /// ```
    /// # use connpool::{Manager, Pool, Pooled, async_trait};
    /// # struct Db;
    /// # #[async_trait]
    /// # impl Manager for Db {
    /// #     type Key = ();
    /// #     type Connection = u32;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self, _: &()) -> Result<u32, std::io::Error> { Ok(7) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = Pool::builder(Db).build().await?;
    /// let conn = Pooled::into_owned(pool.get().await?);
    /// tokio::spawn(async move {
    ///     assert_eq!(*conn, 7); // given back when the task drops it
    /// })
    /// .await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// (The future is `get_for`'s own: no second state machine around it.)
    #[track_caller]
    pub fn get(&self) -> impl Future<Output = Result<Pooled<'_, M>, Error<M::Error>>> + Send + '_
    where
        M::Key: OneKey,
    {
        self.get_for(M::Key::key())
    }
}

/// What one checkout attempt of [`Pool::get_for`] came to.
enum Attempt<'a, M: Manager> {
    /// Lent (no check due).
    Lent(Pooled<'a, M>),
    /// Failed.
    Failed(Error<M::Error>),
    /// No idle connection: wait on this slot, behind this.
    Wait(WaiterId, Behind),
    /// Lent, but the health-check policy wants it pinged first (then the
    /// `before_lend` hook runs, if set). A variant of its own, not a flag
    /// beside [`Vet`](Attempt::Vet)'s: the flag would make every waiting
    /// get's boxed future larger (BENCHMARKS.md, "Memory").
    Check(Pooled<'a, M>),
    /// Lent, but the `before_lend` hook runs first.
    Vet(Pooled<'a, M>),
    /// It was broken and is closed: try again.
    Again,
}

impl Behind {
    /// The getter's report of a long wait names what it waited behind so.
    fn as_str(self) -> &'static str {
        match self {
            Behind::AllLent => "all_lent",
            Behind::Dialing => "dialing",
            Behind::PoolFull => "pool_full",
        }
    }
}
