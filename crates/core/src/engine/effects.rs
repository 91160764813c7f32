//! What a transition decides to do outside the lock.

use std::task::Waker;

use super::Points;
use crate::engine::{Slot, WaiterId};
use crate::manager::Manager;
use crate::reason::CloseReason;

/// A dial to start once the lock is released.
pub(crate) struct DialOrder<K> {
    pub(crate) key: K,
    /// The dial's place in its key's counts (its key's id).
    pub(crate) slot: Slot,
    /// The waiter the dial was started for, if any.
    pub(crate) waiter: Option<WaiterId>,
    /// The key's epoch when the dial started (see `KeyEntry::epoch`).
    pub(crate) epoch: u32,
}

/// Something a transition decided to do outside the lock, past the first
/// wake-up.
pub(crate) enum Action<M: Manager, P: Points<M>> {
    Wake(Waker),
    Dial(DialOrder<M::Key>),
    Close(M::Connection, CloseReason),
    /// A feature's.
    Ext(P::Action),
}

/// What a transition decided to do outside the lock.
pub(crate) struct Effects<M: Manager, P: Points<M>> {
    /// The common case needs one wake-up; keeping it out of the `Vec` keeps
    /// the hand-off free of allocation.
    pub(crate) wake: Option<Waker>,
    /// The rest, in the order decided. One `Vec`: checkout and return, which
    /// mostly decide nothing, create and drop one.
    pub(crate) actions: Vec<Action<M, P>>,
    /// The rare rest, one bit each ([`REARM`], [`DRAINED`]): one test
    /// tells that none is set.
    flags: u8,
}

/// A deadline earlier than the maintenance task's next wake-up was added.
const REARM: u8 = 1;
/// The pool is closed and nothing is open or closing any more.
const DRAINED: u8 = 2;

impl<M: Manager, P: Points<M>> Effects<M, P> {
    /// Nothing to do yet: what a transition starts with.
    pub(crate) const NONE: Self = Self {
        wake: None,
        actions: Vec::new(),
        flags: 0,
    };

    /// Whether there is nothing to do.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.wake.is_none() && self.actions.is_empty() && self.flags == 0
    }

    /// Whether dropping it would free nothing: no waker, no action, and
    /// no allocation for them.
    #[inline]
    pub(crate) fn owns_nothing(&self) -> bool {
        self.wake.is_none() && self.actions.capacity() == 0
    }

    /// Whether the maintenance task must look at its wake-up again.
    pub(crate) fn rearm(&self) -> bool {
        self.flags & REARM != 0
    }

    /// Whether the pool was closed and is now drained.
    pub(crate) fn drained(&self) -> bool {
        self.flags & DRAINED != 0
    }

    /// The maintenance task must look at its wake-up again.
    pub(crate) fn rearm_timer(&mut self) {
        self.flags |= REARM;
    }

    /// The pool is closed and drained.
    pub(crate) fn mark_drained(&mut self) {
        self.flags |= DRAINED;
    }

    pub(crate) fn wake(&mut self, waker: Waker) {
        match self.wake {
            None => self.wake = Some(waker),
            Some(_) => self.actions.push(Action::Wake(waker)),
        }
    }
}
