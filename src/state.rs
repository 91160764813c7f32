//! The pool's state under its one lock, and every transition of it.
//!
//! # Implementation details
//!
//! **One lock.** Everything the pool knows lives in [`State`], behind one
//! `parking_lot::Mutex` in the shared pool: the key registry, the idle set, the
//! waiter slots, the global dial queue, the counts and the counters. Every
//! transition below runs with the lock held, never awaits, never calls the
//! manager and never logs; what it decides to *do* (wake a getter, start a
//! dial, close a connection) it records in [`Effects`], which the caller
//! carries out after releasing the lock. So a transition is atomic, the lock
//! is held for a few hundred nanoseconds at most, and user code (the manager,
//! a waker) never runs under it.
//!
//! **Counts.** Per key and in total, `open = idle + lent + dialing`.
//! `open` is what the caps limit; a connection stops counting the moment the
//! pool decides to close it (its `Manager::close` then runs in a task,
//! counted in `closing` until it ends). A connection handed to a waiter counts
//! as lent from the hand-off on, before the waiter has picked it up.
//! `waiting` counts waiters that have not been served.
//!
//! **Getting** ([`State::checkout`]): take the newest idle connection of the
//! key; otherwise open a waiter slot, queue it on the key's `idle_waiters`
//! and find a dial for it: start one if the key and the pool are under their
//! caps; at the pool cap, evict the least recently used idle connection of
//! another key to make room; otherwise queue it on the key's `dial_waiters`
//! (key at its cap) or the pool's global dial queue (pool at its cap). The
//! waiter is then served by whichever comes first: a connection of its key
//! coming free, or its dial.
//!
//! **Hand-off** ([`State::place`]): a connection coming free (returned by a
//! borrower, or freshly dialed) goes, in this order, to the first live waiter
//! of its key; else, if a getter of another key waits at the pool's cap, it is
//! closed so that getter can dial; else to the idle list, closing it when the
//! key's idle cap is full and evicting the pool's LRU idle connection when the
//! global idle cap is. Every connection that comes free passes through this one
//! function.
//!
//! **Slots** ([`State::release_slot`]): when a connection of a key closes, its
//! slot goes to the first live waiter of the key's dial queue, else to the
//! first live waiter of the global dial queue; a dial starts for it.
//!
//! **Dials** ([`State::dial_done`]): a dial runs in a task of its own,
//! started *for* one waiter. Success: the connection serves that waiter if it
//! still waits, else goes through the hand-off. Failure: the error is recorded
//! as the key's last dial error, goes to that waiter if it still waits, and
//! the slot is released (so the next dial waiter gets a dial).
//!
//! **Cancellation** ([`State::cancel`]): a getter that gives up removes its
//! slot. If nothing had reached it, its queue entries turn stale (they are
//! skipped, and compacted away in bulk); a dial started for it carries on and
//! its connection serves the next waiter or goes idle. If a connection had
//! reached it in the meantime, that connection goes through the hand-off again:
//! the next waiter gets it. Nothing is counted twice or lost.
//!
//! **Close** ([`State::close`]): serves every waiter with `Closed`, closes
//! every idle connection; connections lent or being dialed are closed when
//! they come back.

use std::task::Waker;

use tokio::time::Instant;

use crate::config::Config;
use crate::error::{ConnectError, Error};
use crate::idle::IdleSet;
use crate::keys::{KeyId, Keys};
use crate::manager::Manager;
use crate::queue::WaitQueue;
use crate::stats::{CloseReason, Counters, KeyState, PoolState};
use crate::waiter::{WaiterId, Waiters};

/// What a waiter is served with.
pub(crate) type Outcome<M> =
    Result<(KeyId, <M as Manager>::Connection), Error<<M as Manager>::Error>>;

/// A dial to start once the lock is released.
pub(crate) struct DialOrder<K> {
    pub(crate) key: K,
    pub(crate) key_id: KeyId,
    /// The waiter the dial was started for, if any.
    pub(crate) waiter: Option<WaiterId>,
}

/// What a transition decided to do outside the lock.
pub(crate) struct Effects<M: Manager> {
    /// The common case needs one wake-up; keeping it out of the `Vec` keeps
    /// the hand-off free of allocation.
    pub(crate) wake: Option<Waker>,
    pub(crate) wake_more: Vec<Waker>,
    pub(crate) dials: Vec<DialOrder<M::Key>>,
    pub(crate) closes: Vec<(M::Connection, CloseReason)>,
    /// The pool is closed and nothing is open or closing any more.
    pub(crate) drained: bool,
}

impl<M: Manager> Effects<M> {
    pub(crate) fn new() -> Self {
        Self {
            wake: None,
            wake_more: Vec::new(),
            dials: Vec::new(),
            closes: Vec::new(),
            drained: false,
        }
    }

    fn wake(&mut self, waker: Waker) {
        match self.wake {
            None => self.wake = Some(waker),
            Some(_) => self.wake_more.push(waker),
        }
    }
}

/// The result of a checkout attempt.
pub(crate) enum Checkout<M: Manager> {
    /// An idle connection, now lent.
    Idle(KeyId, M::Connection),
    /// No idle connection: wait on this slot (until `deadline`, if any).
    Wait(WaiterId, Option<Instant>),
}

/// Everything the pool knows; see the module docs for the invariants.
pub(crate) struct State<M: Manager> {
    keys: Keys<M::Key, M::Error>,
    idle: IdleSet<M::Connection>,
    waiters: Waiters<Outcome<M>>,
    /// Waiters whose key is under its cap but that found the pool at its cap.
    global_dial_waiters: WaitQueue<WaiterId>,
    open: usize,
    lent: usize,
    dialing: usize,
    waiting: usize,
    closing: usize,
    closed: bool,
    counters: Counters,
}

impl<M: Manager> State<M> {
    pub(crate) fn new() -> Self {
        Self {
            keys: Keys::default(),
            idle: IdleSet::default(),
            waiters: Waiters::default(),
            global_dial_waiters: WaitQueue::default(),
            open: 0,
            lent: 0,
            dialing: 0,
            waiting: 0,
            closing: 0,
            closed: false,
            counters: Counters::default(),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    fn check(&self) {
        debug_assert_eq!(self.open, self.idle.len() + self.lent + self.dialing);
    }

    /// A get for `key`: an idle connection, or a waiter slot (see module docs).
    /// `count` is false when the caller retries after a broken idle connection.
    pub(crate) fn checkout(
        &mut self,
        key: &M::Key,
        count: bool,
        config: &Config,
        fx: &mut Effects<M>,
    ) -> Result<Checkout<M>, Error<M::Error>> {
        if self.closed {
            return Err(Error::Closed);
        }
        let id = self.keys.id_or_insert(key);
        if count {
            self.counters.gets += 1;
            self.keys.get_mut(id).counters.gets += 1;
        }
        if let Some(conn) = self.idle.pop_newest(id) {
            self.keys.get_mut(id).lent += 1;
            self.lent += 1;
            return Ok(Checkout::Idle(id, conn));
        }
        if let Some(max_waiters) = config.max_waiters
            && self.waiting >= max_waiters
        {
            self.counters.rejections += 1;
            self.keys.get_mut(id).counters.rejections += 1;
            self.keys.forget_if_unused(id);
            return Err(Error::TooManyWaiters { max_waiters });
        }
        let now = Instant::now();
        let w = self.waiters.insert(id, now);
        self.waiting += 1;
        self.counters.gets_waited += 1;
        let entry = self.keys.get_mut(id);
        entry.waiting += 1;
        entry.counters.gets_waited += 1;
        entry.tidy_queues(|w| self.waiters.is_live(w));
        entry.idle_waiters.push(w);
        self.find_dial(id, w, config, fx);
        self.check();
        Ok(Checkout::Wait(w, config.checkout_timeout.map(|t| now + t)))
    }

    /// Starts a dial for the new waiter `w`, or queues it for one.
    fn find_dial(&mut self, id: KeyId, w: WaiterId, config: &Config, fx: &mut Effects<M>) {
        let entry = self.keys.get_mut(id);
        if entry.open >= config.max_open_per_key {
            entry.dial_waiters.push(w);
            return;
        }
        if self.open >= config.max_open {
            // The pool is full but maybe not busy: an idle connection of
            // another key is worth less than a getter waiting now.
            let Some((other, conn)) = self.idle.pop_lru() else {
                self.tidy_global_queue();
                self.global_dial_waiters.push(w);
                return;
            };
            self.close_without_refill(other, conn, CloseReason::Evicted, fx);
        }
        self.start_dial(id, Some(w), fx);
    }

    fn start_dial(&mut self, id: KeyId, waiter: Option<WaiterId>, fx: &mut Effects<M>) {
        let entry = self.keys.get_mut(id);
        entry.open += 1;
        entry.dialing += 1;
        entry.counters.dials += 1;
        self.open += 1;
        self.dialing += 1;
        self.counters.dials += 1;
        fx.dials.push(DialOrder {
            key: entry.key.clone(),
            key_id: id,
            waiter,
        });
    }

    /// Reserves `n` slots of `key` for pre-warm dials (already validated
    /// against the caps) and returns its id.
    pub(crate) fn reserve_initial(&mut self, key: &M::Key, n: usize) -> KeyId {
        let id = self.keys.id_or_insert(key);
        let entry = self.keys.get_mut(id);
        entry.open += n;
        entry.dialing += n;
        entry.counters.dials += n as u64;
        self.open += n;
        self.dialing += n;
        self.counters.dials += n as u64;
        id
    }

    /// Serves the live waiter `w` and accounts for it.
    fn serve(&mut self, w: WaiterId, outcome: Outcome<M>, fx: &mut Effects<M>) {
        let id = self
            .waiters
            .live(w)
            .expect("serve: waiter must be live")
            .key;
        let entry = self.keys.get_mut(id);
        entry.waiting -= 1;
        self.waiting -= 1;
        if outcome.is_ok() {
            entry.lent += 1;
            self.lent += 1;
        }
        if let Some(waker) = self.waiters.serve(w, outcome) {
            fx.wake(waker);
        }
    }

    /// A connection of `id` that came free (returned, or dialed for nobody in
    /// particular) and is not counted as lent or dialing: the hand-off.
    fn place(&mut self, id: KeyId, conn: M::Connection, config: &Config, fx: &mut Effects<M>) {
        if self.closed {
            return self.close_conn(id, conn, CloseReason::PoolClosed, config, fx);
        }
        let entry = self.keys.get_mut(id);
        if entry.waiting > 0
            && let Some(w) = entry.idle_waiters.pop_live(|w| self.waiters.is_live(w))
        {
            return self.serve(w, Ok((id, conn)), fx);
        }
        // A getter of another key may wait at the pool cap: hand it this slot.
        if self.waiting > self.keys.get(id).waiting
            && self.open >= config.max_open
            && let Some((w, other)) = self.pop_global_waiter(config)
        {
            self.close_without_refill(id, conn, CloseReason::Evicted, fx);
            return self.start_dial(other, Some(w), fx);
        }
        if self.idle.len_of(id) >= config.max_idle_per_key {
            return self.close_conn(id, conn, CloseReason::IdleCapacity, config, fx);
        }
        if self.idle.len() >= config.max_idle
            && let Some((other, old)) = self.idle.pop_lru()
        {
            self.close_conn(other, old, CloseReason::Evicted, config, fx);
        }
        self.idle.push(id, conn);
    }

    /// The first live waiter of the global dial queue whose key is under its
    /// cap; waiters whose key reached its cap meanwhile move to their key's
    /// dial queue.
    fn pop_global_waiter(&mut self, config: &Config) -> Option<(WaiterId, KeyId)> {
        while let Some(w) = self
            .global_dial_waiters
            .pop_live(|w| self.waiters.is_live(w))
        {
            let key = self.waiters.live(w).expect("live").key;
            let entry = self.keys.get_mut(key);
            if entry.open < config.max_open_per_key {
                return Some((w, key));
            }
            entry.dial_waiters.push(w);
        }
        None
    }

    fn tidy_global_queue(&mut self) {
        if self.waiting == 0 {
            self.global_dial_waiters.clear();
        } else if self.global_dial_waiters.len() > 2 * self.waiting + 16 {
            self.global_dial_waiters
                .compact(|w| self.waiters.is_live(w));
        }
    }

    /// A borrower returns a connection of `id` (`broken`: closes it instead).
    pub(crate) fn give_back(
        &mut self,
        id: KeyId,
        conn: M::Connection,
        broken: bool,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        self.keys.get_mut(id).lent -= 1;
        self.lent -= 1;
        if broken {
            self.close_conn(id, conn, CloseReason::Broken, config, fx);
        } else {
            self.place(id, conn, config, fx);
        }
        self.check();
    }

    /// A borrower takes its connection out of the pool for good.
    pub(crate) fn detach(&mut self, id: KeyId, config: &Config, fx: &mut Effects<M>) {
        self.keys.get_mut(id).lent -= 1;
        self.lent -= 1;
        self.release_slot(id, config, fx);
        self.check();
    }

    /// Closes `conn` of `id` and gives its slot to a waiter.
    fn close_conn(
        &mut self,
        id: KeyId,
        conn: M::Connection,
        reason: CloseReason,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        self.count_close(id, reason);
        self.closing += 1;
        fx.closes.push((conn, reason));
        self.release_slot(id, config, fx);
    }

    /// Closes `conn` of `id` whose slot the caller reuses at once.
    fn close_without_refill(
        &mut self,
        id: KeyId,
        conn: M::Connection,
        reason: CloseReason,
        fx: &mut Effects<M>,
    ) {
        self.count_close(id, reason);
        self.closing += 1;
        fx.closes.push((conn, reason));
        self.keys.get_mut(id).open -= 1;
        self.open -= 1;
        self.keys.forget_if_unused(id);
    }

    fn count_close(&mut self, id: KeyId, reason: CloseReason) {
        self.counters.count_close(reason);
        self.keys.get_mut(id).counters.count_close(reason);
    }

    /// A connection of `id` stopped counting: hand its slot to a dial waiter.
    fn release_slot(&mut self, id: KeyId, config: &Config, fx: &mut Effects<M>) {
        let entry = self.keys.get_mut(id);
        entry.open -= 1;
        self.open -= 1;
        if !self.closed {
            let entry = self.keys.get_mut(id);
            let waiter = if entry.waiting > 0 && entry.open < config.max_open_per_key {
                entry.dial_waiters.pop_live(|w| self.waiters.is_live(w))
            } else {
                None
            };
            match waiter {
                Some(w) => self.start_dial(id, Some(w), fx),
                None => {
                    if let Some((w, other)) = self.pop_global_waiter(config) {
                        self.start_dial(other, Some(w), fx);
                    }
                }
            }
        }
        self.keys.forget_if_unused(id);
        fx.drained = self.is_drained();
    }

    /// A dial of `id`, started for `waiter`, finished.
    pub(crate) fn dial_done(
        &mut self,
        id: KeyId,
        waiter: Option<WaiterId>,
        result: Result<M::Connection, ConnectError<M::Error>>,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        let entry = self.keys.get_mut(id);
        entry.dialing -= 1;
        self.dialing -= 1;
        match result {
            Ok(conn) => {
                entry.last_error = None;
                match waiter.filter(|&w| self.waiters.is_live(w) && !self.closed) {
                    Some(w) => self.serve(w, Ok((id, conn)), fx),
                    None => self.place(id, conn, config, fx),
                }
            }
            Err(err) => {
                entry.last_error = Some(err.clone());
                entry.counters.dial_failures += 1;
                self.counters.dial_failures += 1;
                if let Some(w) = waiter.filter(|&w| self.waiters.is_live(w)) {
                    self.serve(w, Err(Error::Connect(err)), fx);
                }
                self.release_slot(id, config, fx);
            }
        }
        self.check();
    }

    /// The outcome of waiter `w` if it was served (removing its slot);
    /// otherwise registers `waker`.
    pub(crate) fn poll_waiter(&mut self, w: WaiterId, waker: &Waker) -> Option<Outcome<M>> {
        let (waiter, outcome) = self.waiters.poll(w, waker)?;
        // A waiter served with a connection keeps its key alive (the
        // connection is lent); one served with an error does not.
        self.count_wait(waiter.key, waiter.since, outcome.is_ok());
        Some(outcome)
    }

    fn count_wait(&mut self, id: KeyId, since: Instant, key_alive: bool) {
        let waited = Instant::now().saturating_duration_since(since);
        self.counters.wait_time += waited;
        if key_alive {
            self.keys.get_mut(id).counters.wait_time += waited;
        }
    }

    /// Waiter `w` gives up. Returns the outcome that had reached it, if any
    /// and `take_outcome`; otherwise passes that outcome on (see module docs).
    pub(crate) fn cancel(
        &mut self,
        w: WaiterId,
        take_outcome: bool,
        config: &Config,
        fx: &mut Effects<M>,
    ) -> Option<Outcome<M>> {
        let (waiter, outcome) = self.waiters.remove(w);
        let id = waiter.key;
        self.count_wait(id, waiter.since, !matches!(outcome, Some(Err(_))));
        let result = match outcome {
            None => {
                let entry = self.keys.get_mut(id);
                entry.waiting -= 1;
                self.waiting -= 1;
                entry.tidy_queues(|w| self.waiters.is_live(w));
                self.tidy_global_queue();
                self.keys.forget_if_unused(id);
                None
            }
            Some(outcome) if take_outcome => Some(outcome),
            Some(Ok((id, conn))) => {
                // Served but never picked up: pass it on.
                self.keys.get_mut(id).lent -= 1;
                self.lent -= 1;
                self.place(id, conn, config, fx);
                None
            }
            Some(Err(_)) => None,
        };
        self.check();
        result
    }

    /// A getter hit its deadline: the outcome if one arrived just in time,
    /// else the timeout error (with the key's last dial error).
    pub(crate) fn expire(
        &mut self,
        w: WaiterId,
        config: &Config,
        fx: &mut Effects<M>,
    ) -> Outcome<M> {
        let Some((id, since)) = self.waiters.live(w).map(|w| (w.key, w.since)) else {
            // Served just in time.
            return self
                .cancel(w, true, config, fx)
                .expect("a waiter that is not live was served");
        };
        // Still waiting, so the key is alive: read it before the cancel may forget it.
        let entry = self.keys.get_mut(id);
        entry.counters.timeouts += 1;
        let last_connect_error = entry.last_error.clone();
        self.counters.timeouts += 1;
        self.cancel(w, false, config, fx);
        Err(Error::Timeout {
            waited: Instant::now().saturating_duration_since(since),
            last_connect_error,
        })
    }

    /// Closes the pool (see module docs).
    pub(crate) fn close(&mut self, config: &Config, fx: &mut Effects<M>) {
        if self.closed {
            fx.drained = self.is_drained();
            return;
        }
        self.closed = true;
        for w in self.waiters.live_ids() {
            self.serve(w, Err(Error::Closed), fx);
        }
        self.global_dial_waiters.clear();
        for (_, entry) in self.keys.iter_mut() {
            entry.idle_waiters.clear();
            entry.dial_waiters.clear();
        }
        for id in self.keys.ids() {
            self.keys.forget_if_unused(id);
        }
        while let Some((id, conn)) = self.idle.pop_lru() {
            self.close_conn(id, conn, CloseReason::PoolClosed, config, fx);
        }
        fx.drained = self.is_drained();
        self.check();
    }

    /// A `Manager::close` task ended; true if the pool is now drained.
    pub(crate) fn close_finished(&mut self) -> bool {
        self.closing -= 1;
        self.is_drained()
    }

    pub(crate) fn is_drained(&self) -> bool {
        self.closed && self.open == 0 && self.closing == 0
    }

    pub(crate) fn open_and_closing(&self) -> (usize, usize) {
        (self.open, self.closing)
    }

    pub(crate) fn snapshot(&self) -> PoolState {
        PoolState {
            open: self.open,
            idle: self.idle.len(),
            lent: self.lent,
            dialing: self.dialing,
            waiting: self.waiting,
            closing: self.closing,
            keys: self.keys.len(),
            closed: self.closed,
            counters: self.counters.clone(),
        }
    }

    pub(crate) fn key_snapshot(&self, key: &M::Key) -> Option<KeyState> {
        let id = self.keys.id(key)?;
        let entry = self.keys.get(id);
        Some(KeyState {
            open: entry.open,
            idle: self.idle.len_of(id),
            lent: entry.lent,
            dialing: entry.dialing,
            waiting: entry.waiting,
            counters: entry.counters.clone(),
        })
    }
}
