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
//! connection, not its 40-byte record, and touch the slab's free list not at
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

use crate::store::ConnId;
use crate::store::KeyId;

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

    /// Adds `value` as the most recently used idle connection of `key` and
    /// of the pool: [`insert`](Records::insert), then [`park`](Records::park).
    #[cfg(test)]
    pub(crate) fn push(&mut self, key: KeyId, value: C) -> IdleRef {
        let id = self.insert(key, value);
        self.park_ref(id)
    }

    /// The most recently parked idle connection of `key` (LIFO), left idle.
    #[inline]
    pub(crate) fn newest(&self, key: KeyId) -> Option<(ConnId, &C)> {
        let idx = self.per_key.get(key.index())?.last;
        (idx != NIL).then(|| (ConnId(idx), &self.entries[idx as usize].conn))
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

    /// Removes the most recently parked idle connection of `key` (LIFO).
    #[cfg(test)]
    pub(crate) fn pop_newest(&mut self, key: KeyId) -> Option<C> {
        let (id, _) = self.newest(key)?;
        Some(self.remove(id).1)
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

#[cfg(test)]
mod tests {
    use super::Records;
    use crate::store::KeyId;

    fn k(i: usize) -> KeyId {
        KeyId::from_index(i)
    }

    #[test]
    fn per_key_lifo_and_global_lru() {
        let mut idle = Records::default();
        idle.push(k(0), "a0");
        idle.push(k(1), "b0");
        idle.push(k(0), "a1");
        idle.push(k(1), "b1");
        assert_eq!(idle.len(), 4);
        assert_eq!(idle.len_of(k(0)), 2);
        // LIFO within a key.
        assert_eq!(idle.pop_newest(k(0)), Some("a1"));
        // LRU across keys: a0 is the oldest left.
        assert_eq!(idle.pop_lru(), Some((k(0), "a0")));
        assert_eq!(idle.len_of(k(0)), 0);
        assert_eq!(idle.pop_newest(k(0)), None);
        assert_eq!(idle.pop_lru(), Some((k(1), "b0")));
        assert_eq!(idle.pop_newest(k(1)), Some("b1"));
        assert_eq!(idle.pop_lru(), None);
        assert_eq!(idle.len(), 0);
        // Unknown key.
        assert_eq!(idle.pop_newest(k(7)), None);
        assert_eq!(idle.len_of(k(7)), 0);
    }

    #[test]
    fn refs_name_one_idle_stay_only() {
        let mut idle = Records::default();
        let a = idle.push(k(0), "a");
        let b = idle.push(k(1), "b");
        assert_eq!(idle.get(a), Some((k(0), &"a")));
        assert_eq!(idle.take(b), Some((k(1), "b")));
        assert_eq!(idle.take(b), None, "taken once");
        assert_eq!(idle.pop_newest(k(0)), Some("a"));
        // The slot is reused by a new stay: the old ref does not name it.
        let c = idle.push(k(0), "c");
        assert!(!idle.contains(a) && idle.contains(c));
        assert_eq!(idle.len(), 1);
    }

    #[test]
    fn fresh_entries_are_drained_once_newest_first_and_only_while_idle() {
        let mut idle = Records::default();
        let refs: Vec<_> = (0..5).map(|i| idle.push(k(i % 2), i)).collect();
        // Lent again before the drain: never visited.
        assert_eq!(idle.pop_newest(k(1)), Some(3));
        let mut seen = Vec::new();
        idle.drain_fresh(|r, &c| seen.push((r, c)));
        assert_eq!(
            seen,
            vec![(refs[4], 4), (refs[2], 2), (refs[1], 1), (refs[0], 0)]
        );
        // Drained entries keep their refs, and are not drained again.
        assert!(
            refs.iter()
                .enumerate()
                .all(|(i, &r)| i == 3 || idle.contains(r))
        );
        let mut again = Vec::new();
        idle.drain_fresh(|_, &c| again.push(c));
        assert!(again.is_empty());
        // New entries (a returned one among them) are fresh; older ones stop the walk.
        let r5 = idle.push(k(1), 5);
        assert_eq!(idle.take(refs[0]), Some((k(0), 0)));
        let r6 = idle.push(k(0), 6);
        idle.drain_fresh(|r, &c| again.push(c + 100 * usize::from(r == r5 || r == r6)));
        assert_eq!(again, vec![106, 105]);
    }

    #[test]
    fn stamps_wrap_without_touching_the_fresh_bit_or_the_not_idle_stamp() {
        let mut idle = Records {
            next_stamp: super::FRESH - 2,
            ..Records::default()
        };
        let a = idle.push(k(0), "a");
        // `FRESH - 1` with the fresh bit is `NOT_IDLE`: skipped.
        let b = idle.push(k(0), "b");
        assert_eq!((a.stamp, b.stamp), (super::FRESH - 2, 0));
        assert!(idle.contains(a) && idle.contains(b));
        idle.drain_fresh(|_, _| {});
        assert!(idle.contains(a) && idle.contains(b));
        // Both are idle, so lending them unlinks them.
        let (b_id, _) = idle.newest(k(0)).unwrap();
        idle.hold(b_id);
        let (a_id, _) = idle.newest(k(0)).unwrap();
        idle.hold(a_id);
        assert_eq!((idle.len(), idle.newest(k(0))), (0, None));
    }

    #[test]
    fn a_held_entry_is_not_idle_keeps_its_value_and_parks_as_a_new_stay() {
        let mut idle = Records::default();
        let a = idle.push(k(0), "a");
        let b = idle.push(k(0), "b");
        // Lending the newest holds it: out of both lists and the counts,
        // its ref no longer names it, but its entry and value stay.
        let (id, &value) = idle.newest(k(0)).unwrap();
        assert_eq!(value, "b");
        *idle.hold(id) = "b lent";
        assert_eq!((idle.len(), idle.len_of(k(0))), (1, 1));
        assert!(!idle.contains(b) && idle.take(b).is_none());
        assert_eq!(idle.newest(k(0)).map(|(_, v)| *v), Some("a"));
        assert_eq!(*idle.value(id), "b lent");
        // Holding again is harmless; nothing drains it.
        idle.hold(id);
        let mut fresh = Vec::new();
        idle.drain_fresh(|_, &v| fresh.push(v));
        assert_eq!(fresh, vec!["a"]);
        // Parked back: the newest again, fresh again, under a new ref.
        assert_eq!(idle.park(id, |&v| v), "b lent");
        assert_eq!((idle.len(), idle.len_of(k(0))), (2, 2));
        assert_eq!(idle.newest(k(0)).map(|(i, _)| i), Some(id));
        let mut refs = Vec::new();
        idle.drain_fresh(|r, _| refs.push(r));
        assert_eq!(refs.len(), 1);
        assert!(refs[0] != b && idle.contains(refs[0]) && !idle.contains(b));
        // Removed while held: gone for good, the idle ones untouched.
        idle.hold(id);
        assert_eq!(idle.remove(id), (k(0), "b lent"));
        assert!(idle.contains(a));
        assert_eq!(idle.pop_lru(), Some((k(0), "a")));
        assert_eq!(idle.pop_lru(), None);
        // A connection held from the start (dialed) is not idle either.
        let c = idle.insert(k(1), "c");
        assert_eq!((idle.len(), idle.len_of(k(1))), (0, 0));
        assert_eq!(idle.pop_lru(), None);
        idle.park(c, |_| ());
        assert_eq!(idle.pop_newest(k(1)), Some("c"));
    }

    #[test]
    fn unlink_from_the_middle_keeps_both_lists_consistent() {
        let mut idle = Records::default();
        for i in 0..10 {
            idle.push(k(i % 3), i);
        }
        // Take from the middle of the LRU order via per-key pops.
        assert_eq!(idle.pop_newest(k(1)), Some(7));
        assert_eq!(idle.pop_newest(k(2)), Some(8));
        let mut order = Vec::new();
        while let Some((key, c)) = idle.pop_lru() {
            assert_eq!(key, k(c % 3));
            order.push(c);
        }
        assert_eq!(order, vec![0, 1, 2, 3, 4, 5, 6, 9]);
    }
}
