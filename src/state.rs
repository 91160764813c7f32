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
//! **Counts.** Per key and in total, `open = idle + lent + dialing + pinging`.
//! `open` is what the caps limit; a connection stops counting the moment the
//! pool decides to close it (its `Manager::close` then runs in a task,
//! counted in `closing` until it ends). A connection handed to a waiter counts
//! as lent from the hand-off on, before the waiter has picked it up.
//! `waiting` counts waiters that have not been served. A shared connection
//! (see below) counts once in `lent` while it has borrowers; its handles are
//! counted by the shared set (`borrowers`). A connection lent exclusively
//! keeps its entry in the idle set, held (not idle): the borrower's guard
//! carries the connection and the entry's [`ConnId`], and the return puts
//! the connection back in the same entry. So its life record stays put, and
//! the hand-off works on a `ConnId`: a connection coming free from
//! elsewhere (a dial, a ping) is first held in the idle set.
//!
//! **The single-key fast paths** ([`State::lend_recent`],
//! [`State::return_recent`]; the `recent` module). In a pool whose key type
//! has one value, a return that would only park its connection (nobody
//! waits, the pool is open, the idle caps cannot bind, the maintenance task
//! wakes in time for it) leaves it held, at rest, on the `recent` stack,
//! still counted as lent (snapshots count it idle); a checkout lends the top
//! of that stack if the idle path would lend it as it is. Neither looks up
//! the key, links or unlinks anything, or decides anything to do outside
//! the lock. Every other transition that looks at idle connections or
//! waiters, or closes anything, starts by parking the stack, oldest first
//! (`park_recent`), so it sees the pool exactly as if each of those returns
//! had parked its connection. (The few that do not, `health_checked`,
//! `timeout_error`, `poll_waiter`, `close_finished` and `relimit`, only
//! count, or serve waiters, of which there are none while the stack holds
//! anything.)
//!
//! **Getting** ([`State::checkout`]): take the newest idle connection of the
//! key (closing stale or expired ones met on the way, and telling the getter
//! whether the health-check policy wants it pinged first); otherwise, unless the
//! key is in backoff (then fail at once), open a waiter slot, queue it on the key's `idle_waiters`
//! and find a dial for it: start one if the key and the pool are under their
//! caps; at the pool cap, evict the least recently used idle connection of
//! another key to make room; otherwise queue it on the key's `dial_waiters`
//! (key at its cap or at `max_connecting`) or the pool's global dial queue
//! (pool at its cap). The
//! waiter is then served by whichever comes first: a connection of its key
//! coming free, or its dial.
//!
//! **Shared lending** (the `shared` module): a connection whose manager lends
//! it shared takes up to `max_borrowers` borrowers, each holding a handle.
//! What changes: checkout, after the idle list (an idle connection is the
//! least loaded of all), lends a handle to the least-loaded connection of the
//! key that has room; a dial serves as many waiters as its connection takes
//! ([`State::place_shared`]); a returned handle frees a place that goes to
//! the first waiter of the key ([`State::return_handle`]), and the connection
//! goes through the hand-off only once its last borrower is gone — so idle
//! time, idle caps, LRU eviction and keepalive see a shared connection only
//! while nobody borrows it. One taken from the idle set with a health check
//! due takes no other borrower until the check passes
//! ([`State::health_checked`] then serves the key's waiters from it). A
//! connection marked broken, past its lifetime or its uses drains: no new
//! borrower, closed by its last one. A key remembers
//! how many borrowers its last connection took (`share_hint`): a new waiter
//! of a shared key dials only if the dials in flight cannot serve every
//! waiter. Until its first connection is up, a key dials like an exclusive
//! one (at most `max_connecting` at once). Exclusive connections take none
//! of these paths.
//!
//! **Hand-off** ([`State::place`]): a connection coming free (returned by a
//! borrower, or freshly dialed) goes, in this order, to the first live waiter
//! of its key; else, if a getter of another key waits at the pool's cap, it is
//! closed so that getter can dial; else to the idle list, closing it when the
//! key's idle cap is full and evicting the pool's LRU idle connection when the
//! global idle cap is. Every connection that comes free passes through this one
//! function (one that was lent exclusively through its second half,
//! [`State::place_own`], which skips the shared case).
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
//! the next waiter gets it (a handle to a shared connection is given back:
//! its place goes to the next waiter). Nothing is counted twice or lost.
//!
//! **Close** ([`State::close`]): serves every waiter with `Closed`, closes
//! every idle connection; connections lent, pinged or being dialed are closed
//! when they come back.
//!
//! **Time** ([`State::maintain`]): every connection carries its life record
//! ([`Conn`]). Each time one becomes idle, the first instant it needs
//! attention (lifetime, idle timeout or keepalive ping) arms the pool's one
//! maintenance task if it is earlier than its wake-up, and the entry is
//! *fresh* in the idle set. The task, when it wakes, moves the fresh entries
//! still idle into the deadline heap (a connection lent again before that
//! costs the heap nothing), sleeps until the earliest deadline, and then
//! closes what expired, reschedules what `min_idle` protects, and takes out
//! what is due a ping (counted in `pinging`; it is not lent
//! meanwhile, and comes back through the hand-off). Checkout and return look
//! at the same record, so a stale or expired connection is never lent even
//! between two wake-ups.
//!
//! **Dial limits** ([`State::dial_done`]): at most `max_connecting` dials
//! of a key run at once; a getter past that waits in the key's dial queue,
//! like one at the key's cap, and gets a dial when one ends. A failed dial
//! puts its key in backoff: its dial queue is failed at once with
//! [`Error::Backoff`], and until the backoff ends a getter that finds no idle
//! connection fails the same way instead of dialing.
//!
//! **Forgetting keys.** A key with no connection and no waiter is forgotten
//! (unless it is in backoff or was within one backoff cap, or `min_idle` is
//! set), but only at the end of a transition ([`State::finish`]): a `KeyId`
//! held in the middle of one always stays valid.

use std::task::Waker;
use std::time::Duration;

use crate::clock::Tick;
use crate::config::Config;
use crate::store::Conn;
use crate::store::{Deadlines, Due};
use crate::error::{ConnectError, Error};
use crate::store::{ConnId, Records};
use crate::store::{KeyId, Keys};
use crate::manager::{Lending, Manager};
use crate::store::WaitQueue;
use crate::store::Recent;
use crate::store::{Lent, Borrowed};
use crate::stats::{CloseReason, Counters, KeyState, PoolState};
use crate::store::{WaiterId, Waiters};

/// What a waiter is served with.
pub(crate) type Outcome<M> =
    Result<(KeyId, Lent<<M as Manager>::Connection>), Error<<M as Manager>::Error>>;

/// What a dial produced: the connection and how the manager lends it.
pub(crate) type Dialed<M> = Result<
    (
        <M as Manager>::Connection,
        Lending<<M as Manager>::Connection>,
    ),
    ConnectError<<M as Manager>::Error>,
>;

/// What a borrower takes out of the pool for good ([`State::detach`]).
pub(crate) enum Detached {
    /// The exclusively lent connection whose record is `ConnId`.
    Own(ConnId),
    /// A handle to the shared connection in this slot.
    Handle(usize),
}

/// A dial to start once the lock is released.
pub(crate) struct DialOrder<K> {
    pub(crate) key: K,
    pub(crate) key_id: KeyId,
    /// The waiter the dial was started for, if any.
    pub(crate) waiter: Option<WaiterId>,
}

/// Something a transition decided to do outside the lock, past the first
/// wake-up.
pub(crate) enum Action<M: Manager> {
    Wake(Waker),
    Dial(DialOrder<M::Key>),
    Close(M::Connection, CloseReason),
    /// An idle connection taken out for a keepalive ping.
    Ping(KeyId, Conn<M::Connection>),
}

/// What a transition decided to do outside the lock.
pub(crate) struct Effects<M: Manager> {
    /// The common case needs one wake-up; keeping it out of the `Vec` keeps
    /// the hand-off free of allocation.
    pub(crate) wake: Option<Waker>,
    /// The rest, in the order decided. One `Vec`: checkout and return, which
    /// mostly decide nothing, create and drop one.
    pub(crate) actions: Vec<Action<M>>,
    /// The rare rest, one bit each ([`REARM`], [`DRAINED`], [`BACKOFF`]):
    /// one test tells that none is set.
    flags: u8,
    /// With [`BACKOFF`]: how long the key's backoff lasts.
    backoff: Duration,
}

/// A deadline earlier than the maintenance task's next wake-up was added.
const REARM: u8 = 1;
/// The pool is closed and nothing is open or closing any more.
const DRAINED: u8 = 2;
/// A key entered dial backoff.
const BACKOFF: u8 = 4;

impl<M: Manager> Effects<M> {
    pub(crate) fn new() -> Self {
        Self {
            wake: None,
            actions: Vec::new(),
            flags: 0,
            backoff: Duration::ZERO,
        }
    }

    /// Whether there is nothing to do.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.wake.is_none() && self.actions.is_empty() && self.flags == 0
    }

    /// Whether the maintenance task must look at its wake-up again.
    pub(crate) fn rearm(&self) -> bool {
        self.flags & REARM != 0
    }

    /// Whether the pool was closed and is now drained.
    pub(crate) fn drained(&self) -> bool {
        self.flags & DRAINED != 0
    }

    /// How long the backoff a key entered lasts, if one did.
    pub(crate) fn backoff(&self) -> Option<Duration> {
        (self.flags & BACKOFF != 0).then_some(self.backoff)
    }

    fn set_drained(&mut self, drained: bool) {
        if drained {
            self.flags |= DRAINED;
        }
    }

    fn wake(&mut self, waker: Waker) {
        match self.wake {
            None => self.wake = Some(waker),
            Some(_) => self.actions.push(Action::Wake(waker)),
        }
    }
}

/// How a keepalive ping ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PingResult {
    Ok,
    /// Failed or timed out: one more miss.
    Missed,
    /// Failed and `is_broken` says the connection is unusable: closed at once.
    Broken,
}

/// The result of a checkout attempt.
pub(crate) enum Checkout<C> {
    /// Lent at once: a connection from the idle list, or a handle to a
    /// shared connection that already has borrowers. `true`: the health-check
    /// policy wants it pinged before it is lent (only ever for one taken
    /// from the idle list; a shared one takes no other borrower meanwhile).
    Lent(KeyId, Lent<C>, bool),
    /// No idle connection: wait on this slot.
    Wait(WaiterId),
}

/// Everything the pool knows; see the module docs for the invariants.
///
/// `repr(C)`, `recent` first: the lock's byte comes right before the state
/// (the mutex's data is its last field), so the fast paths write one line.
#[repr(C)]
pub(crate) struct State<M: Manager> {
    /// A single-key pool's recently returned connections, not yet parked
    /// (held in `idle`, counted as lent), and the gets served from them:
    /// see the `recent` module.
    recent: Recent,
    keys: Keys<M::Key, M::Error>,
    /// Idle connections, and the records of those lent exclusively (their
    /// connection is `None` while the borrower has it).
    idle: Records<Conn<Option<M::Connection>>>,
    /// Shared connections that have borrowers (they count as lent).
    shared: Borrowed<M::Connection>,
    waiters: Waiters<Outcome<M>>,
    /// Waiters whose key is under its cap but that found the pool at its cap.
    global_dial_waiters: WaitQueue<WaiterId>,
    deadlines: Deadlines,
    /// When the maintenance task wakes next (`None`: only when told).
    timer_at: Option<Tick>,
    /// Keys that may have become unused during the current transition.
    maybe_unused: Vec<KeyId>,
    open: usize,
    lent: usize,
    dialing: usize,
    pinging: usize,
    waiting: usize,
    closing: usize,
    closed: bool,
    counters: Counters,
}

impl<M: Manager> State<M> {
    /// Whether the key type has one value, so that the `recent` stack may
    /// be used (a constant: the fast paths compile away for other pools).
    const ONE_KEY: bool = std::mem::size_of::<M::Key>() == 0;

    /// Where the `recent` stack ends in the state (for the layout test).
    #[cfg(test)]
    pub(crate) const RECENT_END: usize =
        std::mem::offset_of!(State<M>, recent) + std::mem::size_of::<Recent>();

    pub(crate) fn new(config: &Config) -> Self {
        Self {
            keys: Keys::new(config.min_idle > 0, config.failure_memory()),
            idle: Records::default(),
            shared: Borrowed::default(),
            // One key value, and idle caps that cannot bind: a return that
            // parks does nothing but park, so it may be deferred.
            recent: Recent::new(
                Self::ONE_KEY
                    && config.min_idle == 0
                    && config.max_idle_per_key >= config.max_open_per_key
                    && config.max_idle >= config.max_open,
            ),
            waiters: Waiters::default(),
            global_dial_waiters: WaitQueue::default(),
            deadlines: Deadlines::default(),
            timer_at: None,
            maybe_unused: Vec::new(),
            open: 0,
            lent: 0,
            dialing: 0,
            pinging: 0,
            waiting: 0,
            closing: 0,
            closed: false,
            counters: Counters::default(),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// The key `id` names (for a log line; `id` must be live).
    pub(crate) fn key(&self, id: KeyId) -> M::Key {
        self.keys.get(id).key.clone()
    }

    /// Ends every public transition: forgets the keys it left unused and
    /// tells whether a closed pool is drained.
    fn finish(&mut self, fx: &mut Effects<M>) {
        if Self::ONE_KEY {
            self.count_recent_gets();
        }
        if !self.maybe_unused.is_empty() {
            let now = Tick::now();
            while let Some(id) = self.maybe_unused.pop() {
                self.keys.forget_if_unused(id, now);
            }
        }
        // `is_drained`, read only where it can be true.
        fx.set_drained(self.closed && self.is_drained());
        self.debug_check();
    }

    /// The gets served from the `recent` stack join the counters (first
    /// thing in `finish`: their key is alive until then).
    #[inline]
    fn count_recent_gets(&mut self) {
        let (id, gets) = self.recent.take_gets();
        if gets > 0 {
            self.counters.gets += gets;
            self.keys.get_mut(id).counters.gets += gets;
        }
    }

    /// The counts add up (debug builds).
    #[inline]
    fn debug_check(&self) {
        debug_assert_eq!(
            self.open,
            self.idle.len() + self.lent + self.dialing + self.pinging
        );
        // No idle-set entry outlives its lending: every connection lent is
        // held there (exclusive) or in the shared set.
        debug_assert_eq!(self.lent, self.idle.held() + self.shared.len());
        // The recent connections are held, of one key, and only while
        // parking them would do nothing but park them.
        debug_assert!(self.recent.is_empty() || (self.waiting == 0 && !self.closed));
    }

    fn unused(&mut self, id: KeyId) {
        self.maybe_unused.push(id);
    }

    /// Whether `id` is in dial backoff at `now`. `now` may come from the
    /// coarse clock (a checkout's), up to a kernel tick behind: a backoff
    /// that seems to last is checked again by the precise clock, so that
    /// backoffs of a few milliseconds are not stretched to the next tick.
    /// (Only a getter about to be refused or to skip a dial pays for it.)
    fn in_backoff(&self, id: KeyId, now: Tick) -> bool {
        self.keys
            .get(id)
            .backoff_until
            .is_some_and(|until| until > now && until > Tick::now())
    }

    /// Whether a dial of `id` may start, the pool's own cap aside.
    fn key_can_dial(&self, id: KeyId, now: Tick, config: &Config) -> bool {
        let entry = self.keys.get(id);
        entry.open < config.max_open_per_key
            && entry.dialing < config.max_connecting
            && !self.in_backoff(id, now)
    }

    fn backoff_error(&self, id: KeyId, now: Tick) -> Error<M::Error> {
        let entry = self.keys.get(id);
        Error::Backoff {
            key: entry
                .backoff_key
                .clone()
                .unwrap_or_else(|| format!("{:?}", entry.key).into()),
            retry_in: entry
                .backoff_until
                .map_or(Duration::ZERO, |until| until.saturating_duration_since(now)),
            last_connect_error: entry.last_error.clone().unwrap_or(ConnectError::Aborted),
        }
    }

    /// A get for `key` at `now`: an idle connection, or a waiter slot (see
    /// module docs). `count` is false when the caller retries after a broken
    /// or unhealthy idle connection.
    #[inline]
    pub(crate) fn checkout(
        &mut self,
        key: &M::Key,
        count: bool,
        now: Tick,
        config: &Config,
        fx: &mut Effects<M>,
    ) -> Result<Checkout<M::Connection>, Error<M::Error>> {
        if self.closed {
            return Err(Error::Closed);
        }
        self.park_recent(now, config, fx);
        let id = self.keys.id_or_insert(key);
        if count {
            self.counters.gets += 1;
        }
        while let Some((cid, conn)) = self.idle.newest(id) {
            // `len_of` still counts `conn`: closing it keeps `min_idle` iff
            // `len_of > min_idle`.
            let reason = if conn.is_expired(now) {
                Some(CloseReason::Lifetime)
            } else if conn.is_stale(now, config) && self.idle.len_of(id) > config.min_idle {
                Some(CloseReason::IdleTimeout)
            } else {
                None
            };
            if let Some(reason) = reason {
                let conn = self.remove_conn(cid);
                self.close_conn(id, conn.conn, reason, now, config, fx);
                continue;
            }
            let check = config.health_check_due(conn.idle_since, now);
            // The key's get is counted with the lending (one look-up).
            let lent = self.lend(id, cid, check, count);
            self.refill(id, now, config, fx);
            self.finish(fx);
            return Ok(Checkout::Lent(id, lent, check));
        }
        if count {
            self.keys.get_mut(id).counters.gets += 1;
        }
        if let Some(slot) = self
            .shared
            .least_loaded(id, |conn| conn.retirement(now, config))
        {
            let lent = self.shared.lend(slot);
            self.finish(fx);
            return Ok(Checkout::Lent(id, lent, false));
        }
        if self.in_backoff(id, now) {
            self.counters.backoff_rejections += 1;
            self.keys.get_mut(id).counters.backoff_rejections += 1;
            let err = self.backoff_error(id, now);
            self.unused(id);
            self.finish(fx);
            return Err(err);
        }
        if let Some(max_waiters) = config.max_waiters
            && self.waiting >= max_waiters
        {
            self.counters.rejections += 1;
            self.keys.get_mut(id).counters.rejections += 1;
            self.unused(id);
            self.finish(fx);
            return Err(Error::TooManyWaiters { max_waiters });
        }
        let w = self.waiters.insert(id, now);
        self.waiting += 1;
        self.counters.gets_waited += 1;
        let entry = self.keys.get_mut(id);
        entry.waiting += 1;
        entry.counters.gets_waited += 1;
        entry.tidy_queues(|w| self.waiters.is_live(w));
        entry.idle_waiters.push(w);
        self.find_dial(id, w, now, config, fx);
        self.refill(id, now, config, fx);
        self.finish(fx);
        Ok(Checkout::Wait(w))
    }

    /// Starts a dial for the new waiter `w`, or queues it for one.
    fn find_dial(
        &mut self,
        id: KeyId,
        w: WaiterId,
        now: Tick,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        let entry = self.keys.get(id);
        // A shared key's dials in flight will serve up to `share_hint`
        // waiters each: dial only for those they cannot serve.
        let covered = entry.share_hint > 1 && entry.dialing * entry.share_hint >= entry.waiting;
        if covered || !self.key_can_dial(id, now, config) {
            self.keys.get_mut(id).dial_waiters.push(w);
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
            let conn = conn.conn.expect("an idle connection is present");
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
        fx.actions.push(Action::Dial(DialOrder {
            key: entry.key.clone(),
            key_id: id,
            waiter,
        }));
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

    /// Tops every key up to `min_idle` (after pre-warming).
    pub(crate) fn refill_all(&mut self, now: Tick, config: &Config, fx: &mut Effects<M>) {
        self.park_recent(now, config, fx);
        for id in self.keys.ids() {
            self.refill(id, now, config, fx);
        }
        self.finish(fx);
    }

    /// Starts the dials that bring `id` back to `min_idle`, as far as the
    /// caps, `max_connecting` and the backoff allow (a backoff schedules a
    /// refill for when it ends). Dials beyond the key's waiters count as
    /// future idle connections, and so do connections out for a ping.
    #[inline]
    fn refill(&mut self, id: KeyId, now: Tick, config: &Config, fx: &mut Effects<M>) {
        if config.min_idle > 0 && !self.closed {
            self.refill_dials(id, now, config, fx);
        }
    }

    fn refill_dials(&mut self, id: KeyId, now: Tick, config: &Config, fx: &mut Effects<M>) {
        loop {
            let entry = self.keys.get(id);
            let spare_dials = entry.dialing.saturating_sub(entry.waiting);
            if self.idle.len_of(id) + spare_dials + entry.pinging >= config.min_idle
                || !self.key_can_dial(id, now, config)
                || self.open >= config.max_open
            {
                return;
            }
            self.start_dial(id, None, fx);
        }
    }

    /// Lends the connection `cid` of `id` (idle, or held: just returned or
    /// dialed): the connection itself, its record staying in the idle set,
    /// or (shared) a first handle to it, which takes no other borrower while
    /// `checking`.
    ///
    /// `count_get`: count a get of the key too (a checkout's, in the same
    /// look-up of the key).
    #[inline]
    fn lend(
        &mut self,
        id: KeyId,
        cid: ConnId,
        checking: bool,
        count_get: bool,
    ) -> Lent<M::Connection> {
        let entry = self.keys.get_mut(id);
        entry.lent += 1;
        if count_get {
            entry.counters.gets += 1;
        }
        self.lent += 1;
        let conn = self.idle.hold(cid);
        if conn.is_shared() {
            let conn = self.remove_conn(cid);
            let slot = self.shared.insert(id, conn);
            let lent = self.shared.lend(slot);
            self.shared.set_checking(slot, checking);
            lent
        } else {
            conn.uses = conn.uses.saturating_add(1);
            Lent::Own {
                conn: conn.conn.take().expect("a held connection is present"),
                id: cid,
                uses: conn.uses.into(),
            }
        }
    }

    /// Checkout's fast path (see the `recent` module): lends the newest
    /// recently returned connection if the idle path would lend it as it is
    /// (not expired, not stale, no health check due), else `None` and the
    /// caller goes on to [`checkout`](State::checkout). Decides nothing to do
    /// outside the lock.
    #[inline]
    pub(crate) fn lend_recent(
        &mut self,
        now: Tick,
        config: &Config,
    ) -> Option<(KeyId, Lent<M::Connection>)> {
        if !Self::ONE_KEY {
            return None;
        }
        let cid = self.recent.top()?;
        let conn = self.idle.value_mut(cid);
        if conn.is_expired(now)
            || conn.is_stale(now, config)
            || config.health_check_due(conn.idle_since, now)
        {
            return None;
        }
        conn.uses = conn.uses.saturating_add(1);
        let lent = Lent::Own {
            conn: conn.conn.take().expect("a recent connection is present"),
            id: cid,
            uses: conn.uses.into(),
        };
        let id = self.recent.key();
        self.recent.pop();
        // Counted in the stack's own line; the counters take them over in
        // the next transition's `finish`, before any key is forgotten.
        self.recent.count_get();
        self.debug_check();
        Some((id, lent))
    }

    /// Return's fast path (see the `recent` module): takes back `conn`, lent
    /// exclusively as `cid` of `id`, if parking it would do nothing but park
    /// it (nobody waits, the pool is open, the idle caps cannot bind, it is
    /// not retiring) and the maintenance task wakes in time for it; the
    /// parking is then deferred. Otherwise hands `conn` back for
    /// [`give_back`](State::give_back). Decides nothing to do outside the
    /// lock.
    #[inline]
    pub(crate) fn return_recent(
        &mut self,
        id: KeyId,
        cid: ConnId,
        conn: M::Connection,
        now: Tick,
        config: &Config,
    ) -> Result<(), M::Connection> {
        if !Self::ONE_KEY || !self.recent.has_room() || self.waiting > 0 || self.closed {
            return Err(conn);
        }
        let record = self.idle.value_mut(cid);
        if record.retirement(now, config).is_some() {
            return Err(conn);
        }
        // (Resting it is what `give_back` does first too.)
        record.rest(now);
        if record
            .deadline(now, false, config)
            .is_some_and(|due| self.timer_at.is_none_or(|wake| wake > due))
        {
            return Err(conn);
        }
        record.conn = Some(conn);
        self.recent.push(id, cid);
        self.debug_check();
        Ok(())
    }

    /// Parks the recently returned connections, oldest first, as their
    /// returns would have (see the module docs for which transitions start
    /// here).
    #[inline]
    fn park_recent(&mut self, now: Tick, config: &Config, fx: &mut Effects<M>) {
        if Self::ONE_KEY && !self.recent.is_empty() {
            self.park_recent_now(now, config, fx);
        }
    }

    #[cold]
    fn park_recent_now(&mut self, now: Tick, config: &Config, fx: &mut Effects<M>) {
        let id = self.recent.key();
        for cid in self.recent.take_all() {
            self.unlend(id);
            self.place_own(id, cid, now, config, fx);
        }
    }

    /// A connection of `id` lent exclusively is no longer lent.
    #[inline]
    fn unlend(&mut self, id: KeyId) {
        self.keys.get_mut(id).lent -= 1;
        self.lent -= 1;
    }

    /// Takes the idle or held connection `cid` out of the idle set for good.
    fn remove_conn(&mut self, cid: ConnId) -> Conn<M::Connection> {
        self.idle
            .remove(cid)
            .1
            .map(|conn| conn.expect("a held connection is present"))
    }

    /// Puts `conn`, of `id`, which has no idle-set entry yet (dialed, back
    /// from a ping, or out of the shared set), in the idle set, held: not
    /// idle until parked. (`Records::hold` instead holds an entry it has.)
    fn hold_new(&mut self, id: KeyId, conn: Conn<M::Connection>) -> ConnId {
        self.idle.insert(id, conn.map(Some))
    }

    /// Serves the live waiter `w` (with a connection already lent to it, or
    /// an error) and accounts for it.
    fn serve(&mut self, w: WaiterId, outcome: Outcome<M>, fx: &mut Effects<M>) {
        let id = self
            .waiters
            .live(w)
            .expect("serve: waiter must be live")
            .key;
        let entry = self.keys.get_mut(id);
        entry.waiting -= 1;
        self.waiting -= 1;
        if outcome.is_err() {
            self.unused(id);
        }
        if let Some(waker) = self.waiters.serve(w, outcome) {
            fx.wake(waker);
        }
    }

    /// The first live waiter of `id`'s queue, if any.
    #[inline]
    fn first_waiter(&mut self, id: KeyId) -> Option<WaiterId> {
        // Nobody waits at all (the common return): don't look up the key.
        if self.waiting == 0 {
            return None;
        }
        let entry = self.keys.get_mut(id);
        if entry.waiting == 0 {
            return None;
        }
        entry.idle_waiters.pop_live(|w| self.waiters.is_live(w))
    }

    /// Serves waiters of `id` from the shared connection in `slot` while it
    /// has room: `first` (if live), then the key's queue in order.
    fn serve_shared(
        &mut self,
        id: KeyId,
        slot: usize,
        first: Option<WaiterId>,
        fx: &mut Effects<M>,
    ) {
        if let Some(w) = first.filter(|&w| self.waiters.is_live(w)) {
            let lent = self.shared.lend(slot);
            self.serve(w, Ok((id, lent)), fx);
        }
        while self.shared.has_room(slot)
            && let Some(w) = self.first_waiter(id)
        {
            let lent = self.shared.lend(slot);
            self.serve(w, Ok((id, lent)), fx);
        }
    }

    /// A connection of `id` that came free (returned, pinged, or dialed for
    /// nobody in particular), held in the idle set as `cid`, and not counted
    /// as lent, dialing or pinging: the hand-off.
    fn place(&mut self, id: KeyId, cid: ConnId, now: Tick, config: &Config, fx: &mut Effects<M>) {
        if self.idle.value(cid).is_shared() && !self.closed {
            if self.waiting > 0 && self.keys.get(id).waiting > 0 {
                let conn = self.remove_conn(cid);
                return self.place_shared(id, conn, None, now, config, fx);
            }
            return self.park(id, cid, now, config, fx);
        }
        self.place_own(id, cid, now, config, fx);
    }

    /// [`place`](State::place) for a connection known to be exclusive (one
    /// that was lent exclusively).
    #[inline]
    fn place_own(
        &mut self,
        id: KeyId,
        cid: ConnId,
        now: Tick,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        if self.closed {
            let conn = self.remove_conn(cid);
            return self.close_conn(id, conn.conn, CloseReason::PoolClosed, now, config, fx);
        }
        if let Some(w) = self.first_waiter(id) {
            let lent = self.lend(id, cid, false, false);
            return self.serve(w, Ok((id, lent)), fx);
        }
        self.park(id, cid, now, config, fx);
    }

    /// A connection of `id` that came free when no getter of its key waits:
    /// its slot to a getter of another key waiting at the pool cap, else the
    /// idle list (within the idle caps).
    #[inline]
    fn park(&mut self, id: KeyId, cid: ConnId, now: Tick, config: &Config, fx: &mut Effects<M>) {
        // A getter of another key may wait at the pool cap: hand it this slot.
        // (`waiting > 0` first: no key look-up when nobody waits.)
        if self.waiting > 0
            && self.waiting > self.keys.get(id).waiting
            && self.open >= config.max_open
            && let Some((w, other)) = self.pop_global_waiter(now, config, fx)
        {
            let conn = self.remove_conn(cid);
            self.close_without_refill(id, conn.conn, CloseReason::Evicted, fx);
            return self.start_dial(other, Some(w), fx);
        }
        if self.idle.len_of(id) >= config.max_idle_per_key {
            let conn = self.remove_conn(cid);
            return self.close_conn(id, conn.conn, CloseReason::IdleCapacity, now, config, fx);
        }
        if self.idle.len() >= config.max_idle
            && let Some((other, old)) = self.idle.pop_lru()
        {
            let old = old.conn.expect("an idle connection is present");
            self.close_conn(other, old, CloseReason::Evicted, now, config, fx);
        }
        // The entry is fresh: the maintenance task moves it into the
        // deadline heap when it next wakes, if it is still idle then. Only
        // the wake-up must be early enough.
        if let Some(at) = self
            .idle
            .park(cid, |conn| conn.deadline(now, false, config))
        {
            self.arm(at, fx);
        }
    }

    /// A shared connection of `id` with no borrower came free (dialed for
    /// `first`, or with waiters on its key): it serves as many waiters as it
    /// has room for, and goes idle if none was left to serve.
    fn place_shared(
        &mut self,
        id: KeyId,
        conn: Conn<M::Connection>,
        first: Option<WaiterId>,
        now: Tick,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        self.keys.get_mut(id).lent += 1;
        self.lent += 1;
        let slot = self.shared.insert(id, conn);
        self.serve_shared(id, slot, first, fx);
        if self.shared.is_unborrowed(slot) {
            // Every waiter was gone: it was never lent.
            let conn = self.unlend_shared(id, slot);
            let cid = self.hold_new(id, conn);
            self.park(id, cid, now, config, fx);
        }
    }

    /// Takes the shared connection in `slot`, which has no borrower left,
    /// out of the shared set: it no longer counts as lent.
    fn unlend_shared(&mut self, id: KeyId, slot: usize) -> Conn<M::Connection> {
        let (_, conn) = self.shared.remove(slot);
        self.keys.get_mut(id).lent -= 1;
        self.lent -= 1;
        conn
    }

    /// A borrower of the shared connection in `slot` (of key `id`) is done
    /// with its handle; `close` marks the connection for closing. A
    /// connection that should not take new borrowers (marked, past its
    /// lifetime or uses, pool closed) drains: it closes when its last
    /// borrower returns. Otherwise the freed place goes to the first waiter
    /// of the key, and with no borrower left the connection rests in the
    /// idle list.
    fn return_handle(
        &mut self,
        id: KeyId,
        slot: usize,
        close: Option<CloseReason>,
        now: Tick,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        let left = self.shared.give_back(slot);
        let retire = if self.closed {
            Some(CloseReason::PoolClosed)
        } else {
            close.or_else(|| self.shared.conn_mut(slot).1.retirement(now, config))
        };
        if let Some(reason) = retire {
            self.shared.drain(slot, reason);
        }
        if let Some(reason) = self.shared.draining(slot) {
            if left == 0 {
                let conn = self.unlend_shared(id, slot);
                self.close_conn(id, conn.conn, reason, now, config, fx);
            }
        } else if self.shared.has_room(slot)
            && let Some(w) = self.first_waiter(id)
        {
            let lent = self.shared.lend(slot);
            self.serve(w, Ok((id, lent)), fx);
        } else if left == 0 {
            let mut conn = self.unlend_shared(id, slot);
            conn.rest(now);
            let cid = self.hold_new(id, conn);
            self.park(id, cid, now, config, fx);
        }
    }

    /// The shared connection in `slot` of `id` takes `max_borrowers` from
    /// now on: the limit its manager sees now (a peer's new `SETTINGS`). A
    /// connection whose limit fell to 1 is lent exclusively once its
    /// borrowers are gone. Called with the lock that returns a handle.
    pub(crate) fn relimit(&mut self, id: KeyId, slot: usize, max_borrowers: usize) {
        self.shared.conn_mut(slot).1.max_borrowers =
            u16::try_from(max_borrowers).unwrap_or(u16::MAX);
        self.keys.get_mut(id).share_hint = max_borrowers;
    }

    /// A borrower gives back its handle to the shared connection in `slot`
    /// (see [`State::return_handle`]).
    pub(crate) fn give_back_handle(
        &mut self,
        id: KeyId,
        slot: usize,
        close: Option<CloseReason>,
        now: Tick,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        self.park_recent(now, config, fx);
        self.return_handle(id, slot, close, now, config, fx);
        self.finish(fx);
    }

    fn schedule(&mut self, at: Tick, due: Due, fx: &mut Effects<M>) {
        self.deadlines.push(at, due);
        self.arm(at, fx);
    }

    /// Makes sure the maintenance task wakes by `at`.
    fn arm(&mut self, at: Tick, fx: &mut Effects<M>) {
        if self.timer_at.is_none_or(|t| at < t) {
            self.timer_at = Some(at);
            fx.flags |= REARM;
        }
    }

    /// The first live waiter of the global dial queue whose key may dial;
    /// waiters whose key reached its cap or `max_connecting` meanwhile move
    /// to their key's dial queue, waiters whose key is in backoff fail.
    fn pop_global_waiter(
        &mut self,
        now: Tick,
        config: &Config,
        fx: &mut Effects<M>,
    ) -> Option<(WaiterId, KeyId)> {
        while let Some(w) = self
            .global_dial_waiters
            .pop_live(|w| self.waiters.is_live(w))
        {
            let key = self.waiters.live(w).expect("live").key;
            if self.in_backoff(key, now) {
                self.reject_for_backoff(w, key, now, fx);
            } else if self.key_can_dial(key, now, config) {
                return Some((w, key));
            } else {
                self.keys.get_mut(key).dial_waiters.push(w);
            }
        }
        None
    }

    fn reject_for_backoff(&mut self, w: WaiterId, id: KeyId, now: Tick, fx: &mut Effects<M>) {
        self.counters.backoff_rejections += 1;
        self.keys.get_mut(id).counters.backoff_rejections += 1;
        let err = self.backoff_error(id, now);
        self.serve(w, Err(err), fx);
    }

    fn tidy_global_queue(&mut self) {
        if self.waiting == 0 {
            self.global_dial_waiters.clear();
        } else if self.global_dial_waiters.len() > 2 * self.waiting + 16 {
            self.global_dial_waiters
                .compact(|w| self.waiters.is_live(w));
        }
    }

    /// A borrower returns `conn`, lent exclusively as `cid`, of `id` at
    /// `now`; `close` closes it for that reason instead. Past its lifetime or
    /// its uses it is closed too.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn give_back(
        &mut self,
        id: KeyId,
        cid: ConnId,
        conn: M::Connection,
        close: Option<CloseReason>,
        now: Tick,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        self.park_recent(now, config, fx);
        self.unlend(id);
        let record = self.idle.value_mut(cid);
        match close.or_else(|| record.retirement(now, config)) {
            Some(reason) => {
                self.idle.remove(cid);
                self.close_conn(id, conn, reason, now, config, fx);
            }
            None => {
                record.conn = Some(conn);
                record.rest(now);
                self.place_own(id, cid, now, config, fx);
            }
        }
        self.finish(fx);
    }

    /// A borrower takes its connection out of the pool for good (a handle to
    /// a shared connection is given back instead: the connection stays).
    pub(crate) fn detach(
        &mut self,
        id: KeyId,
        lent: Detached,
        now: Tick,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        let cid = match lent {
            Detached::Handle(slot) => {
                return self.give_back_handle(id, slot, None, now, config, fx);
            }
            Detached::Own(cid) => cid,
        };
        self.park_recent(now, config, fx);
        self.idle.remove(cid);
        self.unlend(id);
        self.release_slot(id, now, config, fx);
        self.finish(fx);
    }

    /// A health-check ping of a connection of `id` lent to a getter ended
    /// (`ok`: it passed). A shared connection (in `slot`) that passed takes
    /// borrowers again: the key's waiters first. One that failed is closed
    /// by its getter.
    pub(crate) fn health_checked(
        &mut self,
        id: KeyId,
        slot: Option<usize>,
        ok: bool,
        fx: &mut Effects<M>,
    ) {
        let entry = self.keys.get_mut(id);
        entry.counters.health_checks += 1;
        self.counters.health_checks += 1;
        if !ok {
            entry.counters.health_check_failures += 1;
            self.counters.health_check_failures += 1;
        } else if let Some(slot) = slot {
            self.shared.set_checking(slot, false);
            self.serve_shared(id, slot, None, fx);
        }
        self.finish(fx);
    }

    /// A getter ran into its checkout deadline outside a wait (during a
    /// health check): counts it and builds the error.
    pub(crate) fn timeout_error(&mut self, id: KeyId, waited: Duration) -> Error<M::Error> {
        let entry = self.keys.get_mut(id);
        entry.counters.timeouts += 1;
        self.counters.timeouts += 1;
        Error::Timeout {
            waited,
            last_connect_error: entry.last_error.clone(),
            foreign_runtime: false,
        }
    }

    /// Closes `conn` of `id` and gives its slot to a waiter.
    fn close_conn(
        &mut self,
        id: KeyId,
        conn: M::Connection,
        reason: CloseReason,
        now: Tick,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        self.count_close(id, reason);
        self.closing += 1;
        fx.actions.push(Action::Close(conn, reason));
        self.release_slot(id, now, config, fx);
    }

    /// A dial of `id` made a connection that will not be lent (broken on
    /// arrival): it is closed outside the pool's counts of open connections.
    pub(crate) fn count_close_of_dialed(&mut self, id: KeyId) {
        self.count_close(id, CloseReason::Broken);
        self.closing += 1;
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
        fx.actions.push(Action::Close(conn, reason));
        self.keys.get_mut(id).open -= 1;
        self.open -= 1;
        self.unused(id);
    }

    fn count_close(&mut self, id: KeyId, reason: CloseReason) {
        self.counters.count_close(reason);
        self.keys.get_mut(id).counters.count_close(reason);
    }

    /// A connection of `id` stopped counting: hand its slot to a dial waiter
    /// (of the key, else of the pool) and refill `min_idle`.
    fn release_slot(&mut self, id: KeyId, now: Tick, config: &Config, fx: &mut Effects<M>) {
        self.keys.get_mut(id).open -= 1;
        self.open -= 1;
        self.unused(id);
        if self.closed {
            return;
        }
        if !self.start_queued_dial(id, now, config, fx)
            && let Some((w, other)) = self.pop_global_waiter(now, config, fx)
        {
            self.start_dial(other, Some(w), fx);
        }
        self.refill(id, now, config, fx);
    }

    /// Starts a dial for the first live waiter of `id`'s dial queue, if the
    /// key and the pool may dial. True if it did.
    fn start_queued_dial(
        &mut self,
        id: KeyId,
        now: Tick,
        config: &Config,
        fx: &mut Effects<M>,
    ) -> bool {
        let entry = self.keys.get(id);
        if entry.waiting == 0
            || entry.share_hint > 1 && entry.dialing * entry.share_hint >= entry.waiting
            || self.open >= config.max_open
            || !self.key_can_dial(id, now, config)
        {
            return false;
        }
        let entry = self.keys.get_mut(id);
        match entry.dial_waiters.pop_live(|w| self.waiters.is_live(w)) {
            Some(w) => {
                self.start_dial(id, Some(w), fx);
                true
            }
            None => false,
        }
    }

    /// A dial of `id`, started for `waiter`, finished at `now`.
    pub(crate) fn dial_done(
        &mut self,
        id: KeyId,
        waiter: Option<WaiterId>,
        result: Dialed<M>,
        now: Tick,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        self.park_recent(now, config, fx);
        let entry = self.keys.get_mut(id);
        entry.dialing -= 1;
        self.dialing -= 1;
        match result {
            Ok((conn, lending)) => {
                entry.last_error = None;
                entry.failed_at = None;
                entry.failures = 0;
                entry.backoff_until = None;
                let mut conn = Conn::new(conn, now, config);
                let (max_borrowers, share) = lending.clamped(config.max_borrowers);
                conn.max_borrowers = u16::try_from(max_borrowers).unwrap_or(u16::MAX);
                entry.share_hint = max_borrowers;
                if let Some(share) = share {
                    self.shared.set_share(share);
                }
                let waiter = waiter.filter(|&w| self.waiters.is_live(w) && !self.closed);
                match waiter {
                    Some(w) if conn.is_shared() => {
                        self.place_shared(id, conn, Some(w), now, config, fx)
                    }
                    Some(w) => {
                        let cid = self.hold_new(id, conn);
                        let lent = self.lend(id, cid, false, false);
                        self.serve(w, Ok((id, lent)), fx);
                    }
                    None => {
                        let cid = self.hold_new(id, conn);
                        self.place(id, cid, now, config, fx);
                    }
                }
                // A `max_connecting` slot came free; a shared key may still
                // have waiters its connections cannot serve.
                if !self.closed {
                    while self.start_queued_dial(id, now, config, fx)
                        && self.keys.get(id).share_hint > 1
                    {}
                    self.refill(id, now, config, fx);
                }
            }
            Err(err) => {
                // Aborted: the runtime is going away, the backend is not to blame.
                let aborted = matches!(err, ConnectError::Aborted);
                entry.last_error = Some(err.clone());
                // A closed pool has nothing to remember it for.
                entry.failed_at = (!self.closed).then_some(now);
                entry.failures = entry.failures.saturating_add(1);
                entry.counters.dial_failures += 1;
                self.counters.dial_failures += 1;
                if let Some(w) = waiter.filter(|&w| self.waiters.is_live(w)) {
                    self.serve(w, Err(Error::Connect(err)), fx);
                }
                if let Some(backoff) = config.backoff
                    && !self.closed
                    && !aborted
                {
                    let delay = backoff.delay(self.keys.get(id).failures);
                    self.enter_backoff(id, delay, now, fx);
                } else if !self.closed {
                    // Remember the failure a while, then forget the key.
                    let forget_at = now + self.keys.failure_memory;
                    self.schedule(forget_at, Due::BackoffEnd(id), fx);
                }
                self.release_slot(id, now, config, fx);
            }
        }
        self.finish(fx);
    }

    /// Puts `id` in backoff for a random time in `[delay/2, delay]` and fails
    /// the getters waiting for a dial of it.
    fn enter_backoff(&mut self, id: KeyId, delay: Duration, now: Tick, fx: &mut Effects<M>) {
        let delay = delay.mul_f64(0.5 + 0.5 * fastrand::f64());
        let until = now + delay;
        let entry = self.keys.get_mut(id);
        if entry.backoff_key.is_none() {
            entry.backoff_key = Some(format!("{:?}", entry.key).into());
        }
        entry.backoff_until = Some(entry.backoff_until.map_or(until, |u| u.max(until)));
        entry.counters.backoffs += 1;
        self.counters.backoffs += 1;
        fx.flags |= BACKOFF;
        fx.backoff = delay;
        while let Some(w) = self
            .keys
            .get_mut(id)
            .dial_waiters
            .pop_live(|w| self.waiters.is_live(w))
        {
            self.reject_for_backoff(w, id, now, fx);
        }
        // At its end: refill `min_idle`; a backoff cap later: forget the
        // key if nobody used it since.
        self.schedule(until, Due::BackoffEnd(id), fx);
        let forget_at = until + self.keys.failure_memory;
        self.schedule(forget_at, Due::BackoffEnd(id), fx);
    }

    /// A keepalive ping of a connection of `id` ended at `now`: `conn` is
    /// `None` if the ping task died with it.
    pub(crate) fn keepalive_done(
        &mut self,
        id: KeyId,
        conn: Option<Conn<M::Connection>>,
        ping: PingResult,
        now: Tick,
        config: &Config,
        fx: &mut Effects<M>,
    ) {
        self.park_recent(now, config, fx);
        let ok = ping == PingResult::Ok;
        let entry = self.keys.get_mut(id);
        entry.pinging -= 1;
        self.pinging -= 1;
        entry.counters.keepalive_pings += 1;
        self.counters.keepalive_pings += 1;
        if !ok {
            entry.counters.keepalive_failures += 1;
            self.counters.keepalive_failures += 1;
        }
        match conn {
            None => {
                self.count_close(id, CloseReason::Keepalive);
                self.release_slot(id, now, config, fx);
            }
            Some(mut conn) => {
                conn.missed = if ok { 0 } else { conn.missed.saturating_add(1) };
                if ping == PingResult::Broken
                    || u32::from(conn.missed) >= config.keepalive_max_missed
                {
                    self.close_conn(id, conn.conn, CloseReason::Keepalive, now, config, fx);
                } else {
                    conn.pinged(now, config);
                    let cid = self.hold_new(id, conn);
                    self.place(id, cid, now, config, fx);
                }
            }
        }
        self.finish(fx);
    }

    /// The maintenance task's turn at `now`: closes idle connections past
    /// their lifetime or idle timeout (keeping `min_idle`), takes out those
    /// due a keepalive ping, refills keys whose backoff ended. Returns when
    /// to run next.
    pub(crate) fn maintain(
        &mut self,
        now: Tick,
        config: &Config,
        fx: &mut Effects<M>,
    ) -> Option<Tick> {
        if self.closed {
            return None;
        }
        self.park_recent(now, config, fx);
        // Deadlines pushed now are all later than `now`: no rearm needed.
        self.timer_at = Some(now);
        let deadlines = &mut self.deadlines;
        self.idle.drain_fresh(|r, conn| {
            if let Some(at) = conn.deadline(now, false, config) {
                deadlines.push(at, Due::Idle(r));
            }
        });
        let idle = &self.idle;
        self.deadlines
            .compact(idle.len() + self.keys.len(), |due| match due {
                Due::Idle(r) => idle.contains(r),
                Due::BackoffEnd(_) => true,
            });
        while let Some(due) = self.deadlines.pop_due(now) {
            let r = match due {
                Due::BackoffEnd(id) => {
                    if self.keys.contains(id) {
                        self.refill(id, now, config, fx);
                        self.unused(id);
                    }
                    continue;
                }
                Due::Idle(r) => r,
            };
            let Some((id, conn)) = self.idle.get(r) else {
                continue; // lent (or closed) since
            };
            let stale = conn.is_stale(now, config);
            let protected = stale && self.idle.len_of(id) <= config.min_idle;
            if conn.is_expired(now) || (stale && !protected) {
                let reason = if conn.is_expired(now) {
                    CloseReason::Lifetime
                } else {
                    CloseReason::IdleTimeout
                };
                let (id, conn) = self.idle.take(r).expect("idle");
                let conn = conn.conn.expect("an idle connection is present");
                self.close_conn(id, conn, reason, now, config, fx);
            } else if conn.next_ping <= now {
                let (id, conn) = self.idle.take(r).expect("idle");
                self.keys.get_mut(id).pinging += 1;
                self.pinging += 1;
                let conn = conn.map(|c| c.expect("an idle connection is present"));
                fx.actions.push(Action::Ping(id, conn));
            } else if let Some(at) = conn.deadline(now, protected, config) {
                self.schedule(at, Due::Idle(r), fx);
            }
        }
        self.timer_at = self.deadlines.next();
        self.finish(fx);
        self.timer_at
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

    fn count_wait(&mut self, id: KeyId, since: Tick, key_alive: bool) {
        let waited = Tick::now().saturating_duration_since(since);
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
        self.park_recent(Tick::now(), config, fx);
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
                self.unused(id);
                None
            }
            Some(outcome) if take_outcome => Some(outcome),
            Some(Ok((id, Lent::Own { conn, id: cid, .. }))) => {
                // Served but never picked up: pass it on, as not lent.
                let record = self.idle.value_mut(cid);
                record.conn = Some(conn);
                record.uses -= 1;
                self.unlend(id);
                self.place_own(id, cid, Tick::now(), config, fx);
                None
            }
            Some(Ok((id, Lent::Handle { slot, .. }))) => {
                // A handle never picked up: its borrow was not a use.
                self.shared.conn_mut(slot).1.uses -= 1;
                self.return_handle(id, slot, None, Tick::now(), config, fx);
                None
            }
            Some(Err(_)) => None,
        };
        self.finish(fx);
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
            waited: Tick::now().saturating_duration_since(since),
            last_connect_error,
            foreign_runtime: false,
        })
    }

    /// Closes the pool (see module docs).
    pub(crate) fn close(&mut self, config: &Config, fx: &mut Effects<M>) {
        if self.closed {
            fx.set_drained(self.is_drained());
            return;
        }
        self.park_recent(Tick::now(), config, fx);
        self.closed = true;
        fx.flags |= REARM; // the maintenance task ends
        for w in self.waiters.live_ids() {
            self.serve(w, Err(Error::Closed), fx);
        }
        self.global_dial_waiters.clear();
        self.deadlines.clear();
        for (_, entry) in self.keys.iter_mut() {
            entry.idle_waiters.clear();
            entry.dial_waiters.clear();
            // Nothing will dial again: no failure to remember.
            entry.failed_at = None;
        }
        for id in self.keys.ids() {
            self.unused(id);
        }
        let now = Tick::now();
        while let Some((id, conn)) = self.idle.pop_lru() {
            let conn = conn.conn.expect("an idle connection is present");
            self.close_conn(id, conn, CloseReason::PoolClosed, now, config, fx);
        }
        self.finish(fx);
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
        // The recent connections are idle, only not parked yet; the gets
        // served from them are not counted yet.
        let recent = self.recent.len();
        let mut counters = self.counters.clone();
        counters.gets += self.recent.gets().1;
        PoolState {
            open: self.open,
            idle: self.idle.len() + recent,
            lent: self.lent - recent,
            borrowers: self.shared.borrowers(),
            dialing: self.dialing,
            pinging: self.pinging,
            waiting: self.waiting,
            closing: self.closing,
            keys: self.keys.len(),
            closed: self.closed,
            counters,
        }
    }

    pub(crate) fn key_snapshot(&self, key: &M::Key) -> Option<KeyState> {
        let id = self.keys.id(key)?;
        let entry = self.keys.get(id);
        let (recent, recent_gets) = match self.recent.gets() {
            (key, gets) if key == id => (self.recent.len(), gets),
            _ => (0, 0),
        };
        let mut counters = entry.counters.clone();
        counters.gets += recent_gets;
        Some(KeyState {
            open: entry.open,
            idle: self.idle.len_of(id) + recent,
            lent: entry.lent - recent,
            borrowers: self.shared.borrowers_of(id),
            dialing: entry.dialing,
            pinging: entry.pinging,
            waiting: entry.waiting,
            dial_failures_in_a_row: entry.failures,
            in_backoff: self.in_backoff(id, Tick::now()),
            counters,
        })
    }
}
