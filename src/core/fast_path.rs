//! **The single-key fast paths** ([`State::lend_recent`],
//! [`State::return_recent`]; the store's `Recent` stack). In a pool whose
//! key type has one value, a return that would only park its connection
//! (nobody waits, the pool is open, the idle caps cannot bind, the
//! maintenance task wakes in time for it) leaves it held, at rest, on the
//! `recent` stack, still counted as lent (snapshots count it idle); a
//! checkout lends the top of that stack if the idle path would lend it as it
//! is. Neither looks up the key, links or unlinks anything, or decides
//! anything to do outside the lock, so neither is a [`Transition`]. Every
//! transition starts by parking the stack, oldest first
//! ([`Transition::park_recent`], called by [`State::begin`]), so it sees the
//! pool exactly as if each of those returns had parked its connection.

use super::{State, Transition};
use crate::clock::Tick;
use crate::config::Config;
use crate::manager::Manager;
use crate::store::{ConnId, IdleTimeout, Lent, LentSlot, Site};

impl<M: Manager> State<M> {
    /// Checkout's fast path of a single-key pool (see the `recent` module;
    /// [`State::ONE_KEY`]): lends the newest
    /// recently returned connection if the idle path would lend it as it is
    /// (not expired, not stale, no health check due), else `None` and the
    /// caller goes on to [`checkout`](Transition::checkout). Decides nothing to do
    /// outside the lock.
    #[inline]
    pub(crate) fn lend_recent(
        &mut self,
        now: Tick,
        config: &Config,
        site: Site,
    ) -> Option<Lent<M::Connection>> {
        debug_assert!(Self::ONE_KEY);
        let cid = self.recent.top()?;
        let conn = self.records.value_mut(cid);
        if conn.is_expired(now)
            || conn.is_stale(now, config)
            || config.health_check_due(conn.idle_since(), now)
        {
            return None;
        }
        conn.lend_at(now, site);
        let slot = self.recent.pop();
        let lent = Lent::Own {
            conn: conn.conn.take().expect("a recent connection is present"),
            id: cid,
            lent: slot,
            uses: conn.uses.into(),
        };
        // Counted in the stack's own line; the counters take them over in
        // the next transition's `finish`, before any key is forgotten.
        self.recent.count_get();
        self.debug_check();
        Some(lent)
    }

    /// Return's fast path (see the `recent` module): takes back `conn`, lent
    /// exclusively as `cid` (holding `lent`), if parking it would do nothing but park
    /// it (nobody waits, the pool is open, the idle caps cannot bind, it is
    /// not retiring) and the maintenance task wakes in time for it; the
    /// parking is then deferred. Otherwise hands `lent` and `conn` back for
    /// [`give_back`](Transition::give_back). Decides nothing to do outside the
    /// lock.
    #[inline]
    pub(crate) fn return_recent(
        &mut self,
        lent: LentSlot,
        cid: ConnId,
        conn: M::Connection,
        now: Tick,
        config: &Config,
    ) -> Result<(), (LentSlot, M::Connection)> {
        if !Self::ONE_KEY || !self.recent.has_room() || self.counts().waiting() > 0 || self.closed {
            return Err((lent, conn));
        }
        let record = self.records.value_mut(cid);
        if record.retirement(now, config).is_some() {
            return Err((lent, conn));
        }
        // (Resting it is what `give_back` does first too.)
        record.rest(now);
        if record
            .deadline(now, IdleTimeout::Runs, config)
            .is_some_and(|due| self.timer_at.is_none_or(|wake| wake > due))
        {
            return Err((lent, conn));
        }
        record.conn = Some(conn);
        self.recent.push(lent, cid);
        self.debug_check();
        Ok(())
    }

    /// The gets served from the `recent` stack join the counters (first
    /// thing in `finish`: their key is alive until then).
    #[inline]
    pub(super) fn count_recent_gets(&mut self) {
        let (id, gets) = self.recent.take_gets();
        if gets > 0 {
            self.tally(id, |c| c.gets += gets);
        }
    }
}

impl<M: Manager> Transition<'_, M> {
    /// Parks the recently returned connections, oldest first, as their
    /// returns would have (see the module docs for which transitions start
    /// here).
    #[inline]
    pub(super) fn park_recent(&mut self) {
        if State::<M>::ONE_KEY && !self.st.recent.is_empty() {
            self.park_recent_now();
        }
    }

    #[cold]
    pub(super) fn park_recent_now(&mut self) {
        for (lent, cid) in self.st.recent.take_all() {
            let id = self.st.unlend(lent);
            self.place_own(id, cid);
        }
    }
}
