//! The maintenance task's life, and 100 000 idle connections expiring on time
//! with that one task.

use connpool::Pooled;
use tokio::time::Instant;

use crate::support::*;

use super::{U, alive_tasks, drain_closes, ms, secs};

// ---------------------------------------------------------------------------
// 4. The maintenance task's life
// ---------------------------------------------------------------------------

/// Building a pool adds exactly one task; dropping the last handle closes
/// the pool, which ends it, even while a guard is still out.
#[tokio::test(start_paused = true)]
async fn maintenance_task_ends_when_the_pool_is_dropped() {
    let base = alive_tasks();
    let (_, pool) = U::pool(|b| b.idle_timeout(secs(10)).jitter(0.0).initial(2)).await;
    let t0 = Instant::now();
    settle().await;
    assert_eq!(alive_tasks(), base + 1, "one maintenance task");
    at(t0 + secs(5)).await;
    assert_eq!(alive_tasks(), base + 1);

    let g = Pooled::into_owned(ok(pool.get().await));
    drop(pool);
    settle().await;
    assert_eq!(alive_tasks(), base, "the maintenance task ended");
    drop(g);
    settle().await;
    assert_eq!(alive_tasks(), base);
    // It does not come back when deadlines pass.
    at(t0 + secs(60)).await;
    assert_eq!(alive_tasks(), base);
}

/// Closing the pool ends its maintenance task at once, with the handle
/// still alive; nothing is closed for `IdleTimeout` afterwards.
#[tokio::test(start_paused = true)]
async fn maintenance_task_ends_when_the_pool_is_closed() {
    let base = alive_tasks();
    let (mock, pool) = U::pool(|b| {
        b.idle_timeout(secs(10))
            .max_lifetime(secs(20))
            .jitter(0.0)
            .initial(2)
    })
    .await;
    let t0 = Instant::now();
    settle().await;
    assert_eq!(alive_tasks(), base + 1, "one maintenance task");

    pool.close().await;
    settle().await;
    assert_eq!(alive_tasks(), base, "the maintenance task ended");
    assert_eq!(sorted(mock.closed()), vec![1, 2]);
    at(t0 + secs(60)).await;
    assert_eq!(alive_tasks(), base);
    let s = pool.state();
    assert!(s.closed);
    assert_eq!(s.counters.closed_pool_closed, 2);
    assert_eq!(s.counters.closed_total(), 2);
    assert_eq!(counts(&pool), ZERO);
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

// ---------------------------------------------------------------------------
// 5. Scale
// ---------------------------------------------------------------------------

/// 100 000 idle connections all expire on time with the one maintenance
/// task (no task per connection): none 1 ms before the deadline, all at it.
#[tokio::test(start_paused = true)]
async fn scale_100k_idle_conns_expire_on_time_with_one_task() {
    const N: usize = 100_000;
    let base = alive_tasks();
    let mock = U::new();
    let t0 = Instant::now();
    let pool = mock
        .core_pool(|b| b.max_open(N).idle_timeout(secs(60)).jitter(0.0).initial(N))
        .await;
    assert_eq!(Instant::now(), t0);
    settle().await;
    assert_eq!(counts(&pool), Counts { open: N, idle: N, ..ZERO });
    assert_eq!(alive_tasks(), base + 1, "one task for 100k idle conns");

    at(t0 + secs(30)).await;
    assert_eq!(alive_tasks(), base + 1);
    at(t0 + secs(60) - ms(1)).await;
    assert_eq!(pool.state().idle, N, "none 1 ms early");
    assert_eq!(pool.state().counters.closed_idle_timeout, 0);
    assert_eq!(alive_tasks(), base + 1);

    at(t0 + secs(60)).await;
    assert_eq!(Instant::now(), t0 + secs(60));
    let s = pool.state();
    assert_eq!(Counts::from(&s), ZERO, "all at the deadline");
    assert_eq!(s.counters.closed_idle_timeout, N as u64);
    assert_eq!(s.counters.closed_total(), N as u64);
    drain_closes(&pool).await;
    assert_eq!(Instant::now(), t0 + secs(60));
    assert_eq!(mock.closed().len(), N);
    assert_eq!(alive_tasks(), base + 1);
    check_counts(&pool, &[()]);
}
