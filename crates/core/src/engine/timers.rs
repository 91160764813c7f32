//! **Time** ([`Transition::maintain`]): every connection carries its life
//! record ([`Conn`]). Each time one becomes idle, the
//! first instant it needs attention (lifetime, idle timeout, or the
//! features' deadline, [`Points::due`]) arms the pool's one maintenance
//! task if it is earlier than its wake-up, and the entry is *fresh* in the
//! idle set. The task, when it wakes, moves the fresh entries still idle
//! into the deadline heap (a connection lent again before that costs the
//! heap nothing), sleeps until the earliest deadline, and then closes what
//! expired, reschedules what a key keeps ([`KeyPoints::keeps_stale`](crate::engine::KeyPoints::keeps_stale)), and
//! hands the features what is due to them ([`Points::on_idle_due`]; it is
//! not lent meanwhile, and comes back through the hand-off). Checkout and
//! return look at the same record, so a stale or expired connection is
//! never lent even between two wake-ups.
//!
//! A getter's checkout deadline is not among them: the getter keeps it
//! with a timer of its own (see `wait`).
//!
//! **The deadline heap**: when the maintenance task must next look at each
//! idle connection, and the features' deadlines, for a key or for the pool.
//! One binary heap for the whole pool instead of a timer per connection:
//! the maintenance task sleeps until the earliest entry, so 100k idle
//! connections cost 100k heap entries (24 bytes each) and one sleeping task. Entries are never removed when
//! their connection leaves the idle set (a checkout would then pay O(n) to
//! find them): they go stale, and are dropped when they surface, or in bulk
//! by [`Deadlines::compact`] once stale entries could outnumber live ones.
//! A return does not push here at all (see `records`): a return costs a
//! comparison with the armed wake-up, a checkout nothing, and the heap
//! stays within a constant factor of the idle set.

use super::Transition;
use super::points::Points;
use crate::clock::Tick;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::engine::{Conn, IdleRef, KeyId};
use crate::manager::Manager;
use crate::reason::CloseReason;

impl<M: Manager, P: Points<M>> Transition<'_, M, P> {
    /// The maintenance task's turn at `now`: closes idle connections past
    /// their lifetime or idle timeout (those their key keeps aside), hands
    /// the features the connections and keys due to them. Returns when to
    /// run next.
    pub(crate) fn maintain(mut self) -> Option<Tick> {
        if self.st.closed {
            return None;
        }
        // Deadlines pushed now are all later than `now`: no rearm needed.
        self.st.timer_at = Some(self.now);
        let deadlines = &mut self.st.deadlines;
        self.st.records.drain_fresh(|r, conn| {
            if let Some(at) = conn.deadline(conn.since, self.config, P::due) {
                deadlines.push(at, Due::Idle(r));
            }
        });
        let idle = &self.st.records;
        let live = idle.len() + self.st.keys.len();
        self.st.deadlines.compact(live, |due| match due {
            Due::Idle(r) => idle.contains(r),
            Due::Key(_) | Due::Pool => true,
        });
        while let Some(due) = self.st.deadlines.pop_due(self.now) {
            let r = match due {
                Due::Key(id) => {
                    if self.st.keys.contains(id) {
                        P::on_due(&mut self, Some(id));
                        self.st.unused(id);
                    }
                    continue;
                }
                Due::Pool => {
                    P::on_due(&mut self, None);
                    continue;
                }
                Due::Idle(r) => r,
            };
            let Some((id, conn)) = self.st.records.get(r) else {
                continue; // lent (or closed) since
            };
            let idle_from = match self.verdict(id, conn) {
                Ok(idle_from) => idle_from,
                Err(reason) => {
                    let (id, conn) = self.st.records.take(r).expect("idle");
                    let conn = conn.conn.expect("an idle connection is present");
                    self.close_conn(id, conn, reason);
                    continue;
                }
            };
            if P::due(&conn.ext) <= self.now {
                let (id, conn) = self.st.records.take(r).expect("idle");
                let conn = conn.map(|c| c.expect("an idle connection is present"));
                P::on_idle_due(&mut self, id, conn);
            } else if let Some(at) = conn.deadline(idle_from, self.config, P::due) {
                self.schedule(at, Due::Idle(r));
            }
        }
        let next = self.st.deadlines.next();
        self.st.timer_at = next;
        self.finish();
        next
    }

    /// Whether the idle connection `conn` of `id` is closed at `now` (and
    /// why), or from when its idle timeout counts: from when it went idle,
    /// or, for a stale one its key keeps
    /// ([`KeyPoints::keeps_stale`](crate::engine::KeyPoints::keeps_stale)),
    /// from now (it is looked at again a whole timeout later, not closed).
    pub(crate) fn verdict<C, X>(&self, id: KeyId, conn: &Conn<C, X>) -> Result<Tick, CloseReason> {
        if let Some(reason) = conn.expired(self.now) {
            Err(reason)
        } else if !self.config.idle_timed_out(conn.since, self.now) {
            Ok(conn.since)
        } else if self.st.keeps_stale(id) {
            Ok(self.now)
        } else {
            Err(CloseReason::IdleTimeout)
        }
    }

    pub(crate) fn schedule(&mut self, at: Tick, due: Due) {
        self.st.deadlines.push(at, due);
        self.arm(at);
    }

    /// Makes sure the maintenance task wakes by `at`.
    pub(crate) fn arm(&mut self, at: Tick) {
        if self.st.timer_at.is_none_or(|t| at < t) {
            self.st.timer_at = Some(at);
            self.fx.rearm_timer();
        }
    }
}

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Due {
    /// An idle connection, valid while the idle set still holds that entry.
    Idle(IdleRef),
    /// A feature's deadline for a key (see `Points::key_due`). The id may
    /// have been reused by then: what a feature does then is harmless on
    /// any key.
    Key(KeyId),
    /// A feature's deadline for the pool (see `Points::pool_due`).
    Pool,
}

/// A min-heap of deadlines.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    heap: BinaryHeap<Reverse<(Tick, Due)>>,
}

/// Slack before compaction: a small heap is never worth compacting.
const COMPACT_SLACK: usize = 64;

impl Deadlines {
    pub(crate) fn push(&mut self, at: Tick, due: Due) {
        self.heap.push(Reverse((at, due)));
    }

    /// The earliest deadline, stale or not.
    pub(crate) fn next(&self) -> Option<Tick> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Tick) -> Option<Due> {
        let Reverse((at, _)) = self.heap.peek()?;
        if *at > now {
            return None;
        }
        self.heap.pop().map(|Reverse((_, due))| due)
    }

    /// Drops stale entries once there are more than twice `live` of them
    /// (plus slack): amortized O(1) per push.
    pub(crate) fn compact(&mut self, live: usize, is_live: impl Fn(Due) -> bool) {
        if self.heap.len() > 2 * live + COMPACT_SLACK {
            self.heap.retain(|Reverse((_, due))| is_live(*due));
        }
    }

    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}

#[cfg(test)]
mod deadlines_tests {
    use super::{Deadlines, Due};
    use crate::clock::Tick;
    use crate::engine::KeyId;
    use std::time::Duration;

    impl Deadlines {
        fn len(&self) -> usize {
            self.heap.len()
        }
    }

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let t0 = Tick::now();
        let mut d = Deadlines::default();
        for (i, s) in [5u64, 1, 3].into_iter().enumerate() {
            d.push(t0 + Duration::from_secs(s), Due::Key(KeyId::from_index(i)));
        }
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(d.pop_due(t0), None);
        let at3 = t0 + Duration::from_secs(3);
        assert_eq!(d.pop_due(at3), Some(Due::Key(KeyId::from_index(1))));
        assert_eq!(d.pop_due(at3), Some(Due::Key(KeyId::from_index(2))));
        assert_eq!(d.pop_due(at3), None);
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn compaction_keeps_live_entries_only_past_the_bound() {
        let t0 = Tick::now();
        let mut d = Deadlines::default();
        for i in 0..200 {
            d.push(t0, Due::Key(KeyId::from_index(i)));
        }
        let live = |due| matches!(due, Due::Key(k) if k.index() < 10);
        d.compact(100, live);
        assert_eq!(d.len(), 200, "within the bound: untouched");
        d.compact(10, live);
        assert_eq!(d.len(), 10);
        assert_eq!(d.next(), Some(t0));
    }
}
