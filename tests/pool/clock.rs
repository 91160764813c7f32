//! The hot path's clock thread is opt-in: a pool with the default settings
//! starts no thread, one built with `clock_thread(true)` does. (No other
//! test in this binary asks for the thread, so its absence is this
//! process's to observe.)

use std::time::Duration;

use connpool::Pool;

use crate::support::*;

/// The names of this process's threads.
#[cfg(target_os = "linux")]
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_clock_thread_runs_only_when_asked_for() {
    // A running clock: the pool reads the coarse clock on its hot path.
    let pool = Pool::builder(Mock::<()>::new()).build().await.unwrap();
    for _ in 0..1_000 {
        drop(pool.get().await.unwrap());
    }
    assert!(!pool.config().clock_thread());
    assert!(
        !thread_names().iter().any(|name| name == "connpool-clock"),
        "a default pool started the clock thread: {:?}",
        thread_names()
    );
    pool.close().await;

    let pool = Pool::builder(Mock::<()>::new())
        .clock_thread(true)
        .build()
        .await
        .unwrap();
    // Real time: the thread is started by the first reading. The bound only
    // keeps a failure finite.
    let start = std::time::Instant::now();
    while !thread_names().iter().any(|name| name == "connpool-clock") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no clock thread: {:?}",
            thread_names()
        );
        drop(pool.get().await.unwrap());
    }
    pool.close().await;
}

/// A wait is counted by the clock it began on: with the coarse clock (a
/// running clock's default), the counted waits of gets served at once add
/// up to no more than the time they all took, plus the coarse clock's
/// resolution. (A coarse start counted against a precise end added up to
/// half a kernel tick per wait: ~400 ms here.)
#[cfg(target_os = "linux")]
#[tokio::test]
async fn waits_are_counted_by_the_clock_they_began_on() {
    const GETS: u32 = 200;
    let pool = Pool::builder(Mock::<()>::new())
        .max_open(1)
        .build()
        .await
        .unwrap();
    drop(pool.get().await.unwrap());
    let before = pool.state().counters;
    let start = std::time::Instant::now();
    for _ in 0..GETS {
        let held = pool.get().await.unwrap();
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { drop(pool.get().await.unwrap()) }
        });
        // One thread: the getter runs and queues before the connection
        // comes back (`gets_waited` below checks that it did).
        tokio::task::yield_now().await;
        drop(held);
        waiter.await.unwrap();
    }
    let took = start.elapsed();
    let after = pool.state().counters;
    assert_eq!(after.gets_waited - before.gets_waited, u64::from(GETS));
    let counted = after.wait_time - before.wait_time;
    assert!(
        counted <= took + Duration::from_millis(50),
        "{GETS} waits counted {counted:?} in {took:?}"
    );
    pool.close().await;
}
