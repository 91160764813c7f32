//! Waiter slots: where a getter that found no idle connection waits for one.
//!
//! A slot lives in a [`Slab`] under the pool's lock. Whoever serves a waiter
//! (a returning borrower, a finished dial, `close`) writes the outcome into the
//! slot and takes its waker, to wake it once the lock is released. The getter
//! removes the slot when it picks the outcome up, or when it gives up; in the
//! second case an outcome that had already arrived is passed on (a connection
//! goes back through the return path), so nothing is lost either way.
//!
//! Queues refer to slots by [`WaiterId`], which carries a generation: a slot
//! index is reused by later waiters, and a stale queue entry must not be
//! mistaken for its new occupant.
//!
//! Outcomes live in a slab of their own, named by the slot: a waiter is
//! served once and waits long, so its slot stays small (48 bytes, where an
//! outcome holding a whole connection record is larger than all the rest)
//! and only the waiters served but not yet woken hold an outcome.
//!
//! **Checkout deadlines.** A getter does not arm a timer of its own: its
//! deadline goes into one queue for the whole pool, which the maintenance
//! task (already asleep until the pool's next deadline) reads to wake the
//! getters whose deadline passed; each then gives up through the usual
//! cancel path. Every get of a pool has the same `checkout_timeout`, so the
//! deadlines arrive nearly in order: the queue is a `VecDeque` kept sorted,
//! where a push is almost always at the back, and a waiter served in
//! arrival order takes its entry off the front. Entries of waiters served
//! out of order go stale and are dropped when they surface, or in bulk once
//! they could outnumber the slots. A tokio timer per waiting get costs two
//! locks of the timer wheel (arm and cancel) on every get that waits.

use std::collections::VecDeque;
use std::task::Waker;

use slab::Slab;

use crate::clock::Tick;
use crate::store::KeyId;
use crate::store::Site;
use crate::store::WaiterId;

/// `Waiter::outcome` of a waiter not served yet.
const WAITING: u32 = u32::MAX;

/// A getter waiting for a connection of `key`.
#[derive(Debug)]
pub(crate) struct Waiter {
    generation: u64,
    pub(crate) key: KeyId,
    pub(crate) since: Tick,
    /// Where the getter called `get` (for leak reports).
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
/// removes its outcome too. `deadlines` is sorted by deadline, and holds
/// one entry for each live waiter with a deadline (and stale ones).
#[derive(Debug)]
pub(crate) struct Waiters<T> {
    slots: Slab<Waiter>,
    outcomes: Slab<T>,
    next_generation: u64,
    deadlines: VecDeque<(Tick, WaiterId)>,
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Self {
            slots: Slab::new(),
            outcomes: Slab::new(),
            next_generation: 0,
            deadlines: VecDeque::new(),
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

    /// Gives the live waiter `id` its checkout deadline `at`; true if it is
    /// now the earliest (the maintenance task must wake by then).
    pub(crate) fn set_deadline(&mut self, id: WaiterId, at: Tick) -> bool {
        if self.deadlines.len() >= 2 * self.slots.len() + 16 {
            let slots = &self.slots;
            self.deadlines
                .retain(|&(_, w)| slots.get(w.slot).is_some_and(|s| s.waits_as(w)));
        }
        let at_back = self.deadlines.back().is_none_or(|&(last, _)| last <= at);
        let place = if at_back {
            self.deadlines.len()
        } else {
            // A getter that read the clock just before another took the
            // lock.
            self.deadlines.partition_point(|&(t, _)| t <= at)
        };
        self.deadlines.insert(place, (at, id));
        place == 0
    }

    /// Takes the wakers of the live waiters whose deadline is `now` or
    /// earlier (each then finds its deadline passed and gives up); returns
    /// the next deadline.
    pub(crate) fn wake_due(&mut self, now: Tick, mut wake: impl FnMut(Waker)) -> Option<Tick> {
        while let Some(&(at, w)) = self.deadlines.front() {
            if at > now {
                return Some(at);
            }
            self.deadlines.pop_front();
            if let Some(waker) = self
                .slots
                .get_mut(w.slot)
                .filter(|s| s.waits_as(w))
                .and_then(|s| s.waker.take())
            {
                wake(waker);
            }
        }
        None
    }

    /// Drops the stale entries at the front of `deadlines`.
    fn drop_stale_deadlines(&mut self) {
        while let Some(&(_, w)) = self.deadlines.front()
            && !self.is_live(w)
        {
            self.deadlines.pop_front();
        }
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
        self.drop_stale_deadlines();
        Some((w, outcome))
    }

    /// Removes the slot of a getter that gives up, with the outcome that may
    /// have reached it in the meantime.
    pub(crate) fn remove(&mut self, id: WaiterId) -> (Waiter, Option<T>) {
        debug_assert_eq!(self.slots[id.slot].generation, id.generation);
        let w = self.slots.remove(id.slot);
        let outcome = (w.outcome != WAITING).then(|| self.outcomes.remove(w.outcome as usize));
        self.drop_stale_deadlines();
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
mod tests {
    use super::Waiters;
    use crate::clock::Tick;
    use crate::store::KeyId;
    use std::task::Waker;
    use std::time::Duration;

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

    #[test]
    fn deadlines_stay_sorted_and_wake_only_live_waiters_that_are_due() {
        let mut w = Waiters::<u32>::default();
        let now = Tick::now();
        let t = |ms: u64| now + Duration::from_millis(ms);
        let key = KeyId::from_index(0);
        let (a, b, c) = (
            w.insert(key, t(0), None),
            w.insert(key, t(0), None),
            w.insert(key, t(0), None),
        );
        assert!(w.set_deadline(a, t(100)), "the first is the earliest");
        assert!(!w.set_deadline(b, t(300)));
        // A deadline earlier than the last (a getter that read the clock
        // first but took the lock second): sorted in, not last.
        assert!(!w.set_deadline(c, t(200)));
        let order: Vec<_> = w.deadlines.iter().map(|d| d.1).collect();
        assert_eq!(order, [a, c, b]);
        for id in [a, b, c] {
            w.poll(id, Waker::noop());
        }
        // `a` was served: its entry is stale. Due at 250 ms: only `c` wakes.
        w.serve(a, 1);
        let mut woken = 0;
        assert_eq!(w.wake_due(t(250), |_| woken += 1), Some(t(300)));
        assert_eq!(woken, 1);
        // Woken once: its waker is gone until it polls again.
        assert_eq!(w.wake_due(t(250), |_| woken += 1), Some(t(300)));
        assert_eq!(woken, 1);
    }

    #[test]
    fn deadlines_of_served_waiters_do_not_pile_up() {
        let mut w = Waiters::<u32>::default();
        let key = KeyId::from_index(0);
        let now = Tick::now();
        // One waiter that stays at the front, and many served after it
        // (their entries cannot leave from the front).
        let stuck = w.insert(key, now, None);
        w.set_deadline(stuck, now);
        for i in 0..1000 {
            let id = w.insert(key, now, None);
            w.set_deadline(id, now + Duration::from_millis(i));
            w.serve(id, 0);
            w.poll(id, Waker::noop()).expect("served");
            // Compacted when a push finds 2 × 2 slots + 16 entries.
            assert!(w.deadlines.len() <= 20, "{}", w.deadlines.len());
        }
        // Served in arrival order, they leave from the front at once.
        w.remove(stuck);
        let id = w.insert(key, now, None);
        w.set_deadline(id, now);
        w.serve(id, 0);
        w.poll(id, Waker::noop());
        assert!(w.deadlines.is_empty());
    }

    #[test]
    fn outcomes_leave_with_their_slots() {
        let mut w = Waiters::<String>::default();
        let now = Tick::now();
        let ids: Vec<_> = (0..4)
            .map(|_| w.insert(KeyId::from_index(0), now, None))
            .collect();
        w.serve(ids[2], "two".into());
        w.serve(ids[0], "zero".into());
        assert_eq!(w.outcomes.len(), 2);
        // Served, then given up: the outcome comes back with the slot.
        assert_eq!(w.remove(ids[0]).1.as_deref(), Some("zero"));
        // Given up unserved: no outcome.
        assert_eq!(w.remove(ids[1]).1, None);
        w.serve(ids[3], "three".into());
        assert_eq!(w.poll(ids[3], Waker::noop()).unwrap().1, "three");
        assert_eq!(w.poll(ids[2], Waker::noop()).unwrap().1, "two");
        assert!(w.slots.is_empty() && w.outcomes.is_empty());
        assert_eq!(std::mem::size_of::<super::Waiter>(), 48);
    }
}
