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
