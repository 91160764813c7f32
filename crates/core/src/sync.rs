//! The pool's one lock, behind a shim so the hand-off core can be model
//! checked (as tokio does with its `loom` shim).
//!
//! Normally this is a `parking_lot::Mutex` that spins a little longer
//! before it gives up the core (see [`Mutex`]). Built with `--cfg
//! connpool_loom` it is `loom`'s mutex, and the tests in `loom_tests`
//! explore every interleaving of getters, returns, cancellations, dials and
//! close through the same [`State`](crate::engine::State) transitions and
//! waker protocol the pool uses. (A cfg of our own, not `loom`: tokio has
//! its own `loom` mode, which must not be switched on.)

#[cfg(not(connpool_loom))]
pub(crate) use parking_lot::MutexGuard;

/// `parking_lot::Mutex`, taken after a short spin with backoff when it is
/// held.
///
/// The pool holds its lock for a few hundred nanoseconds at most and never
/// runs user code under it, so a thread that finds it held nearly always
/// gets it within a microsecond. `parking_lot`'s own slow path spins for a
/// few dozen pause instructions and then calls `sched_yield` (up to seven
/// times) before it parks: where the cores are shared with other processes
/// (the server on the same host, a container's CPU quota), each yield can
/// hand the core to another process for a scheduler slice, while the lock
/// is free again within the microsecond. So a lock seen held is tried
/// again after 1, 2, 4, … 64 pause instructions (about 320 in all), and
/// only then taken through `parking_lot`'s path, which parks the thread if
/// the holder was descheduled. (A lock seen free is taken by
/// `parking_lot`'s compare-and-swap, and if another thread took it in
/// between, through its path: rare, and still correct.)
///
/// Where the server shares the cores, the spin keeps an HTTP/1.1 client's
/// p99 level with hyper-util's, which `parking_lot`'s slow path alone does
/// not, and two threads on one pool spend less time per get + return (see
/// BENCHMARKS.md, "Speed mechanisms" and "Two threads on one pool").
/// Uncontended, one load more than `parking_lot`'s lock.
#[cfg(not(connpool_loom))]
#[derive(Debug)]
pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

#[cfg(not(connpool_loom))]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(parking_lot::Mutex::new(value))
    }

    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        if self.0.is_locked() {
            self.lock_contended()
        } else {
            self.0.lock()
        }
    }

    /// [`lock`](Mutex::lock) when it was held: spin with backoff, then
    /// `parking_lot`'s path.
    #[cold]
    #[inline(never)]
    fn lock_contended(&self) -> MutexGuard<'_, T> {
        // Ten tries: after 1, 2, 4, … 32 pauses, then after 64 four times.
        for round in 0..10 {
            for _ in 0..1u32 << round.min(6) {
                std::hint::spin_loop();
            }
            // (`try_lock` reads before it writes: while the lock is held,
            // its line stays with the holder.)
            if let Some(guard) = self.0.try_lock() {
                return guard;
            }
        }
        self.0.lock()
    }
}

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

#[cfg(all(test, not(connpool_loom)))]
mod tests;
