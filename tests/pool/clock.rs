//! The hot path's clock on a running runtime.

use std::time::Duration;

use connpool::Pool;

use crate::support::*;

/// The counted waits of gets served at once add up to no more than the
/// time they all took. (A wait whose start and end were read from two
/// clocks, one a kernel tick behind, added up to half a tick per wait:
/// ~400 ms here.)
#[cfg(target_os = "linux")]
#[tokio::test]
async fn counted_waits_add_up_to_no_more_than_they_took() {
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
