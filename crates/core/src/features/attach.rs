//! The features at the engine's points ([`Points`], [`KeyPoints`](crate::engine::KeyPoints)):
//! which feature does what at each. `KeysExt` answers the engine's
//! questions about a key (`features::ext`).
//!
//! | point | features |
//! |---|---|
//! | `on_checkout` | shared lending: a key that fills first lends its fullest shared connection |
//! | `on_nothing_idle` | shared lending: the least-loaded shared connection; backoff: fail at once, or wait for a probe |
//! | `lends`, `lend` | shared lending: a shared connection is lent as handles |
//! | `on_dialed` | shared lending: how the manager lends; backoff: ends |
//! | `on_dial_failed` | backoff: begins or grows |
//! | `dials_cover` | shared lending: dials in flight will serve the waiters |
//! | `on_queued` | backoff: a getter queued at the pool's cap fails |
//! | `takes_free` | shared lending: a shared connection serves waiters (first the one it was dialed for) |
//! | `closes_free` | run-time control: over an open cap after a shrink |
//! | `give_back_handle`, `unserve_handle` | shared lending |
//! | `on_return` | backoff: a refused new connection is a failed dial, and a trial |
//! | `on_returned` | server-changed clearing; backoff: the trial ends |
//! | `checkup` | the health check before lending: its policy |
//! | `new`, `new_conn`, `rest`, `due` | the records: keepalive's schedule starts over at rest, and is the connection's deadline |
//! | `count` | counters: the engine's events |
//! | `on_fewer_idle` | `min_idle`: refill |
//! | `on_idle_due` | keepalive: ping |
//! | `on_due` | for a key, backoff: probe, and `min_idle`: refill; for the pool, leak reports: scan |
//! | `lent_elsewhere` | shared lending: the shared set |

use std::panic::Location;
use std::time::Duration;

use super::{Borrowed, Conn, ConnExt, Features, KeysExt, PoolExt, Tending, Transition};
use crate::clock::Tick;
use crate::config::Config;
use crate::engine::{self, Checkup, ConnId, Event, KeyId, Lent, Points, Round, Slot, WaiterId};
use crate::error::{ConnectError, Error};
use crate::manager::{Health, Lending, Manager};
use crate::reason::CloseReason;
use crate::stats::Counters;

/// What a borrower tells the features when it gives back.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Note {
    /// Its server closed a new connection under its first request
    /// (`Pooled::mark_refused`): a failed dial of its key.
    pub(crate) refused: bool,
    /// The manager says its server changed: the key is cleared.
    pub(crate) server_changed: bool,
}

impl Note {
    /// What a borrower tells of a connection its server `refused` (or
    /// not), of which [`Manager::health`] said `health`.
    #[inline]
    pub(crate) fn new(health: Health, refused: bool) -> Self {
        Self {
            refused,
            server_changed: health == Health::ServerChanged,
        }
    }
}

/// What the features decide to do outside the lock.
pub(crate) enum Act<M: Manager> {
    /// A connection of this key, taken by a `get` at this site, has been
    /// held this long: report it.
    Leak(M::Key, &'static Location<'static>, Duration),
    /// An idle connection taken out for a keepalive ping, in its slot,
    /// with its key's epoch.
    Ping(Slot, Conn<M::Connection>, u32),
    /// A returned connection taken out to be recycled, in its slot (the
    /// key, cloned for the hooks), with its key's epoch.
    Recycle(Slot, M::Key, Conn<M::Connection>, u32),
    /// A key's dial failed and it backs off this long, its failed dials
    /// in a row this many: log it.
    Backoff(M::Key, ConnectError<M::Error>, Duration, u32),
    /// A key whose dials failed made a connection again, down this long:
    /// log it.
    Recovered(M::Key, Duration),
}

impl<M: Manager> Points<M> for Features {
    type Keys = KeysExt<M>;
    type Pool = PoolExt<M::Connection>;
    type Conn = ConnExt;
    type Action = Act<M>;
    type Note = Note;
    type Info = Lending<M::Connection>;

    #[inline]
    fn new_conn(now: Tick, config: &Config) -> ConnExt {
        ConnExt::new(now, config)
    }

    #[inline]
    fn rest(ext: &mut ConnExt, now: Tick) {
        ext.rest(now);
    }

    #[inline]
    fn due(ext: &ConnExt) -> Tick {
        ext.next_ping
    }

    fn new(config: &Config) -> (Self::Keys, Self::Pool) {
        let keys = KeysExt::new(config.limits.min_idle, config.failure_memory());
        let pool = PoolExt {
            counters: Counters::default(),
            borrowed: Borrowed::default(),
            recycling: 0,
        };
        (keys, pool)
    }

    /// The health-check policy: whether a connection idle since `since`
    /// is pinged before it is lent at `now`.
    #[inline]
    fn checkup(config: &Config, since: Tick, now: Tick) -> Checkup {
        match config.health_idle_ns {
            0 => Checkup::Due,
            // An addition, not `now - since`: cheaper, and it saturates.
            n if n != u64::MAX && since.add_nanos(n) <= now => Checkup::Due,
            _ => Checkup::NotDue,
        }
    }

    #[inline]
    fn on_checkout(
        t: &mut Transition<'_, M>,
        id: KeyId,
        round: Round,
    ) -> Option<Lent<M::Connection>> {
        if t.st.ext.borrowed.borrowers() == 0 {
            return None;
        }
        t.lend_filling(id, round)
    }

    fn on_nothing_idle(
        t: &mut Transition<'_, M>,
        id: KeyId,
        round: Round,
    ) -> Result<Option<Lent<M::Connection>>, Error<M::Error>> {
        if let Some(lent) = t.lend_handle(id, false) {
            return Ok(Some(lent));
        }
        t.may_wait(id, round).map(|()| None)
    }

    #[inline]
    fn lends<C>(conn: &engine::Conn<C, ConnExt>) -> bool {
        conn.ext.is_shared()
    }

    fn lend(
        st: &mut engine::State<M, Self>,
        cid: ConnId,
        lent: Slot,
        ping: Checkup,
    ) -> Lent<M::Connection> {
        st.lend_shared(cid, lent, ping)
    }

    fn on_dialed(
        t: &mut Transition<'_, M>,
        id: KeyId,
        conn: &mut Conn<M::Connection>,
        lending: Lending<M::Connection>,
    ) -> bool {
        let shared = t.lent_as(id, conn, lending);
        t.connected(id) || shared
    }

    fn on_dial_failed(t: &mut Transition<'_, M>, id: KeyId, err: ConnectError<M::Error>) {
        t.dial_failed(id, err);
    }

    fn dials_cover(st: &engine::State<M, Self>, id: KeyId) -> bool {
        st.shared_dials_cover(id)
    }

    fn on_queued(t: &mut Transition<'_, M>, w: WaiterId, id: KeyId) -> bool {
        t.turned_away(w, id)
    }

    fn takes_free(
        t: &mut Transition<'_, M>,
        id: KeyId,
        cid: ConnId,
        first: Option<WaiterId>,
    ) -> bool {
        t.takes_shared(id, cid, first)
    }

    fn closes_free(t: &mut Transition<'_, M>, id: KeyId) -> Option<CloseReason> {
        t.over_open_cap(id).then_some(CloseReason::Retired)
    }

    fn give_back_handle(
        t: Transition<'_, M>,
        id: KeyId,
        slot: usize,
        close: Option<CloseReason>,
        note: Note,
    ) -> bool {
        t.give_back_handle(id, slot, close, note.server_changed)
    }

    fn unserve_handle(t: &mut Transition<'_, M>, id: KeyId, slot: usize) {
        // A handle never picked up: its borrow was not a use.
        t.st.ext.borrowed.conn_mut(slot).1.uses -= 1;
        t.return_handle(id, slot, None);
    }

    /// A refused connection is a failed dial of its key. Answers whether
    /// the key is to be cleared: its server changed, unless a clear already
    /// retired the connection.
    #[inline]
    fn on_return(t: &mut Transition<'_, M>, id: KeyId, cid: ConnId, note: Note) -> bool {
        let clear = note.server_changed && !t.st.records.value(cid).is_retired();
        if note.refused {
            t.refused(id, ConnectError::Refused);
        }
        clear
    }

    /// The key cleared; a connection that served its borrower ends the
    /// key's trial.
    #[inline]
    fn on_returned(t: &mut Transition<'_, M>, id: KeyId, note: Note, clear: bool) {
        if clear {
            t.clear_key(id);
        }
        if !note.refused && !note.server_changed {
            t.served(id);
        }
    }

    #[inline]
    fn on_fewer_idle(t: &mut Transition<'_, M>, id: KeyId) {
        t.refill(id);
    }

    fn on_idle_due(t: &mut Transition<'_, M>, id: KeyId, conn: Conn<M::Connection>) {
        t.take_out(id, conn, Tending::Keepalive);
    }

    fn on_due(t: &mut Transition<'_, M>, key: Option<KeyId>) {
        match key {
            Some(id) => {
                t.backoff_due(id);
                t.refill(id);
            }
            None => t.scan_leaks(),
        }
    }

    #[inline]
    fn count(pool: &mut PoolExt<M::Connection>, event: Event) {
        super::ext::count(&mut pool.counters, event);
    }

    #[inline]
    fn lent_elsewhere(st: &engine::State<M, Self>) -> usize {
        st.ext.borrowed.len()
    }
}
