//! The deadline heap: when the maintenance task must next look at each idle
//! connection (its lifetime, idle timeout or keepalive ping, whichever is
//! first), and when a key's dial backoff ends (so `min_idle` can be
//! refilled, and a key kept only for its backoff can be forgotten).
//!
//! One binary heap for the whole pool instead of a timer per connection: the
//! maintenance task sleeps until the earliest entry, so 100k idle connections
//! cost 100k heap entries (24 bytes each) and one sleeping task.
//!
//! Entries are never removed when their connection leaves the idle set (a
//! checkout would then pay O(n) to find them): they go stale, and are dropped
//! when they surface, or in bulk by [`Deadlines::compact`] once stale entries
//! could outnumber live ones.
//!
//! A push does not even touch the heap: it lands in a `pending` vector (with
//! its minimum kept), and the maintenance task moves the still-live pending
//! entries into the heap when it wakes ([`Deadlines::absorb`]). In a busy pool
//! most returned connections are lent again long before any deadline, so
//! their entries die in `pending` without a heap operation: a return costs a
//! vector push and a comparison, a checkout nothing, and both structures stay
//! within a constant factor of the idle set.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::clock::Tick;
use crate::idle::IdleRef;
use crate::keys::KeyId;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Due {
    /// An idle connection, valid while the idle set still holds that entry.
    Idle(IdleRef),
    /// A key whose dial backoff ends: refill it to `min_idle`, or forget it
    /// if nothing else keeps it. The id may have been reused by then (the
    /// backoff ended early); both actions are harmless on any key.
    BackoffEnd(KeyId),
}

/// A min-heap of deadlines.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    heap: BinaryHeap<Reverse<(Tick, Due)>>,
    /// Pushed since the last `absorb`.
    pending: Vec<(Tick, Due)>,
    /// The earliest instant in `pending`.
    pending_min: Option<Tick>,
}

/// Slack before compaction: a small heap is never worth compacting.
const COMPACT_SLACK: usize = 64;

impl Deadlines {
    pub(crate) fn push(&mut self, at: Tick, due: Due) {
        self.pending.push((at, due));
        if self.pending_min.is_none_or(|min| at < min) {
            self.pending_min = Some(at);
        }
    }

    /// Moves the live pending entries into the heap.
    pub(crate) fn absorb(&mut self, is_live: impl Fn(Due) -> bool) {
        for (at, due) in self.pending.drain(..) {
            if is_live(due) {
                self.heap.push(Reverse((at, due)));
            }
        }
        self.pending_min = None;
    }

    /// The earliest deadline, stale or not.
    pub(crate) fn next(&self) -> Option<Tick> {
        let top = self.heap.peek().map(|Reverse((at, _))| *at);
        match (top, self.pending_min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes the earliest heap entry if it is due at `now` (call
    /// [`absorb`](Deadlines::absorb) first).
    pub(crate) fn pop_due(&mut self, now: Tick) -> Option<Due> {
        let Reverse((at, _)) = self.heap.peek()?;
        if *at > now {
            return None;
        }
        self.heap.pop().map(|Reverse((_, due))| due)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len() + self.pending.len()
    }

    /// Drops stale entries once there are more than twice `live` of them
    /// (plus slack): amortized O(1) per push.
    pub(crate) fn compact(&mut self, live: usize, is_live: impl Fn(Due) -> bool) {
        let bound = 2 * live + COMPACT_SLACK;
        if self.pending.len() > bound {
            self.pending.retain(|(_, due)| is_live(*due));
            self.pending_min = self.pending.iter().map(|(at, _)| *at).min();
        }
        if self.heap.len() > bound {
            self.heap.retain(|Reverse((_, due))| is_live(*due));
        }
    }

    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.pending.clear();
        self.pending_min = None;
    }
}

#[cfg(test)]
mod tests {
    use super::{Deadlines, Due};
    use crate::clock::Tick;
    use crate::keys::KeyId;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let t0 = Tick::now();
        let mut d = Deadlines::default();
        for (i, s) in [5u64, 1, 3].into_iter().enumerate() {
            d.push(
                t0 + Duration::from_secs(s),
                Due::BackoffEnd(KeyId::from_index(i)),
            );
        }
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(
            d.pop_due(t0 + Duration::from_secs(9)),
            None,
            "pending until absorbed"
        );
        d.absorb(|_| true);
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(d.pop_due(t0), None);
        let at3 = t0 + Duration::from_secs(3);
        assert_eq!(d.pop_due(at3), Some(Due::BackoffEnd(KeyId::from_index(1))));
        assert_eq!(d.pop_due(at3), Some(Due::BackoffEnd(KeyId::from_index(2))));
        assert_eq!(d.pop_due(at3), None);
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn compaction_keeps_live_entries_only_past_the_bound() {
        let t0 = Tick::now();
        let mut d = Deadlines::default();
        for i in 0..200 {
            d.push(t0, Due::BackoffEnd(KeyId::from_index(i)));
        }
        let live = |due| matches!(due, Due::BackoffEnd(k) if k.index() < 10);
        d.compact(100, live);
        assert_eq!(d.len(), 200, "within the bound: untouched");
        d.compact(10, live);
        assert_eq!(d.len(), 10);
        // Absorbing drops what died while pending.
        d.push(t0, Due::BackoffEnd(KeyId::from_index(99)));
        d.absorb(live);
        assert_eq!(d.len(), 10);
        assert_eq!(d.next(), Some(t0));
    }
}
