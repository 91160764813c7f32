//! **Getting** ([`Transition::checkout`]): a feature may lend first
//! ([`Points::on_checkout`]); else take the newest idle connection of the
//! key (closing stale or expired ones met on the way, and telling the
//! getter whether to check it first: [`Points::checkup`]); else a
//! feature may lend, or turn the getter away ([`Points::on_nothing_idle`]);
//! else open a waiter slot, queue it on the key's `idle_waiters` and find a
//! dial for it: start one if the key and the pool are under their caps; at
//! the pool cap, evict the least recently used idle connection of another
//! key to make room; otherwise queue it on the key's `dial_waiters` (key at
//! its cap or at `max_connecting`) or the pool's global dial queue (pool at
//! its cap). The waiter is then served by whichever comes first: a
//! connection of its key coming free, or its dial.

use super::Transition;
use super::points::{Checkup, Event, KeyPoints, Points, Round};
use crate::engine::{Back, ConnId, KeyId, Lent, Place, Site, WaiterId};
use crate::error::Error;
use crate::manager::Manager;

/// The result of a checkout attempt.
pub(crate) enum Checkout<C> {
    /// Lent at once: a connection from the idle list (and whether the
    /// getter checks it first), or what a feature lends.
    Lent(Lent<C>, Checkup),
    /// No idle connection: wait on this slot, behind this.
    Wait(WaiterId, Behind),
}

/// What a getter that found no idle connection waits behind (for the
/// getter's report of a long wait).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behind {
    /// Its key is at `max_open_per_key`: every connection is lent (or
    /// dialing, or out in a task).
    AllLent,
    /// Its own dial, or dials in flight (at `max_connecting`, or enough
    /// for every waiter of the key).
    Dialing,
    /// The pool is at `max_open` with nothing idle to evict.
    PoolFull,
}

impl<M: Manager, P: Points<M>> Transition<'_, M, P> {
    /// Lends the connection `cid` of `id` (idle, or held: just returned or
    /// dialed): the connection itself, its record staying in the idle set,
    /// or what the features lend of it ([`Points::lend`]).
    ///
    /// `round`: a getter's first checkout counts a get of the key too (in
    /// the same look-up of the key); `None` for a connection handed to a
    /// waiter, whose get was counted at its checkout. `site`: for which
    /// `get`.
    #[inline(always)]
    pub(crate) fn lend(
        &mut self,
        id: KeyId,
        cid: ConnId,
        checkup: Checkup,
        round: Option<Round>,
        site: Site,
    ) -> Lent<M::Connection> {
        let (lent, entry) = self.st.keys.take_slot(id, Place::Lent);
        if round == Some(Round::First) {
            P::Keys::count(&mut entry.ext, Event::Get);
        }
        let conn = self.st.records.hold(cid);
        if P::lends(conn) {
            return P::lend(self.st, cid, lent, checkup);
        }
        conn.lend_at(self.now, site);
        Lent {
            conn: conn.conn.take().expect("a held connection is present"),
            uses: conn.uses.into(),
            back: Back::Own(lent, cid, ()),
        }
    }

    /// A get for `key` at `now`: an idle connection, or a waiter slot (see
    /// module docs). `site`: where the getter called `get`.
    #[inline]
    pub(crate) fn checkout(
        mut self,
        key: &M::Key,
        round: Round,
        site: Site,
    ) -> Result<Checkout<M::Connection>, Error<M::Error>> {
        if self.st.closed {
            return Err(Error::Closed);
        }
        let id = self.st.keys.id_or_insert(key);
        let count = round == Round::First;
        if count {
            P::count(&mut self.st.ext, Event::Get);
        }
        if let Some(lent) = P::on_checkout(&mut self, id, round) {
            self.finish();
            return Ok(Checkout::Lent(lent, Checkup::NotDue));
        }
        while let Some((cid, conn)) = self.st.records.newest(id) {
            // `len_of` still counts `conn`.
            if let Err(reason) = self.verdict(id, conn) {
                let conn = self.st.remove_conn(cid);
                self.close_conn(id, conn.conn, reason);
                continue;
            }
            let checkup = P::checkup(self.config, conn.since, self.now);
            // The key's get is counted as it is lent (one look-up).
            let lent = self.lend(id, cid, checkup, Some(round), site);
            P::on_fewer_idle(&mut self, id);
            self.finish();
            return Ok(Checkout::Lent(lent, checkup));
        }
        if count {
            P::Keys::count(&mut self.st.keys.get_mut(id).ext, Event::Get);
        }
        if let Some(lent) = P::on_nothing_idle(&mut self, id, round).transpose() {
            self.finish();
            return lent.map(|lent| Checkout::Lent(lent, Checkup::NotDue));
        }
        if let Some(max_waiters) = self.config.set.max_waiters
            && self.st.counts().waiting >= max_waiters
        {
            self.st.tally(id, Event::Rejected);
            self.st.unused(id);
            self.finish();
            return Err(Error::TooManyWaiters { max_waiters });
        }
        let w = self.st.waiters.insert(id, self.now, site);
        self.st.tally(id, Event::Waited);
        let entry = self.st.keys.wait(id);
        entry.tidy_queues(|w| self.st.waiters.is_live(w));
        entry.idle_waiters.push(w);
        let behind = self.find_dial(id, w);
        P::on_fewer_idle(&mut self, id);
        self.finish();
        Ok(Checkout::Wait(w, behind))
    }
}
