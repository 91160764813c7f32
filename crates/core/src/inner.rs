//! [`PoolInner`]: what every handle, guard and task of one pool shares,
//! and the one way to change its state: lock, transition, unlock, then
//! carry out what the transition decided ([`PoolInner::transition`]).
//!
//! Imports run one way, from the public face down (`pool` → `inner` →
//! `features` → `engine`). Carrying out a transition spawns dials, pings,
//! recycles and closes (the child module `tasks`), and each of those tasks
//! reports its result back through [`PoolInner::transition`]: a task's
//! result is one more transition.

mod tasks;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::clock::Tick;
use crate::config::Config;
use crate::contain;
use crate::engine::{Back, ConnId, KeyId, Lent, Slot};
use crate::features::{Act, Action, Effects, Note, State, Transition};
use crate::hooks::Hooks;
use crate::manager::{Health, Manager};
use crate::metrics::{BACKOFFS, Metrics};
use crate::reason::CloseReason;
use crate::reports::{report_backoff, report_leak, report_recovery};
use crate::sync::{Mutex, MutexGuard};
pub(crate) use tasks::dial;
use tasks::{spawn_close, spawn_dial, spawn_ping, spawn_recycle};

/// What every handle, guard and task of one pool shares.
pub(crate) struct PoolInner<M: Manager> {
    pub(crate) manager: M,
    pub(crate) config: Config,
    /// The user's hooks, and whether returns are recycled.
    pub(crate) hooks: Hooks<M>,
    /// The one lock: see the `engine` module for what it guards. Its byte
    /// alone on its line, the state from the next one on.
    pub(crate) state: Lined<Mutex<State<M>>>,
    /// Notified when a closed pool has nothing open or closing left, and,
    /// while [`settle_waiters`](PoolInner::settle_waiters) is not zero, when
    /// a task ends leaving nothing dialing, pinging, recycling or closing.
    pub(crate) quiet: Notify,
    /// Callers of [`Pool::settled`](crate::Pool::settled) waiting: only
    /// then do the tasks' ends look at the state again.
    pub(crate) settle_waiters: AtomicUsize,
    /// Where dials, pings, closes and maintenance run (the runtime the pool
    /// was built in).
    pub(crate) runtime: Handle,
    /// Wakes the maintenance task: an earlier deadline, a close, or this
    /// state being dropped.
    pub(crate) maintenance: Arc<Notify>,
    /// Live [`Pool`](crate::Pool) handles: the last one dropped closes the pool.
    pub(crate) handles: AtomicUsize,
    /// The pool's metrics (nothing without the `metrics` feature).
    pub(crate) metrics: Metrics,
}

/// A value that starts a cache line and ends one (the lines next to it are
/// someone else's): see BENCHMARKS.md, "Inlining and layout".
#[repr(align(64))]
pub(crate) struct Lined<T>(T);

impl<T> std::ops::Deref for Lined<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<M: Manager> Drop for PoolInner<M> {
    fn drop(&mut self) {
        // The maintenance task holds the pool weakly: let it see it is gone.
        self.maintenance.notify_one();
    }
}

impl<M: Manager> PoolInner<M> {
    /// The shared part of a pool built now, on the current runtime, with
    /// one [`Pool`](crate::Pool) handle; `maintenance` wakes its
    /// maintenance task.
    pub(crate) fn new(
        manager: M,
        config: Config,
        hooks: Hooks<M>,
        maintenance: Arc<Notify>,
    ) -> Self {
        PoolInner {
            metrics: Metrics::new(&config),
            state: Lined(Mutex::new(State::new(&config))),
            manager,
            config,
            hooks,
            quiet: Notify::new(),
            settle_waiters: AtomicUsize::new(0),
            runtime: Handle::current(),
            maintenance,
            handles: AtomicUsize::new(1),
        }
    }

    /// Runs one transition at `now` under the lock, then carries out what
    /// it decided, outside the lock.
    #[inline]
    pub(crate) fn transition<R>(
        self: &Arc<Self>,
        now: Tick,
        step: impl FnOnce(Transition<'_, M>) -> R,
    ) -> R {
        self.transition_in(self.state.lock(), now, step)
    }

    /// [`transition`](PoolInner::transition) under a lock the caller
    /// already holds (having looked at the state first).
    #[inline]
    pub(crate) fn transition_in<R>(
        self: &Arc<Self>,
        mut state: MutexGuard<'_, State<M>>,
        now: Tick,
        step: impl FnOnce(Transition<'_, M>) -> R,
    ) -> R {
        let mut fx = Effects::NONE;
        let result = step(state.begin(now, &self.config, &mut fx));
        let gauges = Metrics::ON.then(|| state.gauges());
        drop(state);
        if let Some(gauges) = gauges {
            self.metrics.counts(gauges);
        }
        self.apply(fx);
        result
    }

    /// Carries out what a transition decided, outside the lock.
    #[inline]
    pub(crate) fn apply(self: &Arc<Self>, fx: Effects<M>) {
        // The common checkout and return decide nothing: don't move the
        // effects into the general path, nor run their drop glue (an
        // effects value that never allocated owns nothing).
        if !fx.is_empty() {
            self.apply_all(fx);
        } else if fx.owns_nothing() {
            std::mem::forget(fx);
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
                DEFERRED.with_borrow_mut(|d| d.push_back(Box::new(move || shared.apply_now(fx))));
            }
        }
    }

    fn apply_now(self: &Arc<Self>, mut fx: Effects<M>) {
        let (rearm, drained) = (fx.rearm(), fx.drained());
        if let Some(waker) = fx.wake.take() {
            waker.wake();
        }
        for action in std::mem::take(&mut fx.actions) {
            match action {
                Action::Wake(waker) => waker.wake(),
                Action::Dial(order) => spawn_dial(self, order),
                Action::Close(conn, reason) => spawn_close(self, conn, reason),
                Action::Ext(act) => self.apply_act(act),
            }
        }
        if rearm {
            self.maintenance.notify_one();
        }
        if drained {
            self.quiet.notify_waiters();
        }
    }

    /// Carries out what a feature decided.
    fn apply_act(self: &Arc<Self>, act: Act<M>) {
        match act {
            Act::Ping(slot, conn, epoch) => spawn_ping(self, slot, conn, epoch),
            Act::Recycle(slot, key, conn, epoch) => spawn_recycle(self, slot, key, conn, epoch),
            Act::Leak(key, site, held) => report_leak(&key, site, held, &self.config),
            Act::Backoff(key, error, delay, failures) => {
                report_backoff(&key, &error, delay, failures, &self.config);
                self.metrics.count(BACKOFFS, self.metrics.key(&key));
            }
            Act::Recovered(key, down_for) => report_recovery(&key, down_for, &self.config),
        }
    }

    /// After a task's end: wakes [`Pool::settled`](crate::Pool::settled)
    /// callers if the pool is now settled (a look at the state only while
    /// someone waits for it).
    pub(crate) fn task_ended(&self) {
        // SeqCst, with the increment in `settled`: a caller that counted
        // itself after this load looks at the state after this task's
        // transition, and sees it settled itself.
        if self.settle_waiters.load(Ordering::SeqCst) > 0 && self.state.lock().is_settled() {
            self.quiet.notify_waiters();
        }
    }

    /// Whether the caller runs on the runtime the pool's tasks (dials,
    /// maintenance) run on.
    pub(crate) fn on_own_runtime(&self) -> bool {
        Handle::try_current().is_ok_and(|h| h.id() == self.runtime.id())
    }

    /// The key `id` names, for a log line (takes the lock).
    pub(crate) fn key(&self, id: KeyId) -> M::Key {
        self.state.lock().keys.get(id).key.clone()
    }

    /// [`Manager::health`] of a connection of `key`; a panic says broken.
    pub(crate) fn health(&self, key: KeyId, conn: &mut M::Connection) -> Health {
        contain::call(|| self.manager.health(conn)).unwrap_or_else(|panic| {
            panic.log("Manager::health", &self.key(key));
            Health::Broken
        })
    }

    /// Logs that `key` was cleared: its server changed.
    #[cold]
    pub(crate) fn log_cleared(&self, key: KeyId) {
        tracing::warn!(
            pool = %self.config.set.name,
            key = ?self.key(key),
            "a connection found its server changed: the key's connections are closed"
        );
    }

    /// Gives back what a borrower was lent; `close` closes it for that
    /// reason instead. [`Manager::health`] is asked first, before the lock
    /// is taken, never under it. (Its one other way back:
    /// [`close_checked`](PoolInner::close_checked).)
    ///
    /// Inlined into the guard's `Drop` (see BENCHMARKS.md, "Inlining and
    /// layout").
    #[inline]
    pub(crate) fn give_back(
        self: &Arc<Self>,
        lent: Lent<M::Connection>,
        close: Option<CloseReason>,
        refused: bool,
    ) {
        match lent.back {
            Back::Own(slot, cid, ()) => self.give_back_own(slot, cid, lent.conn, close, refused),
            Back::Handle(key, slot) => self.give_back_handle(key, slot, lent.conn, close),
        }
    }

    /// Closes what a borrower was lent for `reason`, `health` being what
    /// [`Manager::health`] said of it just before it was lent: no user
    /// code runs, and its use is not measured.
    #[cold]
    pub(crate) fn close_checked(
        self: &Arc<Self>,
        lent: Lent<M::Connection>,
        reason: CloseReason,
        health: Health,
    ) {
        let key = lent.back.key();
        let back = lent.back.with(lent.conn);
        let state = self.state.lock();
        let note = Note::new(health, false);
        self.give_back_in(state, Tick::now(), key, back, Some(reason), note);
    }

    /// Gives `back` (of `key`) under `state` at `now`, closing it if `close`
    /// says so; a connection whose server changed (as `note` says) clears
    /// its key, and one refused counts as a failed dial.
    #[inline]
    fn give_back_in(
        self: &Arc<Self>,
        state: MutexGuard<'_, State<M>>,
        now: Tick,
        key: KeyId,
        back: Back<M::Connection>,
        close: Option<CloseReason>,
        note: Note,
    ) {
        if self.transition_in(state, now, |t| t.give_back(back, close, note)) {
            self.log_cleared(key);
        }
    }

    /// Why a connection of `key` given back closes (if it does), and its
    /// health: asked unless it closes for a reason of its own (one closing
    /// as broken or after a failed health check is asked too: it may have
    /// found its server changed).
    #[inline]
    fn verdict(
        &self,
        key: KeyId,
        conn: &mut M::Connection,
        close: Option<CloseReason>,
    ) -> (Option<CloseReason>, Health) {
        let health = match close {
            None | Some(CloseReason::Broken | CloseReason::HealthCheck) => self.health(key, conn),
            Some(_) => Health::Ready,
        };
        (close.or(health.close_reason()), health)
    }

    /// [`give_back`](PoolInner::give_back) of a connection lent
    /// exclusively.
    #[inline]
    fn give_back_own(
        self: &Arc<Self>,
        lent: Slot,
        cid: ConnId,
        mut conn: M::Connection,
        close: Option<CloseReason>,
        refused: bool,
    ) {
        let key = lent.key();
        let (close, health) = self.verdict(key, &mut conn, close);
        // With an `after_return` hook every return is recycled.
        let recycle = close.is_none()
            && (health == Health::NeedsRecycle || self.hooks.after_return.is_some());
        let now = Tick::now();
        let state = self.state.lock();
        let used = Metrics::ON.then(|| {
            let took = now.saturating_duration_since(state.lent_at(cid));
            (
                took,
                self.metrics
                    .by_key()
                    .then(|| state.keys.get(key).key.clone()),
            )
        });
        if recycle {
            self.give_back_for_recycling(state, lent, cid, conn, now);
        } else {
            let back = Back::Own(lent, cid, conn);
            let note = Note::new(health, refused);
            self.give_back_in(state, now, key, back, close, note);
        }
        if let Some((took, key)) = used {
            self.metrics.used_for(key.as_ref(), took);
        }
    }

    /// [`give_back`](PoolInner::give_back) of a connection to recycle,
    /// under the pool's lock: the transition takes the connection out to be recycled.
    #[cold]
    #[inline(never)]
    fn give_back_for_recycling(
        self: &Arc<Self>,
        state: MutexGuard<'_, State<M>>,
        lent: Slot,
        cid: ConnId,
        conn: M::Connection,
        now: Tick,
    ) {
        self.transition_in(state, now, |t| t.give_back_for_recycling(lent, cid, conn));
    }

    /// [`give_back`](PoolInner::give_back) of a borrower's handle to the
    /// shared connection in `slot`.
    #[inline(never)]
    fn give_back_handle(
        self: &Arc<Self>,
        key: KeyId,
        slot: usize,
        mut handle: M::Connection,
        close: Option<CloseReason>,
    ) {
        // The handle shares the connection's state: it tells whether the
        // connection is broken, and it is dropped before the lock is taken.
        let (mut close, health) = self.verdict(key, &mut handle, close);
        // The peer may have changed its limit since the dial.
        let max_borrowers = self.config.set.max_borrowers;
        let limit = contain::call(|| self.manager.lending(&handle).clamped(max_borrowers).0)
            .unwrap_or_else(|panic| {
                panic.log("Manager::lending", &self.key(key));
                close = Some(CloseReason::Broken);
                0
            });
        let changed = health == Health::ServerChanged;
        drop(handle);
        let mut state = self.state.lock();
        if limit > 0 {
            state.relimit(key, slot, limit);
        }
        if close.is_none() && !changed && state.give_back_handle_quietly(slot) {
            return;
        }
        let back = Back::Handle(key, slot);
        let note = Note::new(health, false);
        self.give_back_in(state, Tick::now(), key, back, close, note);
    }

    pub(crate) fn detach(self: &Arc<Self>, lent: Back<()>) {
        self.transition(Tick::now(), |t| t.detach(lent));
    }
}

thread_local! {
    /// Whether an application of effects runs on this thread.
    static APPLYING: Cell<bool> = const { Cell::new(false) };
    /// Applications that re-entered it, to run after it.
    static DEFERRED: RefCell<VecDeque<Box<dyn FnOnce()>>> = const { RefCell::new(VecDeque::new()) };
}

/// The outermost application of effects on this thread: while it lives,
/// nested applications are deferred to it (see [`PoolInner::apply_all`]).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::Builder;
    use crate::manager::test_support::NeverDials as Nothing;

    /// The lock's byte starts a cache line and the state the next one: a
    /// thread spinning on the lock does not pull the state's first line
    /// away from the thread that holds it.
    #[test]
    fn the_lock_and_the_state_have_lines_of_their_own() {
        let config = Builder::new(Nothing).validate().expect("valid config");
        let lock = Lined(Mutex::new(State::<Nothing>::new(&config)));
        let at = std::ptr::from_ref(&*lock).addr();
        assert_eq!(at % 64, 0, "the lock starts a line");
        let state = std::ptr::from_ref(&*lock.lock()).addr();
        assert_eq!(state - at, 64, "the state the next");
    }
}
