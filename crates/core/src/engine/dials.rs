//! **Dials** ([`Transition::dial_done`]): a dial runs in a task of its own,
//! started *for* one waiter. Success: the connection serves that waiter if
//! it still waits, else goes through the hand-off. Failure: the error is
//! recorded as the key's last dial error, goes to that waiter if it still
//! waits, and the slot is released (so the next dial waiter gets a dial).
//!
//! **Finding a dial** for a new waiter ([`Transition::find_dial`]), and
//! **dial limits**: at most `max_connecting` dials of a key run at once,
//! and the features may hold a key's dials back (both
//! [`KeyPoints::allows_dial`]); a getter past that waits in the key's dial
//! queue, like one at the key's cap, and gets a dial when one ends. The
//! features may also expect the dials in flight to serve every waiter
//! ([`Points::dials_cover`]). A dial's result goes to the features first
//! ([`Points::on_dialed`], [`Points::on_dial_failed`]).

use super::checkout::Behind;
use super::effects::{Action, DialOrder};
use super::points::{Event, KeyPoints, Points};
use super::{State, Transition};
use crate::clock::Tick;
use crate::config::Config;
use crate::engine::{Conn, KeyId, Place, Slot, WaiterId};
use crate::error::{ConnectError, Error};
use crate::manager::Manager;
use crate::reason::CloseReason;

/// What a dial produced: the connection, and what the features learn of
/// it in the dial's task ([`Points::Info`]).
pub(crate) type Dialed<M, P> = Result<
    (<M as Manager>::Connection, <P as Points<M>>::Info),
    ConnectError<<M as Manager>::Error>,
>;

impl<M: Manager, P: Points<M>> State<M, P> {
    pub(crate) fn tidy_global_queue(&mut self) {
        let live = self.counts().waiting;
        self.global_dial_waiters
            .tidy(live, |w| self.waiters.is_live(w));
    }

    /// Whether a dial of `id` may start, the pool's own cap aside.
    pub(crate) fn key_can_dial(&self, id: KeyId, now: Tick, config: &Config) -> bool {
        let entry = self.keys.get(id);
        entry.counts().open < self.limits.max_open_per_key
            && (self.keys.ext).allows_dial(&entry.ext, now, config, entry.counts())
    }
}

impl<M: Manager, P: Points<M>> Transition<'_, M, P> {
    /// The dial of `slot`, started for `waiter` in its key's `epoch`,
    /// finished at `now`. If the key was closed on demand since, its
    /// connection is closed on arrival and the waiter gets a dial in its
    /// place.
    pub(crate) fn dial_done(
        mut self,
        slot: Slot,
        waiter: Option<WaiterId>,
        epoch: u32,
        result: Dialed<M, P>,
    ) {
        debug_assert_eq!(slot.place(), Place::Dialing);
        let id = self.st.keys.give_back(slot);
        let entry = self.st.keys.get_mut(id);
        let retired = entry.epoch != epoch;
        match result {
            Ok((conn, info)) => {
                entry.last_error = None;
                let ext = P::new_conn(self.now, self.config);
                let mut conn = Conn::new(conn, self.now, self.config, ext);
                let dial_all = P::on_dialed(&mut self, id, &mut conn, info);
                let waiter = waiter.filter(|&w| self.st.waiters.is_live(w) && !self.st.closed);
                if retired {
                    self.close_conn(id, conn.conn, CloseReason::Retired);
                    if let Some(w) = waiter {
                        let _ = self.find_dial(id, w);
                    }
                    return self.finish();
                }
                let cid = self.st.hold_new(id, conn);
                match waiter {
                    // A feature may take it, to serve `w` (and more).
                    Some(w) => {
                        if !P::takes_free(&mut self, id, cid, Some(w)) {
                            self.hand_to(w, id, cid);
                        }
                    }
                    None => self.place(id, cid, false),
                }
                // A `max_connecting` slot came free (the features may want
                // every queued getter to dial).
                if !self.st.closed {
                    while self.start_queued_dial(id) && dial_all {}
                    P::on_fewer_idle(&mut self, id);
                }
            }
            Err(err) => {
                if let Some(w) = waiter.filter(|&w| self.st.waiters.is_live(w)) {
                    self.serve(w, Err(Error::Connect(err.clone())));
                }
                P::on_dial_failed(&mut self, id, err);
                self.release_slot(id);
            }
        }
        self.finish();
    }

    /// Starts a dial for the new waiter `w`, or queues it for one; tells
    /// what it then waits behind.
    pub(crate) fn find_dial(&mut self, id: KeyId, w: WaiterId) -> Behind {
        // The features' connections on their way may serve every waiter.
        let covered = P::dials_cover(self.st, id);
        let entry = self.st.keys.get(id);
        if covered || !self.st.key_can_dial(id, self.now, self.config) {
            let at_cap = entry.counts().open >= self.st.limits.max_open_per_key;
            self.st.keys.get_mut(id).dial_waiters.push(w);
            return if at_cap && !covered {
                Behind::AllLent
            } else {
                Behind::Dialing
            };
        }
        if self.st.counts().open >= self.st.limits.max_open {
            // The pool is full but maybe not busy: an idle connection of
            // another key is worth less than a getter waiting now.
            let Some((other, conn)) = self.st.records.pop_lru() else {
                self.st.tidy_global_queue();
                self.st.global_dial_waiters.push(w);
                return Behind::PoolFull;
            };
            let conn = conn.conn.expect("an idle connection is present");
            self.close_for_room(other, conn, CloseReason::EvictedLru);
        }
        self.start_dial(id, Some(w));
        Behind::Dialing
    }

    pub(crate) fn start_dial(&mut self, id: KeyId, waiter: Option<WaiterId>) {
        let slot = self.st.keys.open_slot(id, Place::Dialing);
        self.st.tally(id, Event::Dial);
        let entry = self.st.keys.get(id);
        self.fx.actions.push(Action::Dial(DialOrder {
            key: entry.key.clone(),
            slot,
            waiter,
            epoch: entry.epoch,
        }));
    }

    /// Starts a dial for the first live waiter of `id`'s dial queue, if the
    /// key and the pool may dial. True if it did.
    pub(crate) fn start_queued_dial(&mut self, id: KeyId) -> bool {
        if self.st.keys.get(id).counts().waiting == 0
            || P::dials_cover(self.st, id)
            || self.st.counts().open >= self.st.limits.max_open
            || !self.st.key_can_dial(id, self.now, self.config)
        {
            return false;
        }
        let queue = &mut self.st.keys.get_mut(id).dial_waiters;
        let w = queue.pop_live(|w| self.st.waiters.is_live(w));
        w.map(|w| self.start_dial(id, Some(w))).is_some()
    }

    /// The first live waiter of the global dial queue whose key may dial;
    /// waiters whose key reached its cap or `max_connecting` meanwhile move
    /// to their key's dial queue, waiters a feature turns away fail
    /// ([`Points::on_queued`]).
    pub(crate) fn pop_global_waiter(&mut self) -> Option<(WaiterId, KeyId)> {
        while let Some(w) = self
            .st
            .global_dial_waiters
            .pop_live(|w| self.st.waiters.is_live(w))
        {
            let key = self.st.waiters.live(w).expect("live").key;
            if P::on_queued(self, w, key) {
                continue;
            }
            if self.st.key_can_dial(key, self.now, self.config) {
                return Some((w, key));
            }
            self.st.keys.get_mut(key).dial_waiters.push(w);
        }
        None
    }
}
