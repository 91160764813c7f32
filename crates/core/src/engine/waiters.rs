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
//! **Checkout deadlines** are the getter's own: its wait arms a timer
//! (see `wait`), so that no other task has to run for a getter to see its
//! deadline pass.

use std::task::Waker;

use slab::Slab;

use crate::clock::Tick;
use crate::engine::KeyId;
use crate::engine::Site;
use crate::engine::WaiterId;

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
mod tests {
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
