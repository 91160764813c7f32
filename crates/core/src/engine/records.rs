//! The idle set: every idle connection of the pool, kept in two orders at
//! once.
//!
//! * **Per key, LIFO** (Go's `idleConn[key]`): checkout takes the most
//!   recently returned connection of its key, so hot connections stay hot
//!   and cold ones sink to the bottom, where idle timeouts find them.
//! * **Across keys, LRU** (Go's `idleLRU`): when the global idle cap is
//!   hit, the connection idle the longest, of *any* key, is evicted.
//!
//! Both orders are intrusive doubly linked lists threaded through one
//! [`Slab`] of entries, so every operation is O(1) whatever the number of
//! keys or idle connections.
//!
//! **An exclusively lent connection keeps its entry.** Checkout unlinks the
//! entry and takes out only the connection; the entry, with the
//! connection's life record, stays where it is (*held*), named by a
//! [`ConnId`] that the borrower's guard carries, and the return puts the
//! connection back and relinks it. So a checkout and a return move a
//! connection, not its record, and touch the slab's free list not at all:
//! steady checkout/return allocates nothing and copies little.
//!
//! Entries are appended to both lists when they enter the idle set, so both
//! are ordered by entry: the front of a key's list and of the LRU list is
//! the connection that entered longest ago. That is its "idle since" except
//! for a connection back from a feature's task, which re-enters at the end
//! with its idle time running on. No decision depends on the order beyond
//! "least recently entered first" for eviction: idle timeouts come from
//! each connection's own record.
//!
//! Entries are also **fresh** until [`Records::drain_fresh`] hands them to
//! the deadline heap. Fresh entries are always a suffix of the LRU list
//! (each was appended after every entry that is not fresh, and removing
//! entries keeps a suffix a suffix), so the maintenance task finds them by
//! walking back from the newest, and a return records its deadline without
//! pushing anything anywhere: most returned connections are lent again
//! before the maintenance task next wakes, and leave no trace in the heap.
//!
//! **The life record** ([`Conn`]): when a connection was born, when it
//! must die, how often it was lent, since when it is idle or lent. It stays
//! with the connection (its idle entry, which keeps it while the connection
//! is lent exclusively; a feature's record; a task), so every lifecycle
//! decision is a comparison of instants the pool already holds: no
//! per-connection timer or task exists.

use slab::Slab;

use std::panic::Location;

use crate::clock::{Tick, jittered};
use crate::config::Config;
use crate::engine::ConnId;
use crate::engine::KeyId;
use crate::reason::CloseReason;

/// Slab index of an entry; `NIL` ends a list. 32 bits: four links per idle
/// connection, and no pool holds four billion of them.
type Link = u32;
const NIL: Link = u32::MAX;

#[inline]
fn link(idx: usize) -> Link {
    Link::try_from(idx).expect("fewer than 2^32 - 1 idle connections")
}

/// One list's ends and length.
#[derive(Debug, Clone, Copy)]
struct Ends {
    first: Link,
    last: Link,
    len: usize,
}

/// An entry's neighbours in one list (older, newer).
#[derive(Debug, Clone, Copy)]
struct Links {
    prev: Link,
    next: Link,
}

/// The lists an idle entry is in: `links[KEY]` in its key's, `links[LRU]`
/// in the pool's.
const KEY: usize = 0;
const LRU: usize = 1;
const UNLINKED: [Links; 2] = [Links {
    prev: NIL,
    next: NIL,
}; 2];

impl Ends {
    const EMPTY: Ends = Ends {
        first: NIL,
        last: NIL,
        len: 0,
    };

    /// Appends the entry `idx` to this list (`list` of [`KEY`], [`LRU`]).
    #[inline]
    fn push<C>(&mut self, entries: &mut Slab<Entry<C>>, list: usize, idx: Link) {
        entries[idx as usize].links[list] = Links {
            prev: self.last,
            next: NIL,
        };
        match self.last {
            NIL => self.first = idx,
            last => entries[last as usize].links[list].next = idx,
        }
        self.last = idx;
        self.len += 1;
    }

    /// Takes the entry `idx` out of this list.
    #[inline]
    fn unlink<C>(&mut self, entries: &mut Slab<Entry<C>>, list: usize, idx: Link) {
        let Links { prev, next } = entries[idx as usize].links[list];
        match prev {
            NIL => self.first = next,
            prev => entries[prev as usize].links[list].next = next,
        }
        match next {
            NIL => self.last = prev,
            next => entries[next as usize].links[list].prev = prev,
        }
        self.len -= 1;
    }
}

/// Names one idle entry for as long as it stays idle: the slab index plus a
/// stamp unique to this stay, so a reused slot is not mistaken for it.
/// Stamps have 31 bits: an entry keeps the 32nd for [`FRESH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct IdleRef {
    idx: Link,
    /// Wraps after 2^31 stays: a deadline that outlived that many returns
    /// and meets its slot's new occupant only makes the maintenance task
    /// look at that connection early (it checks the connection's own times).
    stamp: u32,
}

/// The bit of [`Entry::stamp`] that marks an entry not yet drained by
/// [`Records::drain_fresh`].
const FRESH: u32 = 1 << 31;

/// [`Entry::stamp`] of an entry that is not idle (held or lent): no
/// [`IdleRef`] has its stamp (`!FRESH` is never handed out).
const NOT_IDLE: u32 = u32::MAX;

#[derive(Debug)]
struct Entry<C> {
    conn: C,
    key: KeyId,
    /// The idle stay's stamp, with [`FRESH`] set until it is drained;
    /// [`NOT_IDLE`] while held or lent (the links are then meaningless).
    stamp: u32,
    /// Neighbours in the key's list and in the pool's LRU list.
    links: [Links; 2],
}

/// Idle connections, per key (LIFO) and across keys (LRU), and the entries
/// of connections lent exclusively.
///
/// Invariants: an entry is *idle* (its stamp is not [`NOT_IDLE`]) iff it is
/// linked, in exactly one key list (the one of `entry.key`) and in the LRU
/// list; `lru.len` counts the idle entries and the per-key lengths add up
/// to it; the fresh entries are a suffix of the LRU list. The other entries
/// are *held*: lent, or in the middle of a transition.
#[derive(Debug)]
pub(crate) struct Records<C> {
    entries: Slab<Entry<C>>,
    lru: Ends,
    /// Indexed by `KeyId`; grown on demand, never shrunk (one `Ends` a key slot).
    per_key: Vec<Ends>,
    next_stamp: u32,
}

impl<C> Default for Records<C> {
    fn default() -> Self {
        Self {
            entries: Slab::new(),
            lru: Ends::EMPTY,
            per_key: Vec::new(),
            next_stamp: 0,
        }
    }
}

impl<C> Records<C> {
    /// Idle connections in total.
    pub(crate) fn len(&self) -> usize {
        self.lru.len
    }

    /// Connections held but not idle: lent exclusively (or, inside a
    /// transition, on their way to a borrower or to the idle lists).
    pub(crate) fn held(&self) -> usize {
        self.entries.len() - self.lru.len
    }

    /// Idle connections of `key`.
    pub(crate) fn len_of(&self, key: KeyId) -> usize {
        self.per_key.get(key.index()).map_or(0, |e| e.len)
    }

    /// Adds `value` as a connection of `key` the pool holds but that is not
    /// idle (about to be lent, or parked): it counts in no list until
    /// [`park`](Records::park). Its id names it until it is removed.
    pub(crate) fn insert(&mut self, key: KeyId, value: C) -> ConnId {
        if self.per_key.len() <= key.index() {
            self.per_key.resize(key.index() + 1, Ends::EMPTY);
        }
        ConnId(link(self.entries.insert(Entry {
            conn: value,
            key,
            stamp: NOT_IDLE,
            links: UNLINKED,
        })))
    }

    /// Makes the held connection `id` the most recently used idle connection
    /// of its key and of the pool, and returns `f` of it.
    #[inline]
    pub(crate) fn park<R>(&mut self, id: ConnId, f: impl FnOnce(&C) -> R) -> R {
        let r = self.park_ref(id);
        f(&self.entries[r.idx as usize].conn)
    }

    /// [`park`](Records::park), returning the ref that names this idle stay.
    #[inline]
    fn park_ref(&mut self, id: ConnId) -> IdleRef {
        let idx = id.0;
        let stamp = self.next_stamp;
        self.next_stamp = self.next_stamp.wrapping_add(1) & !FRESH;
        if self.next_stamp == !FRESH {
            // `!FRESH` is `NOT_IDLE`'s stamp: never handed out.
            self.next_stamp = 0;
        }
        let entry = &mut self.entries[idx as usize];
        debug_assert_eq!(entry.stamp, NOT_IDLE, "park: already idle");
        entry.stamp = stamp | FRESH;
        let key = entry.key.index();
        self.per_key[key].push(&mut self.entries, KEY, idx);
        self.lru.push(&mut self.entries, LRU, idx);
        IdleRef { idx, stamp }
    }

    /// The most recently parked idle connection of `key` (LIFO), left idle.
    #[inline]
    pub(crate) fn newest(&self, key: KeyId) -> Option<(ConnId, &C)> {
        let idx = self.per_key.get(key.index())?.last;
        (idx != NIL).then(|| (ConnId(idx), &self.entries[idx as usize].conn))
    }

    /// The least recently parked idle connection of `key`, left idle.
    pub(crate) fn oldest(&self, key: KeyId) -> Option<ConnId> {
        let idx = self.per_key.get(key.index())?.first;
        (idx != NIL).then_some(ConnId(idx))
    }

    /// Calls `f` on every held (not idle) entry, with its key: outside a
    /// transition, the connections lent exclusively. O(entries).
    pub(crate) fn for_each_held(&mut self, mut f: impl FnMut(KeyId, &mut C)) {
        for (_, entry) in self.entries.iter_mut() {
            if entry.stamp == NOT_IDLE {
                f(entry.key, &mut entry.conn);
            }
        }
    }

    /// The connection `id` names.
    #[inline]
    pub(crate) fn value(&self, id: ConnId) -> &C {
        &self.entries[id.0 as usize].conn
    }

    /// The connection `id` names.
    #[inline]
    pub(crate) fn value_mut(&mut self, id: ConnId) -> &mut C {
        &mut self.entries[id.0 as usize].conn
    }

    /// Takes `id` out of the idle lists (if it was idle): the pool still
    /// holds it (it is being lent), and its refs no longer name it.
    #[inline]
    pub(crate) fn hold(&mut self, id: ConnId) -> &mut C {
        if self.entries[id.0 as usize].stamp != NOT_IDLE {
            self.unlink(id.0);
        }
        &mut self.entries[id.0 as usize].conn
    }

    /// Removes `id` (idle or held) for good.
    pub(crate) fn remove(&mut self, id: ConnId) -> (KeyId, C) {
        self.hold(id);
        let entry = self.entries.remove(id.0 as usize);
        (entry.key, entry.conn)
    }

    /// The connection `r` names, if it is still idle.
    pub(crate) fn get(&self, r: IdleRef) -> Option<(KeyId, &C)> {
        self.entries
            .get(r.idx as usize)
            .filter(|e| e.stamp & !FRESH == r.stamp)
            .map(|e| (e.key, &e.conn))
    }

    /// Calls `f` on every fresh entry (parked since the last call), newest
    /// first, and marks them drained. Costs O(fresh entries still idle):
    /// those lent again meanwhile are not visited.
    pub(crate) fn drain_fresh(&mut self, mut f: impl FnMut(IdleRef, &C)) {
        let mut idx = self.lru.last;
        while idx != NIL {
            let entry = &mut self.entries[idx as usize];
            if entry.stamp & FRESH == 0 {
                break;
            }
            entry.stamp &= !FRESH;
            f(
                IdleRef {
                    idx,
                    stamp: entry.stamp,
                },
                &entry.conn,
            );
            idx = entry.links[LRU].prev;
        }
    }

    /// Whether `r` still names an idle connection.
    pub(crate) fn contains(&self, r: IdleRef) -> bool {
        self.get(r).is_some()
    }

    /// Removes the connection `r` names, if it is still idle.
    pub(crate) fn take(&mut self, r: IdleRef) -> Option<(KeyId, C)> {
        self.contains(r).then(|| self.remove(ConnId(r.idx)))
    }

    /// Removes the least recently used idle connection of any key.
    pub(crate) fn pop_lru(&mut self) -> Option<(KeyId, C)> {
        let idx = self.lru.first;
        (idx != NIL).then(|| self.remove(ConnId(idx)))
    }

    /// Takes the idle entry `idx` out of both lists; it stays in the slab,
    /// held.
    #[inline]
    fn unlink(&mut self, idx: Link) {
        let entry = &mut self.entries[idx as usize];
        entry.stamp = NOT_IDLE;
        let key = entry.key.index();
        self.per_key[key].unlink(&mut self.entries, KEY, idx);
        self.lru.unlink(&mut self.entries, LRU, idx);
    }
}

/// Where a borrower took a connection: the call site of its `get`
/// (`None`: not tracked, or no longer wanted).
pub(crate) type Site = Option<&'static Location<'static>>;

/// A connection with its life record, and what the features keep for it
/// (`ext`).
#[derive(Debug)]
pub(crate) struct Conn<C, X> {
    pub(crate) conn: C,
    /// When it must be closed: the end of its lifetime, [`Tick::NEVER`]
    /// for none, or [`Tick::BEFORE_ALL`] (which no lifetime ends at) once
    /// it is retired on demand. One word: the record moves with every
    /// checkout and return.
    expires: Tick,
    /// Times it was lent (saturating; `max_uses` fits in 32 bits).
    pub(crate) uses: u32,
    /// When it last changed hands: while idle, when it was returned (or
    /// dialed), which is what `idle_timeout` measures; while lent
    /// exclusively, when it was lent. Set by [`lend_at`](Conn::lend_at),
    /// and anew when it goes idle (the features' record starts over
    /// through [`Points::rest`](crate::engine::Points::rest)).
    pub(crate) since: Tick,
    /// While lent exclusively: the call site of the `get` that took it
    /// (`None`: not tracked, or no longer wanted by the features).
    pub(crate) site: Site,
    /// What the features keep for the connection.
    pub(crate) ext: X,
}

impl<C, X> Conn<C, X> {
    /// A connection dialed at `now`, with the features' record `ext`.
    pub(crate) fn new(conn: C, now: Tick, config: &Config, ext: X) -> Self {
        Self {
            conn,
            expires: (config.set.max_lifetime)
                .map_or(Tick::NEVER, |life| now + jittered(life, config.set.jitter)),
            uses: 0,
            since: now,
            site: None,
            ext,
        }
    }

    /// The same record with `f(conn)` for its connection.
    #[inline]
    pub(crate) fn map<D>(self, f: impl FnOnce(C) -> D) -> Conn<D, X> {
        Conn {
            conn: f(self.conn),
            expires: self.expires,
            uses: self.uses,
            since: self.since,
            site: self.site,
            ext: self.ext,
        }
    }

    /// It is lent exclusively at `now`, by a `get` at `site`.
    #[inline]
    pub(crate) fn lend_at(&mut self, now: Tick, site: Site) {
        self.uses = self.uses.saturating_add(1);
        self.since = now;
        self.site = site;
    }

    /// Closes it at the next look (its return, or a checkout or the
    /// maintenance task finding it idle), for [`CloseReason::Retired`].
    pub(crate) fn retire(&mut self) {
        self.expires = Tick::BEFORE_ALL;
    }

    /// Whether it was retired on demand.
    pub(crate) fn is_retired(&self) -> bool {
        self.expires == Tick::BEFORE_ALL
    }

    /// Why it is closed at `now` if it reached its expiry: retired on
    /// demand, or past its lifetime.
    pub(crate) fn expired(&self, now: Tick) -> Option<CloseReason> {
        (self.expires <= now).then_some(match self.is_retired() {
            true => CloseReason::Retired,
            false => CloseReason::Lifetime,
        })
    }

    /// Why it must not be lent again at `now`: past its lifetime, or lent
    /// `max_uses` times.
    pub(crate) fn retirement(&self, now: Tick, config: &Config) -> Option<CloseReason> {
        let used_up = (config.set.max_uses).is_some_and(|max| u64::from(self.uses) >= max);
        self.expired(now).or(used_up.then_some(CloseReason::Uses))
    }

    /// The first instant the maintenance task must look at it while idle:
    /// its lifetime, its idle timeout counted from `idle_from` (when it
    /// went idle, or later for one its key keeps: see
    /// [`Transition::verdict`](crate::engine::Transition::verdict)) or the
    /// features' deadline (`ext_due` of their record), whichever is first.
    pub(crate) fn deadline(
        &self,
        idle_from: Tick,
        config: &Config,
        ext_due: impl FnOnce(&X) -> Tick,
    ) -> Option<Tick> {
        let idle = match config.idle_timeout_ns {
            u64::MAX => Tick::NEVER,
            t => idle_from.add_nanos(t),
        };
        let first = self.expires.min(idle).min(ext_due(&self.ext));
        (first != Tick::NEVER).then_some(first)
    }
}

#[cfg(test)]
mod tests;
