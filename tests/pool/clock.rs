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
