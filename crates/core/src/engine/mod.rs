//! The engine: the pool's state under its one lock, and every transition of
//! it. It names no feature; the features attach at its points
//! ([`Points`], in `points`).
//!
//! **Read in this order**: this file (the state, a transition, the
//! invariants); `checkout` (a get); `waiting` (a getter's wait, its cancel,
//! the waiter slots and queues); `handoff` (the return, the hand-off, slots
//! freed); `dials` (the dial race and its limits); `timers` (idle timeout,
//! lifetime, the deadline heap); `close`; `effects` (what a transition
//! decides); `keys` (keys, counts, slots) and `records` (idle connections
//! and their life records), the data the transitions work on; `points`.
//!
//! **One lock.** Everything the pool knows lives in [`State`], behind one
//! mutex (`parking_lot`'s, see `sync`) in
//! [`PoolInner`](crate::inner::PoolInner): the key registry, the connection
//! records, the waiter slots, the global dial queue, the counts, and the
//! features' records. Every transition runs with the lock held, never
//! awaits, never calls the manager and never logs; what it decides to *do*
//! (wake a getter, start a dial, close a connection) it records in
//! [`Effects`], which the caller carries out after releasing the lock. So a
//! transition is atomic, the lock is held for a few hundred nanoseconds at
//! most, and user code (the manager, a waker) never runs under it.
//!
//! **A transition** is a [`Transition`]: [`State::begin`] starts it, each
//! public step consumes it, and its `finish` forgets the keys it left
//! unused, tells whether a closed pool is drained and checks the counts.
//! The time, the configuration and the effects travel with it.
//!
//! **Counts.** Per key and in total, `open = idle + lent + dialing + out`
//! (see [`Counts`]: they change through one door, [`Keys`], the key's and
//! the pool's together). A connection out in a task (a dial, a feature's
//! task) counts through the task's [`Slot`]: taken when the task is
//! decided, held by the task's guard, given back by value with the task's
//! result (or by the guard's `Drop` if the task dies), so it cannot be
//! given back twice. A lent connection counts through its [`Slot`],
//! taken when it is lent: a connection lent exclusively carries it in its
//! borrower's guard (whose `Drop` gives it back once); one a feature lends,
//! in the feature's record. So only waiters, and idle connections closing,
//! change the counts without a slot. `open` is what the caps limit; a
//! connection stops counting the moment the pool decides to close it (its
//! `Manager::close` then runs in a task, counted in `closing` until it
//! ends). A connection handed to a waiter counts as lent from the hand-off
//! on, before the waiter has picked it up. `waiting` counts waiters that
//! have not been served. A connection lent exclusively keeps its record,
//! held (not idle): the borrower's guard carries the connection and the
//! record's [`ConnId`], and the return puts the connection back in the same
//! record. So the hand-off works on a `ConnId`: a connection coming free
//! from elsewhere (a dial, a feature's task) is first held in the records.
//!
//! **Forgetting keys.** A key with no connection and no waiter is
//! forgotten (unless the features remember it:
//! [`KeyPoints::remembers`]), but only when a transition finishes: a
//! `KeyId` held in the middle of one always stays valid. The ids that name
//! things here (a key, a waiter, a connection's record) are slab indexes,
//! with a generation where a slot is reused while an id may still be held.

mod checkout;
mod close;
mod dials;
mod effects;
mod handoff;
mod keys;
mod points;
mod records;
mod timers;
mod waiting;

pub(crate) use checkout::{Behind, Checkout};
pub(crate) use dials::Dialed;
pub(crate) use effects::{Action, DialOrder, Effects};
pub(crate) use handoff::{Back, Lent};
pub(crate) use keys::Keys;
pub(crate) use keys::{Counts, Place, Slot};
pub(crate) use points::{Checkup, Event, KeyPoints, Points, Round};
pub(crate) use records::{Conn, Site};
pub(crate) use records::{IdleRef, Records};
pub(crate) use timers::{Deadlines, Due};
pub(crate) use waiting::Outcome;
pub(crate) use waiting::WaitQueue;
pub(crate) use waiting::Waiters;

use crate::clock::Tick;
use crate::config::Config;

use crate::limits::Limits;
use crate::manager::Manager;

/// Everything the pool knows; see the module docs for the invariants.
///
/// Aligned to a cache line: behind the lock's byte (the mutex's data is its
/// last field), it starts on the next line, so a thread waiting for the lock
/// (spinning on the lock's line) does not pull the state's first fields
/// away from the thread that holds it. `repr(C)`: the fields a checkout
/// and a return touch come first, in the order written, on as few lines as
/// they fit.
#[repr(C, align(64))]
pub(crate) struct State<M: Manager, P: Points<M>> {
    pub(crate) keys: Keys<M::Key, M::Error, P::Keys>,
    /// Idle connections, and the records of those lent exclusively (their
    /// connection is `None` while the borrower has it).
    pub(crate) records: Records<Conn<Option<M::Connection>, P::Conn>>,
    pub(crate) waiters: Waiters<Outcome<M>>,
    /// Waiters whose key is under its cap but that found the pool at its cap.
    pub(crate) global_dial_waiters: WaitQueue<WaiterId>,
    pub(crate) deadlines: Deadlines,
    /// When the maintenance task wakes next (`None`: only when told).
    pub(crate) timer_at: Option<Tick>,
    /// Keys that may have become unused during the current transition.
    pub(crate) maybe_unused: Vec<KeyId>,
    /// `Manager::close` calls still running (their connections no longer
    /// count in the open count).
    pub(crate) closing: usize,
    pub(crate) closed: bool,
    /// A feature may close a connection that comes free
    /// ([`Points::closes_free`]). Next to `closed`: a return tests both at
    /// once.
    pub(crate) retiring: bool,
    /// The caps now: the configuration's, until they are changed.
    pub(crate) limits: Limits,
    /// What the features keep for the pool.
    pub(crate) ext: P::Pool,
}

impl<M: Manager, P: Points<M>> State<M, P> {
    /// Whether the key type has one value (a pool of one key: its key has
    /// no name worth printing).
    pub(crate) const ONE_KEY: bool = std::mem::size_of::<M::Key>() == 0;

    pub(crate) fn new(config: &Config) -> Self {
        let limits = config.limits;
        let (keys, ext) = P::new(config);
        Self {
            keys: Keys::new(keys),
            records: Records::default(),
            waiters: Waiters::default(),
            global_dial_waiters: WaitQueue::default(),
            deadlines: Deadlines::default(),
            timer_at: None,
            maybe_unused: Vec::new(),
            closing: 0,
            closed: false,
            limits,
            retiring: false,
            ext,
        }
    }

    /// Starts a transition at `now`.
    #[inline]
    pub(crate) fn begin<'a>(
        &'a mut self,
        now: Tick,
        config: &'a Config,
        fx: &'a mut Effects<M, P>,
    ) -> Transition<'a, M, P> {
        Transition {
            st: self,
            now,
            config,
            fx,
        }
    }

    /// The pool's counts (see [`Counts`]).
    #[inline]
    pub(crate) fn counts(&self) -> &Counts {
        self.keys.total()
    }

    /// Counts `event` of `id`, for the key and the pool together.
    #[inline]
    pub(crate) fn tally(&mut self, id: KeyId, event: Event) {
        P::count(&mut self.ext, event);
        P::Keys::count(&mut self.keys.get_mut(id).ext, event);
    }

    /// The counts agree with the structures that hold the connections
    /// (debug builds).
    #[inline]
    pub(crate) fn debug_check(&self) {
        let counts = self.counts();
        // The idle connections are the ones in the records that are not
        // held.
        debug_assert_eq!(counts.idle(), self.records.len());
        // No idle-set entry outlives its loan: every connection lent is
        // held there (exclusive) or by a feature.
        debug_assert_eq!(counts.lent, self.records.held() + P::lent_elsewhere(self));
    }

    pub(crate) fn unused(&mut self, id: KeyId) {
        self.maybe_unused.push(id);
    }

    /// Whether `id` keeps a stale idle connection (`len_of` still counts
    /// it).
    pub(crate) fn keeps_stale(&self, id: KeyId) -> bool {
        let ext = &self.keys.get(id).ext;
        self.keys.ext.keeps_stale(ext, self.records.len_of(id))
    }

    /// Takes the idle or held connection `cid` out of the idle set for good.
    pub(crate) fn remove_conn(&mut self, cid: ConnId) -> Conn<M::Connection, P::Conn> {
        self.records
            .remove(cid)
            .1
            .map(|conn| conn.expect("a held connection is present"))
    }

    /// Puts `conn`, of `id`, which has no idle-set entry yet (dialed, back
    /// from a task, or from a feature's record), in the idle set, held: not
    /// idle until parked. (`Records::hold` instead holds an entry it has.)
    pub(crate) fn hold_new(&mut self, id: KeyId, conn: Conn<M::Connection, P::Conn>) -> ConnId {
        self.records.insert(id, conn.map(Some))
    }
}

/// One transition of the state in progress: the state, held under the
/// lock, with the time it happens at, the pool's configuration and the
/// effects it decides. Made by [`State::begin`]; each public step consumes
/// it and ends with [`Transition::finish`].
pub(crate) struct Transition<'a, M: Manager, P: Points<M>> {
    pub(crate) st: &'a mut State<M, P>,
    pub(crate) now: Tick,
    pub(crate) config: &'a Config,
    pub(crate) fx: &'a mut Effects<M, P>,
}

impl<M: Manager, P: Points<M>> Transition<'_, M, P> {
    /// Ends the transition: forgets the keys it left unused, tells whether
    /// a closed pool is drained, and checks the counts (debug builds).
    #[inline]
    pub(crate) fn finish(self) {
        let st = self.st;
        if !st.maybe_unused.is_empty() {
            let now = Tick::now();
            while let Some(id) = st.maybe_unused.pop() {
                st.keys.forget_if_unused(id, now, st.closed);
            }
        }
        // `is_drained`, read only where it can be true.
        if st.closed && st.is_drained() {
            self.fx.mark_drained();
        }
        st.debug_check();
    }
}

/// Index of a key's state in the registry.
///
/// Stable while the key has an open connection or a live waiter: everything
/// that holds a `KeyId` (an idle entry, a lent guard, a dial, a waiter) is
/// counted in `open` or `waiting`, and the registry only forgets a key when
/// both are zero, so no `KeyId` outlives its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct KeyId(u32);

impl KeyId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }

    pub(crate) fn from_index(index: usize) -> Self {
        KeyId(u32::try_from(index).expect("more than 2^32 live keys"))
    }
}

/// A waiter's slot and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaiterId {
    pub(crate) slot: usize,
    pub(crate) generation: u64,
}

/// Names a connection the idle set holds, idle or not, until it is removed.
/// A connection lent exclusively keeps its entry (and its life record)
/// here: the borrower takes only the connection, and gives it back to the
/// same entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnId(pub(crate) u32);
