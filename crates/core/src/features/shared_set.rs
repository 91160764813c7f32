//! Shared lending: connections lent to several borrowers at once (HTTP/2
//! connections, gRPC channels), and the handles their borrowers hold.
//!
//! A connection whose manager answered [`Lending::shared`](crate::Lending::shared)
//! with a limit above 1 lives in one of two places:
//!
//! * with no borrower, in the idle set like any other connection, so idle
//!   timeout, lifetime, background keepalive and LRU eviction treat it the
//!   same way; its idle time starts when its *last* borrower returns;
//! * with one borrower or more, here: the pool keeps the connection, and each
//!   borrower holds a handle (a clone of it) naming its slot.
//!
//! A slot is removed only when its borrower count is back to zero, and every
//! handle holds a borrow, so a slot index held by a handle always names its
//! connection: no generation is needed.
//!
//! A connection taken from the idle set for a health check takes no other
//! borrower until the check passes: a getter never joins a connection that
//! is being checked (it waits, or dials).
//!
//! A connection stops taking borrowers once it is *draining*: a borrower
//! found it broken (`health`, `mark_broken`, a failed health check), or it
//! reached its lifetime or its uses. Its borrowers finish, and the last one
//! to return closes it. Draining connections still count as open (and lent),
//! so a key at its cap waits for them to finish before it dials again.
//!
//! A connection the manager says is *busy* (`Lending::busy_when`: a
//! borrower's transaction holds it) takes a new borrower only when no other
//! connection of the key has room and none can come.
//!
//! Choosing a connection for a getter scans the key's lent shared
//! connections for the least-loaded one with room: O(connections of the key),
//! which `max_open_per_key` bounds (and which is a handful for the uses this
//! is for).

use slab::Slab;

use super::Conn;
use crate::contain;
use crate::engine::KeyId;
use crate::engine::Slot;
use crate::engine::{Back, Lent};
use crate::manager::{Busy, Share};
use crate::reason::CloseReason;

#[derive(Debug)]
struct Entry<C> {
    conn: Conn<C>,
    /// The connection's place in the lent count (of its key).
    lent: Slot,
    borrowers: u32,
    /// Index of this slot in its key's list.
    pos: usize,
    /// Set: no new borrower; closed for this reason when the last one returns.
    draining: Option<CloseReason>,
    /// Its first borrower is health-checking it (it came from the idle set):
    /// no other borrower until the check passes.
    checking: bool,
}

/// The shared connections that have borrowers, per key.
///
/// Invariants: every entry has `borrowers >= 1` outside a transition, except
/// while the transition that inserted it serves its first borrowers;
/// `borrowers` is the sum of the entries' borrower counts; each entry's slot
/// is in `per_key[entry.lent.key()]` at index `entry.pos`.
#[derive(Debug)]
pub(crate) struct Borrowed<C> {
    entries: Slab<Entry<C>>,
    /// Indexed by `KeyId`: the slots of the key's lent shared connections.
    per_key: Vec<Vec<usize>>,
    borrowers: usize,
    /// How a handle is made (`C::clone`, from the manager's `Lending`).
    share: Option<Share<C>>,
    /// Which connections a new borrower would wait behind (`Lending::busy_when`).
    busy: Option<Busy<C>>,
}

impl<C> Default for Borrowed<C> {
    fn default() -> Self {
        Self {
            entries: Slab::new(),
            per_key: Vec::new(),
            borrowers: 0,
            share: None,
            busy: None,
        }
    }
}

impl<C> Borrowed<C> {
    /// Shared connections here (each has a borrower, or is being checked,
    /// at the end of every transition).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Handles out, over all shared connections.
    pub(crate) fn borrowers(&self) -> usize {
        self.borrowers
    }

    /// Handles out to connections of `key`.
    pub(crate) fn borrowers_of(&self, key: KeyId) -> usize {
        self.per_key.get(key.index()).map_or(0, |slots| {
            slots
                .iter()
                .map(|&s| self.entries[s].borrowers as usize)
                .sum()
        })
    }

    /// Remembers how handles are made and, if `busy` says, which
    /// connections are busy: the same for every connection of a pool (the
    /// connection type's `Clone`, and its manager's `busy_when` test, which
    /// stays once given).
    pub(crate) fn set_lending(&mut self, share: Share<C>, busy: Option<Busy<C>>) {
        self.share = Some(share);
        self.busy = busy.or(self.busy);
    }

    /// Whether the connections may be busy at all: if not, no getter
    /// needs to know whether its key may dial before it joins one.
    pub(crate) fn tracks_busy(&self) -> bool {
        self.busy.is_some()
    }

    /// Whether `slot` can take one more borrower, a busy one only if
    /// `busy_ok`.
    pub(crate) fn takes_borrower(&self, slot: usize, busy_ok: bool) -> bool {
        self.has_room(slot) && (busy_ok || !says_busy(self.busy, &self.entries[slot].conn.conn))
    }

    /// Moves a shared connection in, with no borrower yet, and the slot it
    /// holds in its key's lent count.
    pub(crate) fn insert(&mut self, lent: Slot, conn: Conn<C>) -> usize {
        let key = lent.key();
        if self.per_key.len() <= key.index() {
            self.per_key.resize_with(key.index() + 1, Vec::new);
        }
        let list = &mut self.per_key[key.index()];
        let slot = self.entries.insert(Entry {
            conn,
            lent,
            borrowers: 0,
            pos: list.len(),
            draining: None,
            checking: false,
        });
        list.push(slot);
        slot
    }

    /// Takes the connection of `slot` out, with its slot in the lent count;
    /// it must have no borrower.
    pub(crate) fn remove(&mut self, slot: usize) -> (Slot, Conn<C>) {
        let entry = self.entries.remove(slot);
        debug_assert_eq!(entry.borrowers, 0);
        let list = &mut self.per_key[entry.lent.key().index()];
        list.swap_remove(entry.pos);
        if let Some(&moved) = list.get(entry.pos) {
            self.entries[moved].pos = entry.pos;
        }
        (entry.lent, entry.conn)
    }

    /// One more borrower of `slot`: a handle to it.
    pub(crate) fn lend(&mut self, slot: usize) -> Lent<C> {
        let share = self
            .share
            .expect("a shared connection came with its share function");
        debug_assert!(self.has_room(slot));
        let entry = &mut self.entries[slot];
        entry.borrowers += 1;
        entry.conn.uses = entry.conn.uses.saturating_add(1);
        self.borrowers += 1;
        Lent {
            conn: share(&entry.conn.conn),
            uses: entry.conn.uses.into(),
            back: Back::Handle(entry.lent.key(), slot),
        }
    }

    /// A borrower of `slot` is done; returns the borrowers left.
    pub(crate) fn give_back(&mut self, slot: usize) -> u32 {
        let entry = &mut self.entries[slot];
        entry.borrowers -= 1;
        self.borrowers -= 1;
        entry.borrowers
    }

    /// A borrower of `slot` is done, if others remain: false (nothing
    /// done) for its last borrower.
    pub(crate) fn give_back_unless_last(&mut self, slot: usize) -> bool {
        let others = self.entries[slot].borrowers > 1;
        if others {
            self.give_back(slot);
        }
        others
    }

    /// The connection of `slot` and its key.
    pub(crate) fn conn_mut(&mut self, slot: usize) -> (KeyId, &mut Conn<C>) {
        let entry = &mut self.entries[slot];
        (entry.lent.key(), &mut entry.conn)
    }

    /// Whether `slot` has no borrower.
    pub(crate) fn is_unborrowed(&self, slot: usize) -> bool {
        self.entries[slot].borrowers == 0
    }

    /// Why `slot` is draining, if it is.
    pub(crate) fn draining(&self, slot: usize) -> Option<CloseReason> {
        self.entries[slot].draining
    }

    /// Takes no new borrower for `slot` from now on (the first reason stays).
    pub(crate) fn drain(&mut self, slot: usize, reason: CloseReason) {
        self.entries[slot].draining.get_or_insert(reason);
    }

    /// Drains every connection of `key` for `reason`.
    pub(crate) fn drain_key(&mut self, key: KeyId, reason: CloseReason) {
        if let Some(slots) = self.per_key.get(key.index()) {
            for &slot in slots {
                self.entries[slot].draining.get_or_insert(reason);
            }
        }
    }

    /// Marks `slot` as under (or done with) its first borrower's health check.
    pub(crate) fn set_checking(&mut self, slot: usize, checking: bool) {
        self.entries[slot].checking = checking;
    }

    /// How many connections of `key` are under their first borrower's
    /// health check (a key has few connections: a walk of its list).
    pub(crate) fn checking_of(&self, key: KeyId) -> usize {
        self.per_key.get(key.index()).map_or(0, |slots| {
            slots.iter().filter(|&&s| self.entries[s].checking).count()
        })
    }

    /// Whether `slot` can take one more borrower.
    pub(crate) fn has_room(&self, slot: usize) -> bool {
        let entry = &self.entries[slot];
        entry.draining.is_none()
            && !entry.checking
            && entry.borrowers < u32::from(entry.conn.ext.max_borrowers)
    }

    /// The connection of `key` with room that is the least loaded, or
    /// with `fill` the fullest (filling one before the next), and whether
    /// it is busy: a busy one only if none other has room, after draining
    /// every one `retire` gives a reason for (expired, used up).
    pub(crate) fn choose(
        &mut self,
        key: KeyId,
        fill: bool,
        mut retire: impl FnMut(&Conn<C>) -> Option<CloseReason>,
    ) -> Option<(usize, bool)> {
        let better = |load: u32, best: u32| if fill { load > best } else { load < best };
        let busy = self.busy;
        let list = self.per_key.get(key.index())?;
        // The best connection that is not busy, and the best busy one.
        let mut best: [Option<(usize, u32)>; 2] = [None, None];
        for &slot in list {
            if !self.has_room(slot) {
                continue;
            }
            let entry = &mut self.entries[slot];
            if let Some(reason) = retire(&entry.conn) {
                entry.draining = Some(reason);
                continue;
            }
            let best = &mut best[usize::from(says_busy(busy, &entry.conn.conn))];
            if best.is_none_or(|(_, load)| better(entry.borrowers, load)) {
                *best = Some((slot, entry.borrowers));
            }
        }
        let [free, busy] = best;
        let busy = busy.map(|(slot, _)| (slot, true));
        free.map(|(slot, _)| (slot, false)).or(busy)
    }
}

/// Whether `busy`, if any, says `conn` is busy (a panic says no).
fn says_busy<C>(busy: Option<Busy<C>>, conn: &C) -> bool {
    busy.is_some_and(|busy| contain::call(|| busy(conn)).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::Conn;
    use crate::clock::Tick;
    use crate::engine::KeyId;
    use crate::engine::{Back, Lent};
    use crate::engine::{Place, Slot};
    use crate::features::{Borrowed, ConnExt};
    use crate::reason::CloseReason;

    /// A connection's record for unit tests: no keepalive, exclusive.
    impl Default for ConnExt {
        fn default() -> Self {
            Self {
                next_ping: Tick::NEVER,
                ping_every_ns: u64::MAX,
                missed: 0,
                max_borrowers: 1,
            }
        }
    }

    /// A slot in `key`'s lent count, as `Keys::take_slot` hands out.
    fn lent(key: KeyId) -> Slot {
        Slot::new(key, Place::Lent)
    }

    fn conn(id: u32, max: u16) -> Conn<u32> {
        let mut c = Conn::bare(id);
        c.ext.max_borrowers = max;
        c
    }

    fn handle_of(lent: Lent<u32>) -> (u32, usize) {
        match lent.back {
            Back::Handle(_, slot) => (lent.conn, slot),
            Back::Own(..) => panic!("a shared connection lends handles"),
        }
    }

    /// [`Borrowed::choose`], a busy connection only if `busy_ok`.
    fn choose(
        set: &mut Borrowed<u32>,
        k: KeyId,
        busy_ok: bool,
        fill: bool,
        retire: impl FnMut(&Conn<u32>) -> Option<CloseReason>,
    ) -> Option<usize> {
        let chosen = set.choose(k, fill, retire);
        chosen
            .filter(|&(_, busy)| busy_ok || !busy)
            .map(|(slot, _)| slot)
    }

    /// A busy connection is chosen only when none other has room, and then
    /// only if `busy_ok`; a panicking test counts as not busy.
    #[test]
    fn a_busy_connection_comes_last() {
        let k = KeyId::from_index(0);
        let mut set = Borrowed::default();
        // Connection 1 is busy (odd ids), 2 not, 4 panics.
        set.set_lending(
            u32::clone,
            Some(|id| {
                assert_ne!(*id, 4, "a busy test that panics");
                id % 2 == 1
            }),
        );
        let a = set.insert(lent(k), conn(1, 3));
        set.lend(a);
        assert_eq!(choose(&mut set, k, false, false, |_| None), None);
        assert_eq!(choose(&mut set, k, true, false, |_| None), Some(a));
        assert!(!set.takes_borrower(a, false));
        assert!(set.takes_borrower(a, true));
        let b = set.insert(lent(k), conn(2, 3));
        set.lend(b);
        set.lend(b);
        // `b` is more loaded, but not busy.
        assert_eq!(choose(&mut set, k, true, false, |_| None), Some(b));
        let c = set.insert(lent(k), conn(4, 3));
        set.lend(c);
        assert_eq!(choose(&mut set, k, false, false, |_| None), Some(c));
    }

    #[test]
    fn the_fullest_with_room_fills_first() {
        let k = KeyId::from_index(0);
        let mut set = Borrowed::default();
        set.set_lending(u32::clone, None);
        let a = set.insert(lent(k), conn(1, 3));
        let b = set.insert(lent(k), conn(2, 3));
        set.lend(a);
        set.lend(b);
        set.lend(b);
        assert_eq!(choose(&mut set, k, true, true, |_| None), Some(b));
        set.lend(b);
        assert_eq!(
            choose(&mut set, k, true, true, |_| None),
            Some(a),
            "b is full"
        );
        assert_eq!(choose(&mut set, k, true, false, |_| None), Some(a));
    }

    #[test]
    fn least_loaded_with_room_and_draining() {
        let k = KeyId::from_index(0);
        let mut set = Borrowed::default();
        set.set_lending(u32::clone, None);
        let a = set.insert(lent(k), conn(1, 2));
        let b = set.insert(lent(k), conn(2, 2));
        assert_eq!(handle_of(set.lend(a)), (1, a));
        // b has no borrower: least loaded.
        assert_eq!(choose(&mut set, k, true, false, |_| None), Some(b));
        set.lend(b);
        set.lend(b);
        // b is full: a, with room, is chosen.
        assert_eq!(choose(&mut set, k, true, false, |_| None), Some(a));
        set.lend(a);
        assert_eq!(
            choose(&mut set, k, true, false, |_| None),
            None,
            "both full"
        );
        assert_eq!(set.borrowers(), 4);
        assert_eq!(set.give_back(b), 1);
        // b has room again but is retired: drained, never chosen.
        assert_eq!(
            choose(&mut set, k, true, false, |c| (c.conn == 2)
                .then_some(CloseReason::Lifetime)),
            None
        );
        assert_eq!(set.draining(b), Some(CloseReason::Lifetime));
        assert_eq!(set.give_back(b), 0);
        // Removing b moves a within the key's list; a stays reachable. Its
        // slot in the lent count comes out with it.
        let (lent, _) = set.remove(b);
        assert_eq!(lent.key(), k);
        set.give_back(a);
        assert_eq!(choose(&mut set, k, true, false, |_| None), Some(a));
        assert_eq!(set.borrowers(), 1);
        assert_eq!(set.borrowers_of(k), 1);
        assert_eq!(
            choose(&mut set, KeyId::from_index(5), true, false, |_| None),
            None
        );
    }
}
