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
//! **The wait queues** ([`WaitQueue`]): each a FIFO of waiter ids whose
//! buffer is reused. A waiter that gives up leaves a stale entry behind,
//! skipped when it surfaces and dropped in bulk when stale entries could
//! outnumber live ones.

use super::points::{Event, Points};
use std::collections::VecDeque;
use std::task::Waker;
use std::time::Duration;

use super::{State, Transition};
use crate::clock::Tick;
use slab::Slab;

use crate::engine::{Back, KeyId, Lent, Site, WaiterId};
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

impl<M: Manager, P: Points<M>> Transition<'_, M, P> {
    /// Waiter `w` gives up. An outcome that had reached it meanwhile is
    /// passed on (see module docs).
    pub(crate) fn cancel(mut self, w: WaiterId) {
        let (waiter, outcome) = self.st.waiters.remove(w);
        let id = waiter.key;
        // Its key is alive unless it was served with an error.
        let alive = (!matches!(outcome, Some(Err(_)))).then_some(id);
        self.st.count_wait(waiter.since, self.now, alive);
        match outcome {
            None => {
                self.st.keys.unwait(id);
                let entry = self.st.keys.get_mut(id);
                entry.tidy_queues(|w| self.st.waiters.is_live(w));
                self.st.tidy_global_queue();
                self.st.unused(id);
            }
            Some(Ok((id, lent))) => match lent.back {
                Back::Own(slot, cid, ()) => {
                    // Served but never picked up: pass it on, as not lent.
                    let record = self.st.records.value_mut(cid);
                    record.conn = Some(lent.conn);
                    record.uses -= 1;
                    // Idle since its hand-off (the stamp of its loan).
                    self.st.keys.give_back(slot);
                    self.place(id, cid, true);
                }
                Back::Handle(_, slot) => P::unserve_handle(&mut self, id, slot),
            },
            Some(Err(_)) => {}
        }
        self.finish();
    }

    /// A getter whose get began at `began` hit its deadline: the outcome
    /// if one arrived just in time, else the timeout error (with the key's
    /// last dial error, and how long the get took).
    pub(crate) fn expire(self, w: WaiterId, began: Tick) -> Outcome<M> {
        if let Some(outcome) = self.st.poll_waiter(w, Waker::noop(), self.now) {
            // Served just in time.
            self.finish();
            return outcome;
        }
        // Still waiting, so the key is alive: read it before the cancel may forget it.
        let id = self.st.waiters.live(w).expect("not served: waiting").key;
        let waited = Tick::now().saturating_duration_since(began);
        let err = self.st.timeout_error(id, waited);
        self.cancel(w);
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

/// A FIFO of `T` whose buffer is reused: under a steady push/pop load it
/// reaches its working size once and never allocates again (the job of
/// Go's two-slice `wantConnQueue`, done by `VecDeque`'s ring).
///
/// Entries are never removed from the middle: a waiter that gives up leaves
/// a stale entry behind, which [`pop_live`](WaitQueue::pop_live) skips and
/// [`tidy`](WaitQueue::tidy) drops in bulk once stale entries could
/// outnumber the live waiters.
#[derive(Debug)]
pub(crate) struct WaitQueue<T>(VecDeque<T>);

impl<T> Default for WaitQueue<T> {
    fn default() -> Self {
        Self(VecDeque::new())
    }
}

/// Slack before a queue is compacted: avoids compacting tiny queues over and over.
const COMPACT_SLACK: usize = 16;

impl<T: Copy> WaitQueue<T> {
    /// Appends `item` at the back.
    pub(crate) fn push(&mut self, item: T) {
        self.0.push_back(item);
    }

    /// Pops entries until one satisfies `is_live` and returns it; the stale
    /// entries before it are dropped.
    pub(crate) fn pop_live(&mut self, is_live: impl Fn(T) -> bool) -> Option<T> {
        std::iter::from_fn(|| self.0.pop_front()).find(|&item| is_live(item))
    }

    /// With `live` waiters that may be queued here: empties the queue if
    /// there are none, and drops the entries `is_live` rejects once there
    /// are more than twice `live` of them (plus slack), keeping the order.
    pub(crate) fn tidy(&mut self, live: usize, is_live: impl Fn(T) -> bool) {
        if live == 0 {
            self.0.clear();
        } else if self.0.len() > 2 * live + COMPACT_SLACK {
            self.0.retain(|&item| is_live(item));
        }
    }
}

#[cfg(test)]
mod tests;
