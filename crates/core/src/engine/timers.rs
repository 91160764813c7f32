//! **Time** ([`Transition::maintain`]): every connection carries its life
//! record ([`Conn`](crate::engine::Conn)). Each time one becomes idle, the first instant it needs
//! attention (lifetime, idle timeout or keepalive ping) arms the pool's one
//! maintenance task if it is earlier than its wake-up, and the entry is
//! *fresh* in the idle set. The task, when it wakes, moves the fresh entries
//! still idle into the deadline heap (a connection lent again before that
//! costs the heap nothing), sleeps until the earliest deadline, and then
//! closes what expired, reschedules what `min_idle` protects, and takes out
//! what is due a ping (counted in `pinging`; it is not lent meanwhile, and
//! comes back through the hand-off: see `tending`). Checkout and return look at the same
//! record, so a stale or expired connection is never lent even between two
//! wake-ups.
//!
//! A getter's checkout deadline is not among them: the getter keeps it
//! with a timer of its own (see `wait`).

use super::Transition;
use super::points::Points;
use crate::clock::Tick;
use crate::engine::{Due, IdleTimeout};
use crate::manager::Manager;
use crate::stats::CloseReason;

impl<M: Manager, P: Points<M>> Transition<'_, M, P> {
    /// The maintenance task's turn at `now`: closes idle connections past
    /// their lifetime or idle timeout (keeping `min_idle`), takes out those
    /// due a keepalive ping, refills keys whose backoff ended, wakes the
    /// getters past their checkout deadline. Returns when to run next.
    pub(crate) fn maintain(mut self) -> Option<Tick> {
        if self.st.closed {
            return None;
        }
        // Deadlines pushed now are all later than `now`: no rearm needed.
        self.st.timer_at = Some(self.now);
        let deadlines = &mut self.st.deadlines;
        self.st.records.drain_fresh(|r, conn| {
            if let Some(at) =
                conn.deadline(self.now, IdleTimeout::Runs, self.config, P::due(&conn.ext))
            {
                deadlines.push(at, Due::Idle(r));
            }
        });
        let idle = &self.st.records;
        self.st
            .deadlines
            .compact(idle.len() + self.st.keys.len(), |due| match due {
                Due::Idle(r) => idle.contains(r),
                Due::Key(_) | Due::Pool => true,
            });
        while let Some(due) = self.st.deadlines.pop_due(self.now) {
            let r = match due {
                Due::Key(id) => {
                    if self.st.keys.contains(id) {
                        P::on_key_due(&mut self, id);
                        self.st.unused(id);
                    }
                    continue;
                }
                Due::Pool => {
                    P::on_pool_due(&mut self);
                    continue;
                }
                Due::Idle(r) => r,
            };
            let Some((id, conn)) = self.st.records.get(r) else {
                continue; // lent (or closed) since
            };
            let stale = conn.is_stale(self.now, self.config);
            let idle = if stale && self.st.keeps_stale(id) {
                IdleTimeout::Deferred
            } else {
                IdleTimeout::Runs
            };
            if conn.is_expired(self.now) || (stale && idle == IdleTimeout::Runs) {
                let reason = if conn.is_expired(self.now) {
                    conn.expiry.reason()
                } else {
                    CloseReason::IdleTimeout
                };
                let (id, conn) = self.st.records.take(r).expect("idle");
                let conn = conn.conn.expect("an idle connection is present");
                self.close_conn(id, conn, reason);
            } else if P::due(&conn.ext) <= self.now {
                let (id, conn) = self.st.records.take(r).expect("idle");
                let conn = conn.map(|c| c.expect("an idle connection is present"));
                P::on_idle_due(&mut self, id, conn);
            } else if let Some(at) = conn.deadline(self.now, idle, self.config, P::due(&conn.ext)) {
                self.schedule(at, Due::Idle(r));
            }
        }
        let next = self.st.deadlines.next();
        self.st.timer_at = next;
        self.finish();
        next
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
