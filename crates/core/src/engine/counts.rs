//! The counts of connections and waiters, for one key or the whole pool,
//! the one kind of change that moves them, and the slots a connection
//! holds while it counts anywhere but idle: lent, or out in a task.

use super::ids::KeyId;

/// Where a connection the pool counts is. Each place but `Idle` has its own
/// count; `open` counts them all. (The idle connections are counted by the
/// [`Records`](crate::engine::Records) that hold them: `idle()` is what the
/// other places leave of `open`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// In the idle set.
    Idle,
    /// With a borrower (a shared connection counts once), or handed to a
    /// waiter that has not picked it up yet.
    Lent,
    /// Being dialed.
    Dialing,
    /// Out in a feature's task (it comes back through the hand-off).
    Out,
}

impl Place {
    /// Whether a connection here is out in a task (a dial, a feature's)
    /// and counted through a [`Slot`].
    pub(crate) fn is_task(self) -> bool {
        matches!(self, Place::Dialing | Place::Out)
    }
}

/// A connection of a key counted in a task's place (dialing, or out in a
/// feature's task): taken when the task is decided, under the lock
/// ([`Keys::open_slot`](crate::engine::Keys::open_slot) for a dial,
/// [`Keys::take_slot`](crate::engine::Keys::take_slot) for an idle
/// connection taken out), carried by the task, and given back by value
/// when the task's result comes back
/// ([`Keys::give_back`](crate::engine::Keys::give_back)), the key's and
/// the pool's counts together.
///
/// Neither `Clone` nor `Copy`: a slot is given back once. Its task's guard
/// holds it, so a task that dies (a panic, a runtime shutting down) gives
/// it back from the guard's `Drop`.
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

    /// Made only by [`Keys`](crate::engine::Keys), with the count it stands for.
    pub(crate) fn new(key: KeyId, place: Place) -> Self {
        debug_assert!(place.is_task());
        Self { key, place }
    }

    /// Taken apart only by [`Keys::give_back`](crate::engine::Keys::give_back).
    pub(crate) fn into_parts(self) -> (KeyId, Place) {
        (self.key, self.place)
    }
}

/// A connection of a key counted as lent: taken when it is lent, under the
/// lock ([`Keys::lend_slot`](crate::engine::Keys::lend_slot)), and given
/// back by value when it comes back idle
/// ([`Keys::unlend`](crate::engine::Keys::unlend)), the key's and the
/// pool's counts together.
///
/// Who holds it: for a connection lent exclusively, the borrower's
/// [`Lent`](crate::engine::Lent) (given back from the `Pooled` guard's
/// `Drop`, or by the transition that finds a waiter never picked it up);
/// for a shared connection, its entry in the
/// [`Borrowed`](crate::engine::Borrowed) set, whatever its borrowers.
///
/// Neither `Clone` nor `Copy`: a slot is given back once. (A [`Slot`]
/// without its place: the place is `Lent`, and the key shares a word with
/// the connection's id in the guard every checkout moves.)
#[must_use = "a slot not given back leaves its count behind"]
#[derive(Debug)]
pub(crate) struct LentSlot {
    key: KeyId,
}

impl LentSlot {
    /// The key whose connection this is.
    #[inline]
    pub(crate) fn key(&self) -> KeyId {
        self.key
    }

    /// Made only by the store: [`Keys`](crate::engine::Keys) (and the
    /// store's tests).
    #[inline]
    pub(crate) fn new(key: KeyId) -> Self {
        Self { key }
    }

    /// Taken apart only by the store: [`Keys::unlend`](crate::engine::Keys::unlend).
    #[inline]
    pub(crate) fn into_key(self) -> KeyId {
        self.key
    }
}

/// One change of the counts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Change {
    /// A connection starts counting in a place (a dial starts).
    Open(Place),
    /// A connection stops counting (it is closed, its dial failed or its
    /// task died with it).
    Close(Place),
    /// A connection moves from one place to another.
    Move(Place, Place),
    /// A getter starts waiting.
    Wait,
    /// A waiter was served or gave up.
    Unwait,
}

impl Change {
    /// Whether it moves a count into or out of a place counted by slots
    /// (every place but idle).
    pub(crate) fn touches_slots(self) -> bool {
        match self {
            Change::Open(p) | Change::Close(p) => p != Place::Idle,
            Change::Move(a, b) => a != Place::Idle || b != Place::Idle,
            Change::Wait | Change::Unwait => false,
        }
    }
}

/// The counts of one key, or of the whole pool.
///
/// Invariant: `open = idle + lent + dialing + out`, each
/// `≥ 0`. The fields change only through [`Change`]s, and only through
/// [`Keys`](crate::engine::Keys) (`recount`, and a [`Slot`]'s or a
/// [`LentSlot`]'s taking and giving back), which applies each change to the key's counts and to the
/// pool's together: the pool's counts are the sum of its keys'.
///
/// Layout: `lent`, `waiting` and `open`, which every checkout and return
/// reads or writes, come first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Counts {
    lent: usize,
    waiting: usize,
    open: usize,
    dialing: usize,
    out: usize,
}

impl Counts {
    /// Connections that count against the caps.
    #[inline]
    pub(crate) fn open(&self) -> usize {
        self.open
    }

    /// Connections lent (see [`Place::Lent`]).
    #[inline]
    pub(crate) fn lent(&self) -> usize {
        self.lent
    }

    /// Dials in flight.
    #[inline]
    pub(crate) fn dialing(&self) -> usize {
        self.dialing
    }

    /// Connections out in a feature's task.
    #[inline]
    pub(crate) fn out(&self) -> usize {
        self.out
    }

    /// Getters waiting.
    #[inline]
    pub(crate) fn waiting(&self) -> usize {
        self.waiting
    }

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

    /// Applies `change` (to the key's and the pool's counts alike: see
    /// [`Keys`](crate::engine::Keys)).
    #[inline]
    pub(crate) fn apply(&mut self, change: Change) {
        match change {
            Change::Open(to) => {
                self.open += 1;
                if let Some(count) = self.at(to) {
                    *count += 1;
                }
            }
            Change::Close(from) => {
                self.open -= 1;
                if let Some(count) = self.at(from) {
                    *count -= 1;
                }
            }
            Change::Move(from, to) => {
                if let Some(count) = self.at(from) {
                    *count -= 1;
                }
                if let Some(count) = self.at(to) {
                    *count += 1;
                }
            }
            Change::Wait => self.waiting += 1,
            Change::Unwait => self.waiting -= 1,
        }
    }

    /// The count of `place` (`Idle` has none of its own).
    #[inline]
    fn at(&mut self, place: Place) -> Option<&mut usize> {
        match place {
            Place::Idle => None,
            Place::Lent => Some(&mut self.lent),
            Place::Dialing => Some(&mut self.dialing),
            Place::Out => Some(&mut self.out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Change, Counts, Place};

    #[test]
    fn a_connection_moves_through_the_places_and_open_counts_it_once() {
        let mut c = Counts::default();
        c.apply(Change::Open(Place::Dialing));
        assert_eq!((c.open(), c.dialing(), c.idle()), (1, 1, 0));
        c.apply(Change::Move(Place::Dialing, Place::Idle));
        assert_eq!((c.open(), c.dialing(), c.idle()), (1, 0, 1));
        c.apply(Change::Move(Place::Idle, Place::Lent));
        assert_eq!((c.open(), c.lent(), c.idle()), (1, 1, 0));
        c.apply(Change::Move(Place::Lent, Place::Out));
        assert_eq!((c.lent(), c.out()), (0, 1));
        c.apply(Change::Close(Place::Out));
        assert_eq!(c, Counts::default());
        assert!(c.is_zero());
        c.apply(Change::Wait);
        assert!(!c.is_zero());
        c.apply(Change::Unwait);
        assert!(c.is_zero());
    }
}
