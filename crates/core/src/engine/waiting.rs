//! **Waiting and cancellation** ([`Transition::cancel`]): a getter that
//! gives up removes its slot. If nothing had reached it, its queue entries
//! turn stale (they are skipped, and compacted away in bulk); a dial
//! started for it carries on and its connection serves the next waiter or
//! goes idle. If a connection had reached it in the meantime, that
//! connection goes through the hand-off again: the next waiter gets it (a
//! handle a feature lent goes back to the feature,
//! [`Points::unserve_handle`]). Nothing is counted twice or lost.
//!
//! **Waiter slots** ([`Waiters`]): where a getter that found no idle
//! connection waits for one. A slot lives in a [`Slab`] under the pool's
//! lock. Whoever serves a waiter (a returning borrower, a finished dial,
//! `close`) writes the outcome into the slot and takes its waker, to wake
//! it once the lock is released. The getter removes the slot when it picks
//! the outcome up, or when it gives up; in the second case an outcome that
//! had already arrived is passed on, so nothing is lost either way. Queues
//! refer to slots by [`WaiterId`], which carries a generation: a slot index
//! is reused by later waiters, and a stale queue entry must not be mistaken
//! for its new occupant. Outcomes live in a slab of their own, named by the
//! slot: a waiter is served once and waits long, so its slot stays small
//! and only the waiters served but not yet woken hold an outcome.
//!
//! **Checkout deadlines** are the getter's own: its wait arms a timer (see
//! `wait`), so that no other task has to run for a getter to see its
//! deadline pass.
//!
//! **The wait queue** ([`WaitQueue`]): a FIFO made of two slices, as Go's
//! `wantConnQueue`. `head` is read from the front (at `head_pos`), `tail`
//! is pushed onto. When `head` runs dry the two are swapped, so both
//! backing vectors are reused forever: under a steady push/pop load the
//! queue reaches its working size once and never allocates again. Entries
//! are never removed from the middle: a waiter that gives up leaves a stale
//! entry behind; whoever pops skips entries its `is_live` predicate
//! rejects, and [`WaitQueue::compact`] drops them in bulk when the owner
//! sees that stale entries outnumber live ones.

use super::points::{Event, Points};
use std::task::Waker;
use std::time::Duration;

use super::{State, Transition};
use crate::clock::Tick;
use slab::Slab;

use crate::engine::{Change, KeyId, Lent, Site, WaiterId};
use crate::error::Error;
use crate::manager::Manager;

/// What a waiter is served with.
pub(crate) type Outcome<M> =
    Result<(KeyId, Lent<<M as Manager>::Connection>), Error<<M as Manager>::Error>>;

impl<M: Manager, P: Points<M>> State<M, P> {
    /// The outcome of waiter `w` if it was served (removing its slot and
    /// counting its wait as ended `now`, by the pool's clock); otherwise
    /// registers `waker`.
    pub(crate) fn poll_waiter(
        &mut self,
        w: WaiterId,
        waker: &Waker,
        now: Tick,
    ) -> Option<Outcome<M>> {
        let (waiter, outcome) = self.waiters.poll(w, waker)?;
        // A waiter served with a connection keeps its key alive (the
        // connection is lent); one served with an error does not.
        self.count_wait(waiter.since, now, outcome.is_ok().then_some(waiter.key));
        Some(outcome)
    }

    /// Counts the wait of a getter waiting `since` until `now`, for the
    /// pool, and for its key if the key is still alive (`alive_key`).
    pub(crate) fn count_wait(&mut self, since: Tick, now: Tick, alive_key: Option<KeyId>) {
        let waited = now.saturating_duration_since(since);
        match alive_key {
            Some(id) => self.tally(id, Event::WaitTime(waited)),
            None => P::count(&mut self.ext, Event::WaitTime(waited)),
        }
    }

    /// A getter of `id` ran into its checkout deadline (waiting, or
    /// during a check): counts it and builds the error, with the key's last
    /// dial error.
    pub(crate) fn timeout_error(&mut self, id: KeyId, waited: Duration) -> Error<M::Error> {
        self.tally(id, Event::Timeout);
        Error::Timeout {
            key: None,
            waited,
            last_connect_error: self.keys.get(id).last_error.clone(),
            foreign_runtime: false,
        }
    }
}

/// What a waiter that gives up does with an outcome that reached it
/// meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arrived {
    /// Keep it: the getter takes it after all.
    Take,
    /// Pass it on, as if it had never arrived.
    PassOn,
}

impl<M: Manager, P: Points<M>> Transition<'_, M, P> {
    /// Waiter `w` gives up. An outcome that had reached it meanwhile is
    /// returned or passed on (see module docs), as `arrived` says.
    pub(crate) fn cancel(mut self, w: WaiterId, arrived: Arrived) -> Option<Outcome<M>> {
        let (waiter, outcome) = self.st.waiters.remove(w);
        let id = waiter.key;
        // Its key is alive unless it was served with an error.
        let alive = !matches!(outcome, Some(Err(_)));
        self.st
            .count_wait(waiter.since, self.now, alive.then_some(id));
        let result = match outcome {
            None => {
                self.st.keys.recount(id, Change::Unwait);
                let entry = self.st.keys.get_mut(id);
                entry.tidy_queues(|w| self.st.waiters.is_live(w));
                self.st.tidy_global_queue();
                self.st.unused(id);
                None
            }
            Some(outcome) if arrived == Arrived::Take => Some(outcome),
            Some(Ok((
                id,
                Lent::Own {
                    conn,
                    id: cid,
                    lent,
                    ..
                },
            ))) => {
                // Served but never picked up: pass it on, as not lent.
                let record = self.st.records.value_mut(cid);
                record.conn = Some(conn);
                record.uses -= 1;
                // Idle since its hand-off (the stamp of its loan).
                self.st.keys.unlend(lent);
                self.place_own(id, cid);
                None
            }
            Some(Ok((id, Lent::Handle { slot, .. }))) => {
                P::unserve_handle(&mut self, id, slot);
                None
            }
            Some(Err(_)) => None,
        };
        self.finish();
        result
    }

    /// A getter whose get began at `began` hit its deadline: the outcome
    /// if one arrived just in time, else the timeout error (with the key's
    /// last dial error, and how long the get took).
    pub(crate) fn expire(self, w: WaiterId, began: Tick) -> Outcome<M> {
        let Some(id) = self.st.waiters.live(w).map(|w| w.key) else {
            // Served just in time.
            return self
                .cancel(w, Arrived::Take)
                .expect("a waiter that is not live was served");
        };
        // Still waiting, so the key is alive: read it before the cancel may forget it.
        let err = self
            .st
            .timeout_error(id, Tick::now().saturating_duration_since(began));
        self.cancel(w, Arrived::PassOn);
        Err(err)
    }
}

/// `Waiter::outcome` of a waiter not served yet.
const WAITING: u32 = u32::MAX;

/// A getter waiting for a connection of `key`.
#[derive(Debug)]
pub(crate) struct Waiter {
    generation: u64,
    pub(crate) key: KeyId,
    pub(crate) since: Tick,
    /// Where the getter called `get`.
    pub(crate) site: Site,
    waker: Option<Waker>,
    /// [`WAITING`] while waiting; set once, by whoever serves the waiter,
    /// to its outcome's index in [`Waiters::outcomes`].
    outcome: u32,
}

impl Waiter {
    /// Whether this slot is `id`'s and still waiting.
    fn waits_as(&self, id: WaiterId) -> bool {
        self.generation == id.generation && self.outcome == WAITING
    }
}

/// The waiter slots of a pool; `T` is what a waiter is served with.
///
/// Invariants: `outcomes` holds exactly the outcomes of the served slots
/// (each slot's `outcome` names its own), so removing a served slot
/// removes its outcome too.
#[derive(Debug)]
pub(crate) struct Waiters<T> {
    slots: Slab<Waiter>,
    outcomes: Slab<T>,
    next_generation: u64,
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Self {
            slots: Slab::new(),
            outcomes: Slab::new(),
            next_generation: 0,
        }
    }
}

impl<T> Waiters<T> {
    /// Opens a slot for a getter of `key`.
    pub(crate) fn insert(&mut self, key: KeyId, since: Tick, site: Site) -> WaiterId {
        let generation = self.next_generation;
        self.next_generation += 1;
        let slot = self.slots.insert(Waiter {
            generation,
            key,
            since,
            site,
            waker: None,
            outcome: WAITING,
        });
        WaiterId { slot, generation }
    }

    /// The waiter `id`, if it is still waiting (not served, not gone).
    pub(crate) fn live(&self, id: WaiterId) -> Option<&Waiter> {
        self.slots.get(id.slot).filter(|w| w.waits_as(id))
    }

    /// Whether `id` is still waiting.
    pub(crate) fn is_live(&self, id: WaiterId) -> bool {
        self.live(id).is_some()
    }

    /// Serves the live waiter `id` with `outcome` and returns its waker, to
    /// be woken once the pool's lock is released.
    ///
    /// Panics if `id` is not live: callers check first, under the same lock.
    pub(crate) fn serve(&mut self, id: WaiterId, outcome: T) -> Option<Waker> {
        let w = &mut self.slots[id.slot];
        debug_assert!(w.generation == id.generation && w.outcome == WAITING);
        w.outcome = u32::try_from(self.outcomes.insert(outcome))
            .expect("fewer than 2^32 - 1 served waiters");
        w.waker.take()
    }

    /// The outcome of `id` if it was served, removing the slot; otherwise
    /// stores `waker` to be woken when it is.
    pub(crate) fn poll(&mut self, id: WaiterId, waker: &Waker) -> Option<(Waiter, T)> {
        let w = &mut self.slots[id.slot];
        debug_assert_eq!(w.generation, id.generation);
        if w.outcome == WAITING {
            match &mut w.waker {
                Some(old) if old.will_wake(waker) => {}
                slot => *slot = Some(waker.clone()),
            }
            return None;
        }
        let w = self.slots.remove(id.slot);
        let outcome = self.outcomes.remove(w.outcome as usize);
        Some((w, outcome))
    }

    /// Removes the slot of a getter that gives up, with the outcome that may
    /// have reached it in the meantime.
    pub(crate) fn remove(&mut self, id: WaiterId) -> (Waiter, Option<T>) {
        debug_assert_eq!(self.slots[id.slot].generation, id.generation);
        let w = self.slots.remove(id.slot);
        let outcome = (w.outcome != WAITING).then(|| self.outcomes.remove(w.outcome as usize));
        (w, outcome)
    }

    /// Every live waiter, for `close`.
    pub(crate) fn live_ids(&self) -> Vec<WaiterId> {
        self.slots
            .iter()
            .filter(|(_, w)| w.outcome == WAITING)
            .map(|(slot, w)| WaiterId {
                slot,
                generation: w.generation,
            })
            .collect()
    }
}

#[cfg(test)]
mod waiters_tests {
    use super::Waiters;
    use crate::clock::Tick;
    use crate::engine::KeyId;
    use std::task::Waker;

    #[test]
    fn a_reused_slot_does_not_answer_for_a_stale_id() {
        let mut w = Waiters::<u32>::default();
        let now = Tick::now();
        let a = w.insert(KeyId::from_index(0), now, None);
        assert!(w.is_live(a));
        let (_, outcome) = w.remove(a);
        assert_eq!(outcome, None);
        let b = w.insert(KeyId::from_index(0), now, None);
        assert!(!w.is_live(a), "stale id must not see the new occupant");
        assert!(w.is_live(b));
        assert!(w.serve(b, 7).is_none());
        assert!(!w.is_live(b), "a served waiter is no longer live");
        let (_, outcome) = w.poll(b, Waker::noop()).expect("served");
        assert_eq!(outcome, 7);
    }
}

/// A FIFO of `T` backed by two reusable vectors.
#[derive(Debug)]
pub(crate) struct WaitQueue<T> {
    /// Entries to pop, from `head_pos` on; `head[..head_pos]` is spent.
    head: Vec<T>,
    head_pos: usize,
    /// Entries pushed since `head` was last refilled.
    tail: Vec<T>,
}

impl<T> Default for WaitQueue<T> {
    fn default() -> Self {
        Self {
            head: Vec::new(),
            head_pos: 0,
            tail: Vec::new(),
        }
    }
}

impl<T: Copy> WaitQueue<T> {
    /// Number of entries, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.head.len() - self.head_pos + self.tail.len()
    }

    /// Appends `item` at the back.
    pub(crate) fn push(&mut self, item: T) {
        self.tail.push(item);
    }

    /// Removes and returns the front entry.
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.head_pos == self.head.len() {
            if self.tail.is_empty() {
                return None;
            }
            // `head` is spent: reuse its allocation as the next `tail`.
            self.head.clear();
            self.head_pos = 0;
            std::mem::swap(&mut self.head, &mut self.tail);
        }
        let item = self.head[self.head_pos];
        self.head_pos += 1;
        Some(item)
    }

    /// Pops entries until one satisfies `is_live` and returns it; the stale
    /// entries before it are dropped.
    pub(crate) fn pop_live(&mut self, mut is_live: impl FnMut(T) -> bool) -> Option<T> {
        while let Some(item) = self.pop() {
            if is_live(item) {
                return Some(item);
            }
        }
        None
    }

    /// Drops every entry that `is_live` rejects, keeping the order of the rest.
    pub(crate) fn compact(&mut self, mut is_live: impl FnMut(T) -> bool) {
        self.head.drain(..self.head_pos);
        self.head_pos = 0;
        self.head.retain(|&item| is_live(item));
        self.tail.retain(|&item| is_live(item));
        self.head.append(&mut self.tail);
    }

    /// Drops every entry, keeping both allocations.
    pub(crate) fn clear(&mut self) {
        self.head.clear();
        self.head_pos = 0;
        self.tail.clear();
    }
}

#[cfg(test)]
mod queue_tests {
    use super::WaitQueue;

    impl<T: Copy> WaitQueue<T> {
        /// True when no entry (live or stale) is queued.
        fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Bytes reserved by both vectors (for the memory figures).
        fn capacity(&self) -> usize {
            self.head.capacity() + self.tail.capacity()
        }
    }

    #[test]
    fn fifo_order_across_swaps() {
        let mut q = WaitQueue::default();
        for i in 0..5 {
            q.push(i);
        }
        assert_eq!(q.pop(), Some(0));
        assert_eq!(q.pop(), Some(1));
        // Pushed while `head` still holds 2..5: must come out after them.
        q.push(5);
        q.push(6);
        let rest: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(rest, vec![2, 3, 4, 5, 6]);
        assert!(q.is_empty());
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn steady_push_pop_reuses_capacity() {
        let mut q = WaitQueue::default();
        // Reach a working size of 8 outstanding entries.
        for i in 0..8 {
            q.push(i);
        }
        for i in 8..100 {
            q.push(i);
            q.pop();
        }
        let warmed = q.capacity();
        for i in 100..100_000 {
            q.push(i);
            assert!(q.pop().is_some());
        }
        assert_eq!(q.capacity(), warmed, "steady load must not grow the queue");
        assert_eq!(q.len(), 8);
    }

    #[test]
    fn pop_live_skips_stale_entries() {
        let mut q = WaitQueue::default();
        for i in 0..6 {
            q.push(i);
        }
        let cancelled = [0, 1, 3];
        let live = |i: i32| !cancelled.contains(&i);
        assert_eq!(q.pop_live(live), Some(2));
        assert_eq!(q.pop_live(live), Some(4));
        assert_eq!(q.pop_live(live), Some(5));
        assert_eq!(q.pop_live(live), None);
        assert!(q.is_empty());
    }

    #[test]
    fn compact_keeps_order_of_live_entries() {
        let mut q = WaitQueue::default();
        for i in 0..4 {
            q.push(i);
        }
        q.pop(); // 0 spent in head
        for i in 4..8 {
            q.push(i); // in tail
        }
        q.compact(|i| i % 2 == 1);
        assert_eq!(q.len(), 4);
        let rest: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(rest, vec![1, 3, 5, 7]);
    }

    #[test]
    fn clear_empties_both_slices() {
        let mut q = WaitQueue::default();
        q.push(1);
        q.push(2);
        q.pop();
        q.push(3);
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.pop(), None);
    }

    /// Model-based property test: random push / pop / pop_live / compact /
    /// clear sequences against a `VecDeque`, with a random liveness set
    /// (entries "cancelled" while queued). After every step the lengths
    /// agree; every pop returns the model's front (FIFO across the two
    /// slices); the backing storage never exceeds what the largest queue
    /// seen needs (each vector at most twice the most entries ever queued,
    /// Vec's doubling); and a steady push/pop phase afterwards allocates
    /// nothing once warmed up.
    mod model {
        use std::collections::{HashSet, VecDeque};

        use proptest::prelude::*;

        use super::super::WaitQueue;

        #[derive(Debug, Clone)]
        enum Op {
            /// Push the next id.
            Push,
            /// Push this many ids in a row.
            PushMany(u8),
            Pop,
            PopLive,
            /// Mark the i-th queued entry (modulo the length) stale.
            Cancel(usize),
            Compact,
            Clear,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                8 => Just(Op::Push),
                1 => (1u8..40).prop_map(Op::PushMany),
                6 => Just(Op::Pop),
                4 => Just(Op::PopLive),
                4 => any::<usize>().prop_map(Op::Cancel),
                1 => Just(Op::Compact),
                1 => Just(Op::Clear),
            ]
        }

        /// Vec's smallest non-zero capacity for 4-byte elements is 4; 8
        /// leaves room for any allocator rounding rule of the std.
        fn storage_bound(most_queued: usize) -> usize {
            2 * (2 * most_queued).max(8)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn behaves_like_a_vecdeque(
                ops in proptest::collection::vec(op(), 1..300),
                steady in 1usize..20,
            ) {
                let mut q = WaitQueue::<u32>::default();
                let mut model = VecDeque::<u32>::new();
                let mut stale = HashSet::<u32>::new();
                let mut next = 0u32;
                let mut most_queued = 0usize;
                for op in ops {
                    match op {
                        Op::Push => {
                            q.push(next);
                            model.push_back(next);
                            next += 1;
                        }
                        Op::PushMany(n) => {
                            for _ in 0..n {
                                q.push(next);
                                model.push_back(next);
                                next += 1;
                            }
                        }
                        Op::Pop => prop_assert_eq!(q.pop(), model.pop_front()),
                        Op::PopLive => {
                            let want = loop {
                                match model.pop_front() {
                                    Some(id) if stale.contains(&id) => continue,
                                    other => break other,
                                }
                            };
                            let mut asked = Vec::new();
                            let got = q.pop_live(|id| {
                                asked.push(id);
                                !stale.contains(&id)
                            });
                            prop_assert_eq!(got, want);
                            // The predicate saw the entries in FIFO order, each once.
                            prop_assert!(asked.windows(2).all(|w| w[0] < w[1]), "{:?}", asked);
                        }
                        Op::Cancel(i) => {
                            if !model.is_empty() {
                                stale.insert(model[i % model.len()]);
                            }
                        }
                        Op::Compact => {
                            q.compact(|id| !stale.contains(&id));
                            model.retain(|id| !stale.contains(id));
                        }
                        Op::Clear => {
                            q.clear();
                            model.clear();
                        }
                    }
                    most_queued = most_queued.max(model.len());
                    prop_assert_eq!(q.len(), model.len());
                    prop_assert_eq!(q.is_empty(), model.is_empty());
                    prop_assert!(
                        q.capacity() <= storage_bound(most_queued),
                        "capacity {} with at most {} queued",
                        q.capacity(),
                        most_queued
                    );
                }

                // Steady load: `steady` entries outstanding, one push per pop.
                while model.len() < steady {
                    q.push(next);
                    model.push_back(next);
                    next += 1;
                }
                while model.len() > steady {
                    prop_assert_eq!(q.pop(), model.pop_front());
                }
                let round = |q: &mut WaitQueue<u32>, model: &mut VecDeque<u32>, next: &mut u32| {
                    q.push(*next);
                    model.push_back(*next);
                    *next += 1;
                    (q.pop(), model.pop_front())
                };
                // Two full swaps of both slices reach the working size.
                for _ in 0..4 * (steady + 1) {
                    let (got, want) = round(&mut q, &mut model, &mut next);
                    prop_assert_eq!(got, want);
                }
                let warmed = q.capacity();
                for _ in 0..2_000 {
                    let (got, want) = round(&mut q, &mut model, &mut next);
                    prop_assert_eq!(got, want);
                }
                prop_assert_eq!(q.capacity(), warmed, "steady load grew the queue");
                prop_assert_eq!(q.len(), steady);
                let rest: Vec<u32> = std::iter::from_fn(|| q.pop()).collect();
                prop_assert_eq!(rest, Vec::from(model));
            }
        }
    }
}
