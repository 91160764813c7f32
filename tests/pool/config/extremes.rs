//! At the extremes: pre-warming 10,000 keys, every duration at its maximum.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connpool::Pool;

use crate::support;
use crate::support::Mock;

use super::M;

/// A key that counts its equality comparisons (for `initial_for`'s cost).
#[derive(Debug, Clone)]
struct CountedKey(u32, Arc<AtomicUsize>);

impl std::hash::Hash for CountedKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for CountedKey {
    fn eq(&self, other: &Self) -> bool {
        self.1.fetch_add(1, Ordering::Relaxed);
        self.0 == other.0
    }
}

impl Eq for CountedKey {}

// Pre-warming many keys costs a look-up per call, not a scan of the keys
// before it: 10,000 keys compared their keys ~50 million times (a build of
// `benches/checkout.rs`'s 10,000-key pool spent most of its time there).
// A second call for a key still replaces its count.
#[tokio::test(start_paused = true)]
async fn initial_for_many_keys_is_linear_and_the_last_count_wins() {
    let compared = Arc::new(AtomicUsize::new(0));
    let key = |k| CountedKey(k, Arc::clone(&compared));
    let mock = Mock::<CountedKey>::new();
    let mut builder = Pool::builder(mock.clone())
        .max_open(10_000)
        .max_open_per_key(1);
    for k in 0..10_000 {
        builder = builder.initial_for(key(k), 1);
    }
    let builder = builder.initial_for(key(7), 0);
    let calls = compared.load(Ordering::Relaxed);
    // A look-up compares a key now and then (hash collisions); a scan
    // would compare ~50 million times.
    assert!(calls <= 100_000, "{calls} key comparisons for 10,001 calls");
    let pool = builder.build().await.unwrap();
    assert_eq!(mock.connects(), 9_999, "key 7's count was replaced by 0");
    assert_eq!(pool.key_state(&key(7)).map_or(0, |k| k.idle), 0);
    assert_eq!(pool.key_state(&key(8)).map(|k| k.idle), Some(1));
    pool.close().await;
}

/// Every duration setting at `Duration::MAX` means "never": the pool dials,
/// checks, lends, recycles, keeps alive, scans for leaks, backs off and
/// closes without an `Instant + Duration` overflow (which would panic in
/// the pool's tasks).
#[tokio::test(start_paused = true)]
async fn every_duration_at_its_maximum_means_never() {
    let max = Duration::MAX;
    let recycled = Arc::new(AtomicUsize::new(0));
    let (mock, pool) = M::pool(|b| {
        let recycled = Arc::clone(&recycled);
        b.connect_timeout(max)
            .checkout_timeout(max)
            .idle_timeout(max)
            .max_lifetime(max)
            .health_check(Duration::ZERO)
            .ping_timeout(max)
            .keepalive_interval(max)
            .leak_detection_threshold(max)
            .acquire_slow_threshold(max)
            .backoff(max, max)
            .after_return(move |_, _| {
                recycled.fetch_add(1, Ordering::Relaxed);
                Box::pin(async { Ok(()) })
            })
    })
    .await;
    let conn = pool.get_for(&1).await.expect("a dial without a deadline");
    drop(conn);
    pool.settled().await;
    tokio::time::advance(Duration::from_secs(3600)).await;
    let conn = pool.get_for(&1).await.expect("pinged, then lent");
    assert_eq!(conn.id, 1, "the same connection, an hour later");
    drop(conn);
    pool.settled().await;
    assert_eq!(recycled.load(Ordering::Relaxed), 2);

    mock.push(2, support::Step::Fail("down"));
    mock.push(2, support::Step::Fail("still down"));
    let e = pool.get_for(&2).await.unwrap_err();
    assert!(matches!(e, connpool::Error::Connect(_)), "{e}");
    // (Failed by the probe it waited for.)
    let e = pool.get_for(&2).await.unwrap_err();
    let connpool::Error::Backoff { retry_in, .. } = e else {
        panic!("expected a backoff, got {e}")
    };
    assert!(retry_in > Duration::from_secs(86400 * 365), "{retry_in:?}");
    pool.close().await;
    assert_eq!(pool.state().open, 0);

    // The health check's idle window at its maximum: never pinged.
    let (mock, pool) = M::pool(|b| b.health_check(max)).await;
    drop(pool.get_for(&1).await.unwrap());
    tokio::time::advance(Duration::from_secs(3600)).await;
    drop(pool.get_for(&1).await.unwrap());
    assert!(mock.pings().is_empty());
    pool.close().await;
}
