//! The hot path's clock: a wait is counted by the clock it began on.

use std::time::Duration;

use connpool::Pool;

use crate::support::*;

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
