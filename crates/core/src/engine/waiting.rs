//! **Waiting and cancellation** ([`Transition::cancel`]): a getter that
//! gives up removes its slot. If nothing had reached it, its queue entries
//! turn stale (they are skipped, and compacted away in bulk); a dial started
//! for it carries on and its connection serves the next waiter or goes idle.
//! If a connection had reached it in the meantime, that connection goes
//! through the hand-off again: the next waiter gets it (a handle to a shared
//! connection is given back: its place goes to the next waiter). Nothing is
//! counted twice or lost.

use super::points::{Event, Points};
use std::task::Waker;
use std::time::Duration;

use super::{State, Transition};
use crate::clock::Tick;
use crate::engine::{Change, KeyId, Lent, WaiterId};
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

    /// Counts the wait of a getter waiting `since` until `now`, in the
    /// pool's counters and in its key's if the key is still alive
    /// (`alive_key`).
    pub(crate) fn count_wait(&mut self, since: Tick, now: Tick, alive_key: Option<KeyId>) {
        let waited = now.saturating_duration_since(since);
        match alive_key {
            Some(id) => self.tally(id, Event::WaitTime(waited)),
            None => P::count(&mut self.ext, Event::WaitTime(waited)),
        }
    }

    /// A getter of `id` ran into its checkout deadline (waiting, or
    /// during a health check): counts it and builds the error, with the
    /// key's last dial error.
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
                // Idle since its hand-off (its lending's stamp).
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
