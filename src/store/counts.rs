//! The counts of connections and waiters, for one key or the whole pool,
//! and the one kind of change that moves them.

/// Where a connection the pool counts is. Each place but `Idle` has its own
/// count; `open` counts them all. (The idle connections are counted by the
/// [`Records`](crate::store::Records) that hold them: `idle()` is what the
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
    /// Out for a keepalive ping.
    Pinging,
    /// Out for its recycle after a return.
    Recycling,
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

/// The counts of one key, or of the whole pool.
///
/// Invariant: `open = idle + lent + dialing + pinging + recycling`, each
/// `≥ 0`. The fields change only through [`Change`]s, and only through
/// [`Keys::recount`](crate::store::Keys::recount), which applies each change
/// to the key's counts and to the pool's together: the pool's counts are
/// the sum of its keys'.
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
    pinging: usize,
    recycling: usize,
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

    /// Connections out for a keepalive ping.
    #[inline]
    pub(crate) fn pinging(&self) -> usize {
        self.pinging
    }

    /// Connections out for their recycle.
    #[inline]
    pub(crate) fn recycling(&self) -> usize {
        self.recycling
    }

    /// Getters waiting.
    #[inline]
    pub(crate) fn waiting(&self) -> usize {
        self.waiting
    }

    /// Idle connections: what the other places leave of `open`.
    #[inline]
    pub(crate) fn idle(&self) -> usize {
        self.open - self.lent - self.dialing - self.pinging - self.recycling
    }

    /// Whether nothing counts here: no connection, no waiter.
    #[inline]
    pub(crate) fn is_zero(&self) -> bool {
        self.open == 0 && self.waiting == 0
    }

    /// Applies `change` (to the key's and the pool's counts alike: see
    /// [`Keys::recount`](crate::store::Keys::recount)).
    #[inline]
    pub(super) fn apply(&mut self, change: Change) {
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
            Place::Pinging => Some(&mut self.pinging),
            Place::Recycling => Some(&mut self.recycling),
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
        c.apply(Change::Move(Place::Lent, Place::Recycling));
        assert_eq!((c.lent(), c.recycling()), (0, 1));
        c.apply(Change::Move(Place::Recycling, Place::Pinging));
        assert_eq!((c.recycling(), c.pinging()), (0, 1));
        c.apply(Change::Close(Place::Pinging));
        assert_eq!(c, Counts::default());
        assert!(c.is_zero());
        c.apply(Change::Wait);
        assert!(!c.is_zero());
        c.apply(Change::Unwait);
        assert!(c.is_zero());
    }
}
