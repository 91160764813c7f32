//! Per-key state: each destination's counts, wait queues and last dial
//! error, and the registry that maps keys to it; the counts of connections
//! and waiters, for one key or the whole pool, the one kind of change that
//! moves them, and the slots a connection holds while it counts anywhere
//! but idle: lent, or out in a task.

use slab::Slab;
use std::collections::HashMap;

use crate::clock::Tick;
use crate::engine::KeyId;
use crate::engine::KeyPoints;
use crate::engine::WaitQueue;
use crate::engine::WaiterId;
use crate::error::ConnectError;

/// One destination's state (Go's per-host maps, gathered in one place).
///
/// Counts: see [`Counts`]; they change only through [`Keys`], with the
/// pool's. `open <= max_open_per_key`, except that nothing forces a
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
/// the features' record, which starts with what a checkout counts), and the
/// entry starts a cache line: with many keys an entry is rarely in cache,
/// and a checkout then misses on its first line only (BENCHMARKS.md,
/// "Inlining and layout").
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct KeyEntry<K, E, X> {
    pub(crate) key: K,
    counts: Counts,
    /// What the features keep for the key.
    pub(crate) ext: X,
    pub(crate) idle_waiters: WaitQueue<WaiterId>,
    pub(crate) dial_waiters: WaitQueue<WaiterId>,
    pub(crate) last_error: Option<ConnectError<E>>,
    /// Bumped when the key's connections are closed on demand: a dial or a
    /// task that started under an older epoch closes the connection it
    /// brings back.
    pub(crate) epoch: u32,
}

impl<K, E, X> KeyEntry<K, E, X> {
    /// The key's counts (changed through [`Keys`] only).
    #[inline]
    pub(crate) fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Drops stale queue entries once they could outnumber the live waiters.
    pub(crate) fn tidy_queues(&mut self, is_live: impl Fn(WaiterId) -> bool) {
        let live = self.counts.waiting;
        self.idle_waiters.tidy(live, &is_live);
        self.dial_waiters.tidy(live, &is_live);
    }
}

/// Maps keys to their state. A key is registered by its first get and
/// forgotten once it has neither an open connection nor a waiter, unless
/// the features remember it ([`KeyPoints::remembers`]; its `KeyId` then
/// stays valid in their deadlines).
///
/// Counts: `total` is the pool's [`Counts`], the sum of its keys' (a key is
/// forgotten only once its counts are zero). Counts change in one place
/// (`apply`), a key's and the total together: waiters and idle
/// connections closing through their own methods, a connection lent or
/// out in a task through the [`Slot`] that [`take_slot`](Keys::take_slot)
/// or [`open_slot`](Keys::open_slot) hands out and
/// [`give_back`](Keys::give_back) takes back.
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

    /// Applies `f` to the counts of `id` and to the pool's: the one place
    /// where counts change. Returns `id`'s entry (one look-up for callers
    /// that count something else too).
    #[inline]
    fn apply(&mut self, id: KeyId, f: impl Fn(&mut Counts)) -> &mut KeyEntry<K, E, X::Key> {
        f(&mut self.total);
        let entry = &mut self.entries[id.index()];
        f(&mut entry.counts);
        entry
    }

    /// A getter of `id` starts waiting.
    pub(crate) fn wait(&mut self, id: KeyId) -> &mut KeyEntry<K, E, X::Key> {
        self.apply(id, |c| c.waiting += 1)
    }

    /// A waiter of `id` was served or gave up.
    pub(crate) fn unwait(&mut self, id: KeyId) {
        self.apply(id, |c| c.waiting -= 1);
    }

    /// A connection of `id` counted as idle (or held) stops counting: it
    /// is closed, or it left the pool. Every other place changes through
    /// a [`Slot`].
    pub(crate) fn close_idle(&mut self, id: KeyId) {
        self.apply(id, |c| c.open -= 1);
    }

    /// A new connection of `id` starts counting in the task's place `place`
    /// (a dial).
    pub(crate) fn open_slot(&mut self, id: KeyId, place: Place) -> Slot {
        self.apply(id, |c| {
            c.open += 1;
            *c.at(place) += 1;
        });
        Slot { key: id, place }
    }

    /// An idle (or held) connection of `id` is lent, or goes out to a
    /// feature's task, as `place` says. Returns the key's entry too (one
    /// look-up for a checkout that counts its get there).
    #[inline]
    pub(crate) fn take_slot(
        &mut self,
        id: KeyId,
        place: Place,
    ) -> (Slot, &mut KeyEntry<K, E, X::Key>) {
        let entry = self.apply(id, |c| *c.at(place) += 1);
        (Slot { key: id, place }, entry)
    }

    /// The task or the loan of `slot` ended: its connection (if any)
    /// counts as idle (held) again, until the caller places or closes it.
    /// Returns its key.
    #[inline]
    pub(crate) fn give_back(&mut self, slot: Slot) -> KeyId {
        self.apply(slot.key, |c| *c.at(slot.place) -= 1);
        slot.key
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
        let id = KeyId::from_index(self.entries.insert(KeyEntry {
            key: key.clone(),
            counts: Counts::default(),
            ext: self.ext.new_key(key),
            idle_waiters: WaitQueue::default(),
            dial_waiters: WaitQueue::default(),
            last_error: None,
            epoch: 0,
        }));
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
    /// [`KeyPoints::remembers`]) in a pool that is not `closed`.
    pub(crate) fn forget_if_unused(&mut self, id: KeyId, now: Tick, closed: bool) {
        let Some(entry) = self.entries.get(id.index()) else {
            return;
        };
        if entry.counts.is_zero() && (closed || !self.ext.remembers(&entry.ext, now)) {
            let entry = self.entries.remove(id.index());
            self.ids.remove(&entry.key);
        }
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

/// Where a connection the pool counts is, if not idle. Each place has its
/// own count; `open` counts them all with the idle ones (`idle()` is what
/// the places leave of `open`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// With a borrower (a connection a feature lends counts once,
    /// whatever its handles), or handed to a waiter that has not picked it
    /// up yet.
    Lent,
    /// Being dialed.
    Dialing,
    /// Out in a feature's task (it comes back through the hand-off).
    Out,
}

/// A connection of a key counted anywhere but idle: lent, dialing, or out
/// in a feature's task. Taken under the lock when the loan or the task is
/// decided ([`Keys::take_slot`] for an idle connection lent or taken out,
/// [`Keys::open_slot`] for a dial), carried by the
/// borrower or the task, and given back by value when the connection comes
/// back ([`Keys::give_back`]), the key's and the pool's counts together.
///
/// Who holds it: for a connection lent exclusively, the borrower's
/// [`Lent`](crate::engine::Lent) (given back from the `Pooled` guard's
/// `Drop`, or by the transition that finds a waiter never picked it up);
/// for a connection a feature lends, the feature's record; for a task, the
/// task's guard, so a task that dies (a panic, a runtime shutting down)
/// gives it back from the guard's `Drop`.
///
/// Neither `Clone` nor `Copy`: a slot is given back once.
#[must_use = "a slot not given back leaves its count behind"]
#[derive(Debug)]
pub(crate) struct Slot {
    key: KeyId,
    place: Place,
}

impl Slot {
    /// The key whose connection this is.
    #[inline]
    pub(crate) fn key(&self) -> KeyId {
        self.key
    }

    /// Where the connection counts.
    #[inline]
    pub(crate) fn place(&self) -> Place {
        self.place
    }
}

/// The counts of one key, or of the whole pool.
///
/// Invariant: `open = idle + lent + dialing + out`, each `≥ 0`. The
/// pool's counts change only through [`Keys`] (its counting methods, and
/// a [`Slot`]'s taking and giving back), which applies each change to the
/// key's counts and to the pool's together: the pool's counts are the sum
/// of its keys'. Their fields are open to read: [`Keys`] hands out only
/// `&Counts`, so nothing else can change them.
///
/// Layout: `lent`, `waiting` and `open`, which every checkout and return
/// reads or writes, come first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Counts {
    /// Connections lent (see [`Place::Lent`]).
    pub(crate) lent: usize,
    /// Getters waiting.
    pub(crate) waiting: usize,
    /// Connections that count against the caps.
    pub(crate) open: usize,
    /// Dials in flight.
    pub(crate) dialing: usize,
    /// Connections out in a feature's task.
    pub(crate) out: usize,
}

impl Counts {
    /// Idle connections: what the other places leave of `open`.
    #[inline]
    pub(crate) fn idle(&self) -> usize {
        self.open - self.lent - self.dialing - self.out
    }

    /// Whether nothing counts here: no connection, no waiter.
    #[inline]
    pub(crate) fn is_zero(&self) -> bool {
        self.open == 0 && self.waiting == 0
    }

    /// The count of `place`.
    #[inline]
    fn at(&mut self, place: Place) -> &mut usize {
        match place {
            Place::Lent => &mut self.lent,
            Place::Dialing => &mut self.dialing,
            Place::Out => &mut self.out,
        }
    }
}

#[cfg(test)]
mod tests;
