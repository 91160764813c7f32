//! The pool's one lock, behind a shim so the hand-off core can be model
//! checked (as tokio does with its `loom` shim).
//!
//! Normally this is `parking_lot::Mutex`. Built with `--cfg connpool_loom`
//! it is `loom`'s mutex, and the tests in `loom_tests` explore every
//! interleaving of getters, returns, cancellations, dials and close through
//! the same [`State`](crate::core::State) transitions and waker protocol the
//! pool uses. (A cfg of our own, not `loom`: tokio has its own `loom` mode,
//! which must not be switched on.)

#[cfg(not(connpool_loom))]
pub(crate) use parking_lot::{Mutex, MutexGuard};

#[cfg(connpool_loom)]
pub(crate) use loom::sync::MutexGuard;

/// `loom`'s mutex with `parking_lot`'s API (no poisoning in the signature).
#[cfg(connpool_loom)]
#[derive(Debug)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

#[cfg(connpool_loom)]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0.lock().expect("a transition panicked under the lock")
    }
}

#[cfg(not(connpool_loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[cfg(connpool_loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A lock-free place for one value (crossbeam's `ArrayQueue` of one).
/// Built for loom, a mutex stands in for it: the queue is linearizable, and
/// the model checks the protocol around it, not the queue.
#[derive(Debug)]
pub(crate) struct Slot<T>(
    #[cfg(not(connpool_loom))] crossbeam_queue::ArrayQueue<T>,
    #[cfg(connpool_loom)] loom::sync::Mutex<Option<T>>,
);

impl<T> Slot<T> {
    pub(crate) fn new() -> Self {
        #[cfg(not(connpool_loom))]
        return Self(crossbeam_queue::ArrayQueue::new(1));
        #[cfg(connpool_loom)]
        return Self(loom::sync::Mutex::new(None));
    }

    /// Puts `value` here if the place is free, else hands it back.
    #[inline]
    pub(crate) fn push(&self, value: T) -> Result<(), T> {
        #[cfg(not(connpool_loom))]
        return self.0.push(value);
        #[cfg(connpool_loom)]
        {
            let mut place = self.0.lock().expect("not poisoned");
            if place.is_some() {
                return Err(value);
            }
            *place = Some(value);
            Ok(())
        }
    }

    /// Takes the value, if any.
    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        #[cfg(not(connpool_loom))]
        return self.0.pop();
        #[cfg(connpool_loom)]
        return self.0.lock().expect("not poisoned").take();
    }

    pub(crate) fn is_empty(&self) -> bool {
        #[cfg(not(connpool_loom))]
        return self.0.is_empty();
        #[cfg(connpool_loom)]
        return self.0.lock().expect("not poisoned").is_none();
    }
}
