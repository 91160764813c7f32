//! The idle set: every idle connection of the pool, kept in two orders at once.
//!
//! * **Per key, LIFO** (Go's `idleConn[key]`): checkout takes the most
//!   recently returned connection of its key, so hot connections stay hot and
//!   cold ones sink to the bottom, where idle timeouts find them.
//! * **Across keys, LRU** (Go's `idleLRU`): when the global idle cap is hit,
//!   the connection idle the longest, of *any* key, is evicted.
//!
//! Both orders are intrusive doubly linked lists threaded through one
//! [`Slab`] of entries, so every operation is O(1) whatever the number of keys
//! or idle connections.
//!
//! **An exclusively lent connection keeps its entry.** Checkout unlinks the
//! entry and takes out only the connection; the entry, with the
//! connection's life record, stays where it is (*held*), named by a
//! [`ConnId`] that the borrower's guard carries, and the return puts the
//! connection back and relinks it. So a checkout and a return move a
//! connection, not its 48-byte record, and touch the slab's free list not at
//! all: steady checkout/return allocates nothing and copies little.
//!
//! Entries are appended to both lists when they enter the idle set, so both
//! are ordered by entry: the front of a key's list and of the LRU list is
//! the connection that entered longest ago. That is its "idle since" except
//! for a connection back from a background keepalive ping, which re-enters
//! at the end with its idle time running on (a ping is not a use, but it did
//! just prove the connection alive). No decision depends on the order
//! beyond "least recently entered first" for eviction: idle timeouts come
//! from each connection's own record.
//!
//! Entries are also **fresh** until [`Records::drain_fresh`] hands them to
//! the deadline heap. Fresh entries are always a suffix of the LRU list (each
//! was appended after every entry that is not fresh, and removing entries
//! keeps a suffix a suffix), so the maintenance task finds them by walking
//! back from the newest, and a return records its deadline without pushing
//! anything anywhere: most returned connections are lent again before the
//! maintenance task next wakes, and leave no trace in the heap.

use slab::Slab;

use crate::engine::Conn;
use crate::engine::ConnId;
use crate::engine::KeyId;

/// Slab index of an entry; `NIL` ends a list. 32 bits: four links per idle
/// connection, and no pool holds four billion of them.
type Link = u32;
const NIL: Link = u32::MAX;

#[inline]
fn link(idx: usize) -> Link {
    Link::try_from(idx).expect("fewer than 2^32 - 1 idle connections")
}

#[derive(Debug, Clone, Copy)]
struct Ends {
    first: Link,
    last: Link,
    len: usize,
}

impl Ends {
    const EMPTY: Ends = Ends {
        first: NIL,
        last: NIL,
        len: 0,
    };
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

impl IdleRef {
    /// As one integer, stamp first: its top bit is always clear (stamps
    /// have 31 bits), for the deadline heap to pack other things with it.
    pub(crate) fn to_bits(self) -> u64 {
        (u64::from(self.stamp) << 32) | u64::from(self.idx)
    }

    /// From [`to_bits`](IdleRef::to_bits).
    pub(crate) fn from_bits(bits: u64) -> IdleRef {
        IdleRef {
            idx: bits as u32,
            stamp: (bits >> 32) as u32,
        }
    }
}

#[derive(Debug)]
struct Entry<C> {
    conn: C,
    key: KeyId,
    /// The idle stay's stamp, with [`FRESH`] set until it is drained;
    /// [`NOT_IDLE`] while held or lent (the links are then meaningless).
    stamp: u32,
    /// Neighbours in the key's list (older, newer).
    key_prev: Link,
    key_next: Link,
    /// Neighbours in the global LRU list (older, newer).
    lru_prev: Link,
    lru_next: Link,
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
            key_prev: NIL,
            key_next: NIL,
            lru_prev: NIL,
            lru_next: NIL,
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
        let lru_last = self.lru.last;
        let entry = &mut self.entries[idx as usize];
        debug_assert_eq!(entry.stamp, NOT_IDLE, "park: already idle");
        let ends = &mut self.per_key[entry.key.index()];
        entry.stamp = stamp | FRESH;
        entry.key_prev = ends.last;
        entry.key_next = NIL;
        entry.lru_prev = lru_last;
        entry.lru_next = NIL;
        if ends.last == NIL {
            ends.first = idx;
        } else {
            self.entries[ends.last as usize].key_next = idx;
        }
        ends.last = idx;
        ends.len += 1;
        if lru_last == NIL {
            self.lru.first = idx;
        } else {
            self.entries[lru_last as usize].lru_next = idx;
        }
        self.lru.last = idx;
        self.lru.len += 1;
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

    /// Calls `f` on every held (not idle) entry of `key`: O(entries).
    pub(crate) fn for_each_held(&mut self, key: KeyId, mut f: impl FnMut(&mut C)) {
        for (_, entry) in self.entries.iter_mut() {
            if entry.stamp == NOT_IDLE && entry.key == key {
                f(&mut entry.conn);
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
            idx = entry.lru_prev;
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
        let (key, key_prev, key_next) = (entry.key, entry.key_prev, entry.key_next);
        let (lru_prev, lru_next) = (entry.lru_prev, entry.lru_next);
        let ends = &mut self.per_key[key.index()];
        if key_prev == NIL {
            ends.first = key_next;
        } else {
            self.entries[key_prev as usize].key_next = key_next;
        }
        if key_next == NIL {
            ends.last = key_prev;
        } else {
            self.entries[key_next as usize].key_prev = key_prev;
        }
        ends.len -= 1;
        if lru_prev == NIL {
            self.lru.first = lru_next;
        } else {
            self.entries[lru_prev as usize].lru_next = lru_next;
        }
        if lru_next == NIL {
            self.lru.last = lru_prev;
        } else {
            self.entries[lru_next as usize].lru_prev = lru_prev;
        }
        self.lru.len -= 1;
    }
}

impl<T, X> Records<Conn<Option<T>, X>> {
    /// Calls `f` on the record of every connection lent exclusively (held,
    /// its connection taken out by the borrower): O(entries).
    pub(crate) fn for_each_lent(&mut self, mut f: impl FnMut(KeyId, &mut Conn<Option<T>, X>)) {
        for (_, entry) in self.entries.iter_mut() {
            if entry.stamp == NOT_IDLE && entry.conn.conn.is_none() {
                f(entry.key, &mut entry.conn);
            }
        }
    }
}

#[cfg(test)]
mod test_support {
    use super::*;

    impl<C> Records<C> {
        /// Adds `value` as the most recently used idle connection of `key` and
        /// of the pool: [`insert`](Records::insert), then [`park`](Records::park).
        pub(crate) fn push(&mut self, key: KeyId, value: C) -> IdleRef {
            let id = self.insert(key, value);
            self.park_ref(id)
        }

        /// Removes the most recently parked idle connection of `key` (LIFO).
        pub(crate) fn pop_newest(&mut self, key: KeyId) -> Option<C> {
            let (id, _) = self.newest(key)?;
            Some(self.remove(id).1)
        }
    }
}

#[cfg(test)]
mod tests;
