//! The counters, exact per key and in total, and keys forgotten with their
//! last connection.

use connpool::{Error, Pooled};
use tokio::time::Instant;

use crate::support::*;

use super::{M, manager_error, secs};

// ---------------------------------------------------------------------------
// 13. Counters and forgetting keys
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn counters_are_exact_per_key_and_in_total_and_keys_are_forgotten() {
    let keys = [1, 2];
    let (mock, pool) = M::pool(|b| {
        b.max_open(10)
            .max_open_per_key(1)
            .checkout_timeout(secs(10))
    })
    .await;

    // A dial: waited, zero time.
    let a = ok(pool.get_for(&1).await);
    check_counts(&pool, &keys);
    // A hand-off after 3 s.
    let g = spawn_get(&pool, 1);
    settle().await;
    tokio::time::advance(secs(3)).await;
    drop(a);
    let b = ok(join(g).await);
    check_counts(&pool, &keys);
    // An idle checkout: not waited.
    drop(b);
    let c = ok(pool.get_for(&1).await);
    check_counts(&pool, &keys);
    // A timeout after 10 s.
    let start = Instant::now();
    assert!(matches!(err(pool.get_for(&1).await), Error::Timeout { .. }));
    assert_eq!(start.elapsed(), secs(10));
    check_counts(&pool, &keys);
    // A failed dial of key 2 (remembered for its failure, nothing counted).
    mock.push(2, Step::Fail("down"));
    assert_eq!(manager_error(&err(pool.get_for(&2).await)), "down");
    check_counts(&pool, &keys);
    assert_eq!(key_counts(&pool, &2), Some(ZERO));

    let k1 = pool.key_state(&1).unwrap().counters;
    assert_eq!(k1.gets, 4);
    assert_eq!(k1.gets_waited, 3);
    assert_eq!(k1.wait_time, secs(13));
    assert_eq!(k1.dials, 1);
    assert_eq!(k1.dial_failures, 0);
    assert_eq!(k1.timeouts, 1);
    assert_eq!(k1.rejections, 0);
    assert_eq!(k1.closed_total(), 0);

    let s = pool.state();
    assert_eq!(s.keys, 2);
    let t = s.counters;
    assert_eq!(t.gets, 5);
    assert_eq!(t.gets_waited, 4);
    assert_eq!(t.wait_time, secs(13));
    assert_eq!(t.dials, 2);
    assert_eq!(t.dial_failures, 1);
    assert_eq!(t.timeouts, 1);
    assert_eq!(t.rejections, 0);
    assert_eq!(t.closed_total(), 0);

    // Key 1 loses its last connection: forgotten, its counters with it; the
    // totals stay.
    let mut c = c;
    Pooled::mark_broken(&mut c);
    drop(c);
    check_counts(&pool, &keys);
    assert_eq!(key_counts(&pool, &1), None);
    let s = pool.state();
    assert_eq!(s.keys, 1, "key 2 is remembered for its failure");
    assert_eq!(s.counters.gets, 5);
    assert_eq!(s.counters.dials, 2);
    assert_eq!(s.counters.closed_broken, 1);

    // Seen again: counters start over.
    let d = ok(pool.get_for(&1).await);
    let k1 = pool.key_state(&1).unwrap().counters;
    assert_eq!(
        (k1.gets, k1.gets_waited, k1.dials, k1.timeouts),
        (1, 1, 1, 0)
    );
    assert_eq!(k1.closed_total(), 0);
    assert_eq!(pool.state().counters.gets, 6);
    assert_eq!(pool.state().keys, 2);
    drop(d);
    // An idle conn keeps the key known.
    assert_eq!(pool.state().keys, 2);
    pool.close().await;
    assert_eq!(pool.state().keys, 0);
}
