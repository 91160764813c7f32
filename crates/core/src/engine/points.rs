//! **Points**: where the features attach. The engine's transitions call
//! these, and only these, for whatever a feature adds to them, in five
//! places: a checkout, a dial, a connection freed (the hand-off and the
//! return), time, and counts; the engine
//! holds the features' records ([`Points::Keys`] per key, [`Points::Pool`]
//! for the pool) without reading them. The one implementation,
//! `features::Features`, calls the features concerned at each point, in
//! order (its table lists them).

use std::fmt::Debug;
use std::time::Duration;

use super::{Conn, Counts, KeyId, Lent, Slot, State, Transition, WaiterId};
use crate::clock::Tick;
use crate::config::Config;
use crate::error::{ConnectError, Error};
use crate::manager::Manager;
use crate::reason::CloseReason;

/// Whether the getter checks a connection lent from the idle list
/// before it has it ([`Points::checkup`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checkup {
    /// Due: the getter checks it first.
    Due,
    /// Lent as it is.
    NotDue,
}

/// Which attempt of a getter a checkout is: the first counts a get, a
/// retry after a broken or unhealthy idle connection does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Round {
    /// The getter's first checkout: counted.
    First,
    /// A later one: not counted again. When the get began (its deadline
    /// counts from then).
    Retry(Tick),
}

/// What the engine counts (the features keep the figures).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    /// A get (its first checkout).
    Get,
    /// A get that found nothing to lend and waited.
    Waited,
    /// A getter turned away: too many waiters.
    Rejected,
    /// A dial started.
    Dial,
    /// A connection was closed, for this reason.
    Closed(CloseReason),
    /// A getter's wait ended after this long.
    WaitTime(Duration),
    /// A getter ran into its checkout deadline.
    Timeout,
}

/// What the features keep for keys in general, and the questions the
/// engine asks about one key's record.
pub(crate) trait KeyPoints<K>: Debug {
    /// What the features keep per key.
    type Key: Debug;
    /// The record of a key new to the pool.
    fn new_key(&self, key: &K) -> Self::Key;
    /// Whether a key with nothing open and nobody waiting is kept at `now`
    /// (in an open pool: a closed one keeps none).
    fn remembers(&self, ext: &Self::Key, now: Tick) -> bool;
    /// Whether a dial of the key, which counts `counts`, may start at
    /// `now`, its open cap aside: `max_connecting` and the features' holds.
    fn allows_dial(&self, ext: &Self::Key, now: Tick, config: &Config, counts: &Counts) -> bool;
    /// Whether the key, with `idle` idle connections, keeps a stale one.
    fn keeps_stale(&self, ext: &Self::Key, idle: usize) -> bool;
    /// Counts `event` in one key's record.
    fn count(ext: &mut Self::Key, event: Event);
}

/// The points where the features attach (see the module docs). `t` is the
/// transition in progress; `st`, the state when no transition is needed.
pub(crate) trait Points<M: Manager>: Sized {
    /// What the features keep for keys.
    type Keys: KeyPoints<M::Key>;
    /// What the features keep for the pool.
    type Pool;
    /// What the features keep per connection.
    type Conn: Debug;
    /// What the features decide to do outside the lock.
    type Action;
    /// What a borrower tells the features when it gives back.
    type Note: Copy + Default;
    /// What the features learn of a new connection, in its dial's task.
    type Info;

    // The features' records.

    /// The features' records as the pool starts.
    fn new(config: &Config) -> (Self::Keys, Self::Pool);

    /// The features' record of a connection dialed at `now`.
    fn new_conn(now: Tick, config: &Config) -> Self::Conn;

    /// A connection is idle from `now` on.
    fn rest(ext: &mut Self::Conn, now: Tick);

    /// When the features must look at an idle connection next
    /// ([`on_idle_due`](Points::on_idle_due); [`Tick::NEVER`]: never).
    fn due(ext: &Self::Conn) -> Tick;

    // A checkout.

    /// Whether the getter checks an idle connection, idle since `since`,
    /// before it has it at `now`.
    fn checkup(config: &Config, since: Tick, now: Tick) -> Checkup;

    /// A checkout of `id` begins: a feature may lend at once.
    fn on_checkout(
        t: &mut Transition<'_, M, Self>,
        id: KeyId,
        round: Round,
    ) -> Option<Lent<M::Connection>>;

    /// A checkout of `id` found no idle connection: a feature may lend, or
    /// fail the getter, or let it wait.
    fn on_nothing_idle(
        t: &mut Transition<'_, M, Self>,
        id: KeyId,
        round: Round,
    ) -> Result<Option<Lent<M::Connection>>, Error<M::Error>>;

    /// Whether a feature lends `conn` (rather than the engine handing it
    /// whole to one borrower).
    fn lends<C>(conn: &Conn<C, Self::Conn>) -> bool;

    /// The feature lends the held connection `cid`, whose place in the
    /// lent count is `lent`; `checkup`: whether the getter checks it first.
    fn lend(
        st: &mut State<M, Self>,
        cid: super::ConnId,
        lent: Slot,
        checkup: Checkup,
    ) -> Lent<M::Connection>;

    // A dial: its limits and its result.

    /// A dial of `id` made `conn`, of which the features learned `info`.
    /// Returns whether every getter queued for a dial of the key dials now.
    fn on_dialed(
        t: &mut Transition<'_, M, Self>,
        id: KeyId,
        conn: &mut Conn<M::Connection, Self::Conn>,
        info: Self::Info,
    ) -> bool;

    /// A dial of `id` failed with `err`.
    fn on_dial_failed(t: &mut Transition<'_, M, Self>, id: KeyId, err: ConnectError<M::Error>);

    /// Whether the dials of `id` in flight will serve all its waiters (a
    /// new waiter then dials nothing).
    fn dials_cover(st: &State<M, Self>, id: KeyId) -> bool;

    /// The waiter `w` of `id`, queued at the pool's cap, has its turn to
    /// dial. Returns whether a feature served it instead.
    fn on_queued(t: &mut Transition<'_, M, Self>, w: WaiterId, id: KeyId) -> bool;

    // A connection freed: the hand-off and the return.

    /// The held connection `cid` of `id` came free (dialed for the waiter
    /// `first`, if any): a feature may take it (true), else it goes
    /// through the hand-off.
    fn takes_free(
        t: &mut Transition<'_, M, Self>,
        id: KeyId,
        cid: super::ConnId,
        first: Option<WaiterId>,
    ) -> bool;

    /// While [`State::retiring`]: why a connection of `id` that came free
    /// is closed instead, if it is.
    fn closes_free(t: &mut Transition<'_, M, Self>, id: KeyId) -> Option<CloseReason>;

    /// A borrower gives back a handle of `id`, in `slot` (see
    /// [`Transition::give_back`]).
    fn give_back_handle(
        t: Transition<'_, M, Self>,
        id: KeyId,
        slot: usize,
        close: Option<CloseReason>,
        note: Self::Note,
    ) -> bool;

    /// A handle of `id`, in `slot`, reached a waiter that gave up.
    fn unserve_handle(t: &mut Transition<'_, M, Self>, id: KeyId, slot: usize);

    /// A borrower gives back the connection of `id` lent exclusively from
    /// the record `cid`, with `note`. What it answers,
    /// [`give_back`](Transition::give_back) returns.
    fn on_return(
        t: &mut Transition<'_, M, Self>,
        id: KeyId,
        cid: super::ConnId,
        note: Self::Note,
    ) -> bool;

    /// The return of a connection of `id` ended (`answer`: what
    /// [`on_return`](Points::on_return) answered).
    fn on_returned(t: &mut Transition<'_, M, Self>, id: KeyId, note: Self::Note, answer: bool);

    /// `id` may have fewer idle connections than before.
    fn on_fewer_idle(t: &mut Transition<'_, M, Self>, id: KeyId);

    // Time.

    /// The idle connection `conn` of `id` reached the features' deadline
    /// ([`due`](Points::due)): the feature takes it out.
    fn on_idle_due(
        t: &mut Transition<'_, M, Self>,
        id: KeyId,
        conn: Conn<M::Connection, Self::Conn>,
    );

    /// A feature's deadline for `key`, a live key, or (`None`) for the
    /// pool.
    fn on_due(t: &mut Transition<'_, M, Self>, key: Option<KeyId>);

    // Counts.

    /// Counts `event` in the pool's record.
    fn count(pool: &mut Self::Pool, event: Event);

    /// Connections the features hold as lent (outside the records).
    fn lent_elsewhere(st: &State<M, Self>) -> usize;
}
