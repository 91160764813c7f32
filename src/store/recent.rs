//! The recently returned connections of a single-key pool: a short stack
//! that the next checkout takes from before the idle lists.
//!
//! A pool whose key type is zero-sized (`()`: one key value, as in bb8 or
//! deadpool) spends most of a get + return on bookkeeping its one key does
//! not need: the key look-up, unlinking the connection from two idle lists
//! and linking it back, the key's counts. So a return that would only park
//! the connection (nobody waits, the pool is open, the idle caps cannot
//! bind) instead leaves it *held* in its idle-set entry, at rest since now,
//! and pushes its [`ConnId`] here; a checkout pops the newest one, checks
//! its record as the idle path would (lifetime, idle timeout, health-check
//! policy), and lends it. Parking is deferred, not skipped: every other
//! transition that looks at idle connections or waiters parks these
//! connections first, oldest first (every [`Transition`](crate::core::Transition)
//! begins with `park_recent`), so it sees the pool as if they had been parked on their
//! return.
//!
//! Invariants (kept by the state, under its lock):
//! * every id here names an entry held in the idle set with its connection
//!   present and its record at rest since its return; these connections
//!   count as *lent* in the state's counts (snapshots report them idle),
//!   and the stack keeps their [`LentSlot`]s: a push takes the
//!   returned connection's, a pop or `take_all` hands one back with each
//!   connection;
//! * all of them are of one key (the stack's `key`, which its slots and its
//!   gets not yet taken are counted in);
//! * the stack is empty unless the pool is open and no getter waits, and the
//!   maintenance task wakes by the first deadline of each (lifetime, idle
//!   timeout, keepalive ping): so a connection resting here is closed or
//!   pinged on time, exactly as if it were parked;
//! * newest last: taking from the top and parking from the bottom keeps the
//!   idle set's LIFO order exact.

use crate::store::ConnId;
use crate::store::KeyId;
use crate::store::LentSlot;

/// How many returned connections wait here at most. A few: enough for the
/// connections a couple of worker threads cycle through; a return that
/// finds the stack full parks them all (the older ones are cold anyway).
pub(crate) const CAPACITY: usize = 4;

/// See the module docs. A cache line of its own (56 bytes, aligned to
/// 64): one line is all a fast checkout or return writes besides the
/// connection's own record and the lock's line, and a thread waiting for
/// the lock (spinning on the lock's line) does not pull this one away from
/// the thread that holds the lock (measured with `hot_path`'s threads mode:
/// two threads on a single-key pool went from ~1.5× the keyed path's time
/// per get + return to about the same).
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct Recent {
    /// Gets served from the stack not yet added to the counters (of the
    /// pool and of `key`): [`take_gets`](Recent::take_gets).
    gets: u64,
    key: KeyId,
    len: u32,
    /// 0 when the pool cannot use the stack (see [`Recent::new`]).
    capacity: u32,
    ids: [Option<ConnId>; CAPACITY],
}

impl Recent {
    /// A stack for a pool that may use it (`enabled`), or one that never
    /// takes anything.
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            gets: 0,
            key: KeyId::from_index(0),
            len: 0,
            capacity: if enabled { CAPACITY as u32 } else { 0 },
            ids: [None; CAPACITY],
        }
    }

    /// Lets the pool use the stack from now on, or not (it must be empty).
    pub(crate) fn set_enabled(&mut self, enabled: bool) {
        debug_assert_eq!(self.len, 0);
        self.capacity = if enabled { CAPACITY as u32 } else { 0 };
    }

    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Counts a get served from the stack.
    #[inline]
    pub(crate) fn count_get(&mut self) {
        self.gets += 1;
    }

    /// Gets served from the stack and not yet taken, and their key.
    pub(crate) fn gets(&self) -> (KeyId, u64) {
        (self.key, self.gets)
    }

    /// [`gets`](Recent::gets), for the counters, which now own them.
    #[inline]
    pub(crate) fn take_gets(&mut self) -> (KeyId, u64) {
        (self.key, std::mem::take(&mut self.gets))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a return may push: the pool uses the stack and it has room.
    #[inline]
    pub(crate) fn has_room(&self) -> bool {
        self.len < self.capacity
    }

    /// Adds the newest, `id`, with its slot in the lent count: `has_room`
    /// must hold.
    #[inline]
    pub(crate) fn push(&mut self, lent: LentSlot, id: ConnId) {
        let key = lent.into_key();
        debug_assert!(self.has_room());
        debug_assert!(self.len == 0 || self.key == key, "one key only");
        self.key = key;
        self.ids[self.len as usize] = Some(id);
        self.len += 1;
    }

    /// The newest, left in place.
    #[inline]
    pub(crate) fn top(&self) -> Option<ConnId> {
        self.len.checked_sub(1).and_then(|i| self.ids[i as usize])
    }

    /// Removes the newest (after [`top`](Recent::top) named it), and hands
    /// back its slot in the lent count. Its place in the array keeps the
    /// stale id: nothing reads past `len`.
    #[inline]
    pub(crate) fn pop(&mut self) -> LentSlot {
        self.len -= 1;
        LentSlot::new(self.key)
    }

    /// Empties the stack, oldest first, each connection with its slot.
    pub(crate) fn take_all(&mut self) -> impl Iterator<Item = (LentSlot, ConnId)> + use<> {
        let ids = std::mem::replace(&mut self.ids, [None; CAPACITY]);
        let len = std::mem::take(&mut self.len) as usize;
        let key = self.key;
        ids.into_iter()
            .take(len)
            .flatten()
            .map(move |id| (LentSlot::new(key), id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Records;

    fn ids(n: usize) -> (KeyId, Vec<ConnId>) {
        let key = KeyId::from_index(3);
        let mut set = Records::default();
        (key, (0..n).map(|i| set.insert(key, i)).collect())
    }

    #[test]
    fn newest_on_top_oldest_out_first() {
        let (key, ids) = ids(3);
        let mut recent = Recent::new(true);
        for &id in &ids {
            recent.push(LentSlot::new(key), id);
        }
        assert_eq!(recent.top(), Some(ids[2]));
        assert_eq!(recent.pop().into_key(), key);
        assert_eq!(recent.top(), Some(ids[1]));
        let taken: Vec<_> = recent
            .take_all()
            .map(|(lent, id)| {
                assert_eq!(lent.key(), key);
                id
            })
            .collect();
        assert_eq!(taken, ids[..2]);
        assert!(recent.is_empty());
        assert_eq!(recent.top(), None);
    }

    #[test]
    fn holds_at_most_its_capacity_and_nothing_when_disabled() {
        let (key, ids) = ids(CAPACITY);
        let mut recent = Recent::new(true);
        for &id in &ids {
            assert!(recent.has_room());
            recent.push(LentSlot::new(key), id);
        }
        assert!(!recent.has_room());
        assert_eq!(recent.len(), CAPACITY);
        assert!(!Recent::new(false).has_room());
    }
}
