//! **Tending**: a connection out of the pool's hands for a while, in a task
//! of its own that calls user code on it: an idle connection due a
//! keepalive ping (taken out by [`Transition::maintain`]) or a returned
//! connection being recycled ([`Transition::give_back_for_recycling`]: the manager's
//! `recycle` and the `after_return` hook). Both are taken out the same way
//! ([`Transition::take_out`]): their record leaves the idle set, they count
//! in `pinging` or `recycling` (so still in `open`: their slot is theirs),
//! they are lent to nobody, and a close does not wait for them beyond their
//! task's time limit. Both come back the same way
//! ([`Transition::came_back`]): closed if the task failed or died with the
//! connection, else through the hand-off, like a returned connection.

use super::Check;
use super::Conn;
use super::Transition;
use super::{Act, Action};
use crate::engine::{ConnId, Event, KeyId, Place, Slot};
use crate::manager::Manager;
use crate::reason::CloseReason;

/// Why a connection is out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tending {
    /// A background keepalive ping of an idle connection.
    Keepalive,
    /// A returned connection's recycle.
    Recycle,
}

/// How the task of a connection that was out ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tended {
    /// A keepalive ping, with its result.
    Keepalive(PingResult),
    /// A recycle, with its result and whether `health` then said the
    /// server changed.
    Recycle(Check, bool),
}

/// How a keepalive ping ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PingResult {
    Ok,
    /// Failed or timed out: one more miss.
    Missed,
    /// Failed and `health` says the connection is unusable: closed at once.
    Broken,
    /// Broken, and its server changed (`Health::ServerChanged`): the key
    /// is cleared unless a clear already retired this connection.
    ServerChanged,
}

impl<M: Manager> Transition<'_, M> {
    /// Hands `conn` of `id`, out of the idle set and not lent, to a task
    /// for `what`; it counts in `pinging` or `recycling` until it comes back.
    pub(crate) fn take_out(&mut self, id: KeyId, conn: Conn<M::Connection>, what: Tending) {
        let epoch = self.st.keys.get(id).epoch;
        let (slot, _) = self.st.keys.take_slot(id, Place::Out);
        let act = match what {
            Tending::Keepalive => Act::Ping(slot, conn, epoch),
            Tending::Recycle => {
                self.st.ext.recycling += 1;
                let entry = self.st.keys.get_mut(id);
                entry.ext.recycling += 1;
                Act::Recycle(slot, entry.key.clone(), conn, epoch)
            }
        };
        self.fx.actions.push(Action::Ext(act));
    }

    /// `conn` of `id` is back from its task (its slot given back), taken out
    /// in the key's `epoch`: `None` if the task died with it (it is counted closed
    /// for `gone`), closed for `close`, or as retired if its key was closed
    /// on demand meanwhile, else placed.
    fn came_back(
        &mut self,
        id: KeyId,
        epoch: u32,
        conn: Option<Conn<M::Connection>>,
        mut close: Option<CloseReason>,
        gone: CloseReason,
    ) {
        if self.st.keys.get(id).epoch != epoch {
            close = close.or(Some(CloseReason::Retired));
        }
        match (conn, close) {
            (None, _) => {
                self.st.tally(id, Event::Closed(gone));
                self.release_slot(id);
            }
            (Some(conn), Some(reason)) => self.close_conn(id, conn.conn, reason),
            (Some(conn), None) => {
                let cid = self.st.hold_new(id, conn);
                self.place(id, cid, false);
            }
        }
    }

    /// The task of a connection of `id` that was out ended at `now`, as
    /// `how` says: `conn` is `None` if the task died with it.
    /// Returns whether the key was cleared (its server changed).
    pub(crate) fn tended(
        mut self,
        slot: Slot,
        conn: Option<Conn<M::Connection>>,
        epoch: u32,
        how: Tended,
    ) -> bool {
        debug_assert_eq!(slot.place(), Place::Out);
        let id = self.st.keys.give_back(slot);
        // A connection taken out before a clear clears nothing more.
        let changed = matches!(
            how,
            Tended::Keepalive(PingResult::ServerChanged) | Tended::Recycle(_, true)
        );
        let clear = changed && self.st.keys.get(id).epoch == epoch;
        match how {
            Tended::Keepalive(ping) => self.keepalive_done(id, conn, epoch, ping),
            Tended::Recycle(check, _) => self.recycled(id, conn, epoch, check),
        }
        if clear {
            self.clear_key(id);
        }
        self.finish();
        clear
    }

    /// A keepalive ping of a connection of `id` ended.
    fn keepalive_done(
        &mut self,
        id: KeyId,
        mut conn: Option<Conn<M::Connection>>,
        epoch: u32,
        ping: PingResult,
    ) {
        let ok = ping == PingResult::Ok;
        let broken = matches!(ping, PingResult::Broken | PingResult::ServerChanged);
        self.st.count_call(id, Check::passed_if(ok), |c| {
            (&mut c.keepalive_pings, &mut c.keepalive_failures)
        });
        let mut close = None;
        if let Some(conn) = &mut conn {
            conn.ext.missed = if ok {
                0
            } else {
                conn.ext.missed.saturating_add(1)
            };
            if broken || u32::from(conn.ext.missed) >= self.config.set.keepalive_max_missed {
                close = Some(CloseReason::Keepalive);
            } else {
                conn.ext.pinged(self.now, self.config);
            }
        }
        self.came_back(id, epoch, conn, close, CloseReason::Keepalive);
    }

    /// A borrower returns `conn`, lent exclusively as `cid` (holding
    /// `lent`), to a pool that recycles: unless it must close (pool closed,
    /// past its lifetime or uses), it is taken out to be recycled.
    pub(crate) fn give_back_for_recycling(mut self, lent: Slot, cid: ConnId, conn: M::Connection) {
        let id = self.st.keys.give_back(lent);
        let retire = if self.st.closed {
            Some(CloseReason::PoolClosed)
        } else {
            self.st.records.value(cid).retirement(self.now, self.config)
        };
        let (_, record) = self.st.records.remove(cid);
        let record = record.map(|_| conn);
        match retire {
            Some(reason) => self.close_conn(id, record.conn, reason),
            None => self.take_out(id, record, Tending::Recycle),
        }
        self.served(id);
        self.finish();
    }

    /// The recycle of a connection of `id` ended. One that passed rests
    /// from now on and goes through the hand-off; one that failed is
    /// closed as broken.
    fn recycled(&mut self, id: KeyId, conn: Option<Conn<M::Connection>>, epoch: u32, check: Check) {
        self.st.ext.recycling -= 1;
        self.st.keys.get_mut(id).ext.recycling -= 1;
        self.st
            .count_call(id, check, |c| (&mut c.recycles, &mut c.recycle_failures));
        let conn = conn.map(|mut conn| {
            conn.since = self.now;
            conn.ext.rest(self.now);
            conn
        });
        let close = (check == Check::Failed).then_some(CloseReason::Broken);
        self.came_back(id, epoch, conn, close, CloseReason::Broken);
    }
}
