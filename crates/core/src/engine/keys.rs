//! Per-key state: each destination's counts, wait queues and last dial error,
//! and the registry that maps keys to it.

use slab::Slab;
use std::collections::HashMap;

use crate::clock::Tick;
use crate::engine::KeyId;
use crate::engine::KeyPoints;
use crate::engine::WaitQueue;
use crate::engine::WaiterId;
use crate::engine::counts::{Change, Counts, LentSlot, Place, Slot};
use crate::error::ConnectError;

/// One destination's state (Go's per-host maps, gathered in one place).
///
/// Counts: see [`Counts`]; they change only through [`Keys`] (`recount`,
/// and the [`Slot`]s of connections out in tasks), with the pool's. `open <= max_open_per_key`, except that nothing forces a
/// drop when limits are never lowered at run time.
///
/// Queues: every live waiter of the key is in `idle_waiters` (it takes the
/// next connection of the key that comes free). A waiter for which no dial
/// could start sits in `dial_waiters` too when the key is at its cap, or in
/// the pool's global dial queue when the pool is at its cap. Entries of
/// waiters that were served or gave up are stale and skipped; each queue is
/// compacted when it holds more than twice as many entries as there are live
/// waiters, so stale entries never outnumber live ones by much.
///
/// Layout: what every checkout and return reads or writes comes first (the
/// key, the counts, which start with `lent`, `waiting` and `open`, then
/// the counters, which start with `gets`), and the entry starts a cache
/// line: with many keys an entry is
/// rarely in cache, and a checkout then misses on its first line only
/// (BENCHMARKS.md, "Inlining and layout").
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct KeyEntry<K, E, X> {
    pub(crate) key: K,
    counts: Counts,
    /// What the features keep for the key (its counters first).
    pub(crate) ext: X,
    pub(crate) idle_waiters: WaitQueue<WaiterId>,
    pub(crate) dial_waiters: WaitQueue<WaiterId>,
    pub(crate) last_error: Option<ConnectError<E>>,
    /// Bumped when the key's connections are closed on demand: a dial or a
    /// keepalive ping that started under an older epoch closes the
    /// connection it brings back.
    pub(crate) epoch: u32,
}

/// Slack before a queue is compacted: avoids compacting tiny queues over and over.
const COMPACT_SLACK: usize = 16;

impl<K, E, X> KeyEntry<K, E, X> {
    /// The key's counts (changed through [`Keys`] only).
    #[inline]
    pub(crate) fn counts(&self) -> &Counts {
        &self.counts
    }

    fn new(key: K, ext: X) -> Self {
        Self {
            key,
            epoch: 0,
            counts: Counts::default(),
            idle_waiters: WaitQueue::default(),
            dial_waiters: WaitQueue::default(),
            last_error: None,
            ext,
        }
    }

    /// Drops stale queue entries once they could outnumber the live waiters.
    pub(crate) fn tidy_queues(&mut self, is_live: impl Fn(WaiterId) -> bool) {
        if self.counts.waiting() == 0 {
            self.idle_waiters.clear();
            self.dial_waiters.clear();
            return;
        }
        let bound = 2 * self.counts.waiting() + COMPACT_SLACK;
        if self.idle_waiters.len() > bound {
            self.idle_waiters.compact(&is_live);
        }
        if self.dial_waiters.len() > bound {
            self.dial_waiters.compact(&is_live);
        }
    }
}

/// Maps keys to their state. A key is registered by its first get and
/// forgotten once it has neither an open connection nor a waiter, unless
/// the features remember it ([`KeyPoints::remembers`]; its `KeyId` then
/// stays valid in their deadlines).
///
/// Counts: `total` is the pool's [`Counts`], the sum of its keys' (a key is
/// forgotten only once its counts are zero). Counts change in one place,
/// which changes a key's and the total together: [`recount`](Keys::recount),
/// or, for a connection out in a task, the [`Slot`] that
/// [`open_slot`](Keys::open_slot) or [`take_slot`](Keys::take_slot) hands
/// out and [`give_back`](Keys::give_back) takes back.
#[derive(Debug)]
pub(crate) struct Keys<K, E, X: KeyPoints<K>> {
    /// foldhash, not SipHash: every checkout hashes its key, and keys come
    /// from the application, not from an attacker (foldhash is still seeded
    /// per map, so it is not trivially collided).
    ids: HashMap<K, KeyId, foldhash::fast::RandomState>,
    entries: Slab<KeyEntry<K, E, X::Key>>,
    /// The pool's counts: the sum of the entries'.
    total: Counts,
    /// The key [`id_or_insert`](Keys::id_or_insert) found last, tried before
    /// the map: a pool with one destination (or a burst to one) never hashes.
    /// Needs no invalidation: it is a hit only if the entry in that slot holds
    /// an equal key, and an entry's key is the one `ids` maps to its slot.
    last: Option<KeyId>,
    /// What the features keep for keys in general.
    pub(crate) ext: X,
}

impl<K, E, X: KeyPoints<K>> Keys<K, E, X> {
    pub(crate) fn new(ext: X) -> Self {
        Self {
            ids: HashMap::default(),
            entries: Slab::new(),
            total: Counts::default(),
            last: None,
            ext,
        }
    }
}

impl<K: Eq + std::hash::Hash + Clone, E, X: KeyPoints<K>> Keys<K, E, X> {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The pool's counts.
    #[inline]
    pub(crate) fn total(&self) -> &Counts {
        &self.total
    }

    /// Applies `change` to the counts of `id` and to the pool's: the one
    /// place where counts change. Returns `id`'s entry (one look-up for
    /// callers that count something else too). Every place but idle
    /// changes through a [`Slot`] instead ([`open_slot`](Keys::open_slot),
    /// [`take_slot`](Keys::take_slot), [`give_back`](Keys::give_back)):
    /// what is left here is waiters, and idle connections closing.
    #[inline]
    pub(crate) fn recount(&mut self, id: KeyId, change: Change) -> &mut KeyEntry<K, E, X::Key> {
        debug_assert!(
            !change.touches_slots(),
            "a connection counted anywhere but idle moves through its slot"
        );
        self.apply(id, change)
    }

    #[inline]
    fn apply(&mut self, id: KeyId, change: Change) -> &mut KeyEntry<K, E, X::Key> {
        self.total.apply(change);
        let entry = &mut self.entries[id.index()];
        entry.counts.apply(change);
        entry
    }

    /// A new connection of `id` starts counting in the task's place `place`
    /// (a dial).
    pub(crate) fn open_slot(&mut self, id: KeyId, place: Place) -> Slot {
        self.apply(id, Change::Open(place));
        Slot::new(id, place)
    }

    /// An idle (or held) connection of `id` goes out to a task for
    /// `place` (a keepalive ping, a recycle).
    #[inline]
    pub(crate) fn take_slot(&mut self, id: KeyId, place: Place) -> Slot {
        self.apply(id, Change::Move(Place::Idle, place));
        Slot::new(id, place)
    }

    /// An idle (or held) connection of `id` is lent. Returns the key's
    /// entry too (one look-up for a checkout that counts its get there).
    #[inline]
    pub(crate) fn lend_slot(&mut self, id: KeyId) -> (LentSlot, &mut KeyEntry<K, E, X::Key>) {
        let entry = self.apply(id, Change::Move(Place::Idle, Place::Lent));
        (LentSlot::new(id), entry)
    }

    /// The lending of `lent` ended: its connection counts as idle (held)
    /// again, until the caller places or closes it. Returns its key.
    #[inline]
    pub(crate) fn unlend(&mut self, lent: LentSlot) -> KeyId {
        let id = lent.into_key();
        self.apply(id, Change::Move(Place::Lent, Place::Idle));
        id
    }

    /// The task of `slot` ended: its connection (if any) counts as idle
    /// (held) again, until the caller places or closes it. Returns its key.
    #[inline]
    pub(crate) fn give_back(&mut self, slot: Slot) -> KeyId {
        let (id, place) = slot.into_parts();
        self.apply(id, Change::Move(place, Place::Idle));
        id
    }

    pub(crate) fn id(&self, key: &K) -> Option<KeyId> {
        self.ids.get(key).copied()
    }

    /// The id of `key`, registering it if needed.
    #[inline]
    pub(crate) fn id_or_insert(&mut self, key: &K) -> KeyId {
        if let Some(id) = self.last
            && self.entries.get(id.index()).is_some_and(|e| e.key == *key)
        {
            return id;
        }
        let id = match self.ids.get(key) {
            Some(id) => *id,
            None => self.insert(key),
        };
        self.last = Some(id);
        id
    }

    /// Registers `key`. Out of line: a new key is rare.
    #[cold]
    #[inline(never)]
    fn insert(&mut self, key: &K) -> KeyId {
        let ext = self.ext.new_key(key);
        let id = KeyId::from_index(self.entries.insert(KeyEntry::new(key.clone(), ext)));
        self.ids.insert(key.clone(), id);
        id
    }

    /// Whether `id` names a registered key.
    pub(crate) fn contains(&self, id: KeyId) -> bool {
        self.entries.contains(id.index())
    }

    pub(crate) fn get(&self, id: KeyId) -> &KeyEntry<K, E, X::Key> {
        &self.entries[id.index()]
    }

    pub(crate) fn get_mut(&mut self, id: KeyId) -> &mut KeyEntry<K, E, X::Key> {
        &mut self.entries[id.index()]
    }

    /// Forgets `id` if nothing refers to it any more at `now` (and it is
    /// still known: the same key may be offered twice in one transition),
    /// unless the features still remember it (see
    /// [`KeyPoints::remembers`]).
    pub(crate) fn forget_if_unused(&mut self, id: KeyId, now: Tick) {
        let Some(entry) = self.entries.get(id.index()) else {
            return;
        };
        if entry.counts.is_zero() && !self.ext.remembers(&entry.ext, now) {
            let entry = self.entries.remove(id.index());
            self.ids.remove(&entry.key);
        }
    }

    pub(crate) fn iter_mut(
        &mut self,
    ) -> impl Iterator<Item = (KeyId, &mut KeyEntry<K, E, X::Key>)> {
        self.entries
            .iter_mut()
            .map(|(i, e)| (KeyId::from_index(i), e))
    }

    /// Sets every key's record of the features to `f` of the records for
    /// keys in general and the key.
    pub(crate) fn update_ext(&mut self, f: impl Fn(&X, &K, &mut X::Key)) {
        for (_, entry) in self.entries.iter_mut() {
            f(&self.ext, &entry.key, &mut entry.ext);
        }
    }

    pub(crate) fn ids(&self) -> Vec<KeyId> {
        self.entries
            .iter()
            .map(|(i, _)| KeyId::from_index(i))
            .collect()
    }
}

#[cfg(test)]
mod tests;
