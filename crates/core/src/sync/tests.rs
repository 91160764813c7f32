use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use super::Mutex;

/// Far beyond any spin: if it passes, the retry path hung.
const HUNG: Duration = Duration::from_secs(30);

/// Threads that keep finding the lock held (spinning, then going
/// through `parking_lot`'s path) all get through, and no update made
/// under it is lost. A retry path that never gave up, or never reached
/// a path that wakes, fails this instead of hanging the suite.
#[test]
fn every_thread_that_finds_the_lock_held_gets_it() {
    let count = Arc::new(Mutex::new(0u64));
    let (done, finished) = mpsc::channel();
    for _ in 0..4 {
        let count = Arc::clone(&count);
        let done = done.clone();
        std::thread::spawn(move || {
            for _ in 0..20_000 {
                let mut c = count.lock();
                let read = std::hint::black_box(*c);
                *c = read + 1;
            }
            done.send(()).expect("the test waits");
        });
    }
    for _ in 0..4 {
        finished
            .recv_timeout(HUNG)
            .expect("a thread never got the lock");
    }
    assert_eq!(*count.lock(), 80_000);
}

/// A thread that asks while the lock is held, for as long as the
/// holder likes (past the spin, when it parks), is let in by the
/// release.
#[test]
fn a_release_lets_in_a_thread_that_waited_past_the_spin() {
    let lock = Arc::new(Mutex::new(()));
    let guard = lock.lock();
    let (asking, asked) = mpsc::channel();
    let (got, gotten) = mpsc::channel();
    {
        let lock = Arc::clone(&lock);
        std::thread::spawn(move || {
            asking.send(()).expect("the test waits");
            drop(lock.lock());
            got.send(()).expect("the test waits");
        });
    }
    asked.recv().expect("the waiter asks");
    drop(guard);
    gotten
        .recv_timeout(HUNG)
        .expect("the release did not let the waiter in");
}
