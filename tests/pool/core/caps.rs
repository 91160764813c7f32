//! Per-key and global caps across many keys, LRU eviction at the global cap,
//! and the idle caps.

use std::time::Duration;

use connpool::{Pool, Pooled};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::support::*;

use super::M;

// ---------------------------------------------------------------------------
// 2. Per-key limits with many keys
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn per_key_cap_holds_across_many_keys_and_does_not_block_others() {
    const KEYS: u32 = 50;
    const OTHER: u32 = 1000;
    let (mock, pool) = M::pool(|b| b.max_open(150).max_open_per_key(2)).await;
    let all_keys: Vec<u32> = (0..KEYS).chain([OTHER]).collect();
    let assert_caps = |pool: &Pool<M>| {
        for k in &all_keys {
            if let Some(s) = pool.key_state(k) {
                assert!(s.open <= 2, "key {k} exceeds its cap: {s:?}");
            }
        }
        check_counts(pool, &all_keys);
    };

    let mut held: Vec<Vec<Pooled<M>>> = Vec::new();
    for k in 0..KEYS {
        let a = ok(pool.get_for(&k).await);
        let b = ok(pool.get_for(&k).await);
        assert_eq!((a.key, b.key), (k, k));
        assert_eq!((a.id, b.id), (2 * k as u64 + 1, 2 * k as u64 + 2));
        held.push(vec![a, b]);
    }
    assert_caps(&pool);
    assert_eq!(counts(&pool), Counts { open: 100, lent: 100, ..ZERO });

    // A third getter of every key waits at its key's cap: no dial.
    let mut waiters: Vec<Option<JoinHandle<Got<M>>>> =
        (0..KEYS).map(|k| Some(spawn_get(&pool, k))).collect();
    settle().await;
    assert_caps(&pool);
    for k in 0..KEYS {
        assert_eq!(
            key_counts(&pool, &k),
            Some(Counts { open: 2, lent: 2, waiting: 1, ..ZERO }),
            "key {k}"
        );
        assert!(!waiters[k as usize].as_ref().unwrap().is_finished());
    }
    assert_eq!(
        counts(&pool),
        Counts { open: 100, lent: 100, waiting: 50, ..ZERO }
    );
    assert_eq!(mock.connects(), 100);

    // Another key is not held up by the saturated ones.
    let other = ok(pool.get_for(&OTHER).await);
    assert_eq!((other.key, other.id), (OTHER, 101));
    assert_caps(&pool);
    assert_eq!(
        counts(&pool),
        Counts { open: 101, lent: 101, waiting: 50, ..ZERO }
    );

    // Even keys return one connection: only their own waiter gets it.
    for k in (0..KEYS).step_by(2) {
        drop(held[k as usize].pop().unwrap());
        assert_caps(&pool);
    }
    settle().await;
    assert_caps(&pool);
    for k in 0..KEYS {
        let h = waiters[k as usize].as_ref().unwrap();
        if k % 2 == 0 {
            assert!(h.is_finished(), "key {k}");
            let c = ok(join(waiters[k as usize].take().unwrap()).await);
            assert_eq!((c.key, c.id), (k, 2 * k as u64 + 2));
            held[k as usize].push(c);
            assert_eq!(
                key_counts(&pool, &k),
                Some(Counts { open: 2, lent: 2, ..ZERO }),
                "key {k}"
            );
        } else {
            assert!(!h.is_finished(), "key {k}");
            assert_eq!(
                key_counts(&pool, &k),
                Some(Counts { open: 2, lent: 2, waiting: 1, ..ZERO }),
                "key {k}"
            );
        }
    }
    assert_eq!(
        counts(&pool),
        Counts { open: 101, lent: 101, waiting: 25, ..ZERO }
    );

    // Odd keys return their first connection.
    for k in (1..KEYS).step_by(2) {
        held[k as usize].remove(0);
        assert_caps(&pool);
    }
    for k in (1..KEYS).step_by(2) {
        let c = ok(join(waiters[k as usize].take().unwrap()).await);
        assert_eq!((c.key, c.id), (k, 2 * k as u64 + 1));
        held[k as usize].push(c);
    }
    assert_caps(&pool);
    assert_eq!(counts(&pool), Counts { open: 101, lent: 101, ..ZERO });

    drop(held);
    drop(other);
    assert_caps(&pool);
    assert_eq!(counts(&pool), Counts { open: 101, idle: 101, ..ZERO });
    for k in 0..KEYS {
        assert_eq!(
            key_counts(&pool, &k),
            Some(Counts { open: 2, idle: 2, ..ZERO })
        );
    }
    assert_eq!(mock.connects(), 101);
    assert!(mock.closed().is_empty());
}

// ---------------------------------------------------------------------------
// 3. Global cap across keys
// ---------------------------------------------------------------------------

/// At `max_open`, getters of other keys wait (in FIFO order across keys); a
/// return of a key with waiters goes to those, a return of a key without
/// waiters is closed (`EvictedLru`) so that the first global waiter can dial.
#[tokio::test(start_paused = true)]
async fn global_cap_returned_conn_of_idle_key_is_evicted_for_other_key_waiter() {
    let keys = [1, 2, 3];
    let (mock, pool) = M::pool(|b| b.max_open(2)).await;
    let a1 = ok(pool.get_for(&1).await);
    let a2 = ok(pool.get_for(&1).await);
    assert_eq!((a1.id, a2.id), (1, 2));

    let wb = spawn_get(&pool, 2);
    settle().await;
    let wc = spawn_get(&pool, 3);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 2, waiting: 2, ..ZERO }
    );
    assert_eq!(key_counts(&pool, &2), Some(Counts { waiting: 1, ..ZERO }));
    assert_eq!(key_counts(&pool, &3), Some(Counts { waiting: 1, ..ZERO }));
    check_counts(&pool, &keys);
    assert_eq!(mock.connects(), 2);

    // A waiter of key 1 itself has priority over the other keys' waiters.
    let wa = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 2, waiting: 3, ..ZERO }
    );
    drop(a1);
    check_counts(&pool, &keys);
    settle().await;
    assert!(wa.is_finished() && !wb.is_finished() && !wc.is_finished());
    let a3 = ok(join(wa).await);
    assert_eq!(a3.id, 1);
    assert!(mock.closed().is_empty());

    // Key 1 has no waiter now: its return is evicted, key 2 dials.
    drop(a2);
    check_counts(&pool, &keys);
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 1, dialing: 1, waiting: 2, ..ZERO }
    );
    settle().await;
    assert_eq!(mock.closed(), vec![2]);
    assert_eq!(pool.state().counters.closed_evicted_lru, 1);
    assert!(wb.is_finished() && !wc.is_finished());
    let b = ok(join(wb).await);
    assert_eq!((b.key, b.id), (2, 3));
    check_counts(&pool, &keys);
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 2, waiting: 1, ..ZERO }
    );

    // Again for key 3, which leaves key 1 with nothing: it is forgotten.
    drop(a3);
    check_counts(&pool, &keys);
    let c = ok(join(wc).await);
    assert_eq!((c.key, c.id), (3, 4));
    assert_eq!(mock.closed(), vec![2, 1]);
    assert_eq!(pool.state().counters.closed_evicted_lru, 2);
    assert_eq!(key_counts(&pool, &1), None);
    assert_eq!(counts(&pool), Counts { open: 2, lent: 2, ..ZERO });
    assert_eq!(pool.state().keys, 2);
    check_counts(&pool, &keys);
    assert_eq!(mock.connects(), 4);
}

/// At `max_open`, a detached or broken connection of one key frees the slot
/// for a getter of another key waiting at the global cap.
#[tokio::test(start_paused = true)]
async fn global_cap_detach_and_broken_free_slots_for_other_keys() {
    let keys = [1, 2, 3, 4];
    let (mock, pool) = M::pool(|b| b.max_open(2)).await;
    let a = ok(pool.get_for(&1).await);
    let mut b = ok(pool.get_for(&2).await);
    assert_eq!((a.id, b.id), (1, 2));

    let wc = spawn_get(&pool, 3);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 2, waiting: 1, ..ZERO }
    );
    check_counts(&pool, &keys);

    let raw = Pooled::detach(a);
    assert_eq!(raw.id, 1);
    check_counts(&pool, &keys);
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    assert_eq!(key_counts(&pool, &1), None);
    let c = ok(join(wc).await);
    assert_eq!((c.key, c.id), (3, 3));
    assert!(
        mock.closed().is_empty(),
        "a detached conn is not the pool's to close"
    );

    let wd = spawn_get(&pool, 4);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 2, waiting: 1, ..ZERO }
    );
    Pooled::mark_broken(&mut b);
    drop(b);
    check_counts(&pool, &keys);
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    let d = ok(join(wd).await);
    assert_eq!((d.key, d.id), (4, 4));
    assert_eq!(mock.closed(), vec![2]);
    let s = pool.state();
    assert_eq!(s.counters.closed_broken, 1);
    assert_eq!(s.counters.closed_total(), 1);
    assert_eq!(key_counts(&pool, &2), None);
    check_counts(&pool, &keys);
}

// ---------------------------------------------------------------------------
// 4. At the global cap, a new key evicts the LRU idle connection of any key
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn global_cap_new_key_evicts_lru_idle_of_any_key_instead_of_waiting() {
    let keys = [1, 2, 4, 5];
    let (mock, pool) = M::pool(|b| b.max_open(3)).await;
    let c1 = ok(pool.get_for(&1).await);
    let c2 = ok(pool.get_for(&2).await);
    let c3 = ok(pool.get_for(&1).await);
    assert_eq!((c1.id, c2.id, c3.id), (1, 2, 3));
    // Idle since: id 3 (key 1), then id 2 (key 2), then id 1 (key 1).
    drop(c3);
    drop(c2);
    drop(c1);
    check_counts(&pool, &keys);
    assert_eq!(counts(&pool), Counts { open: 3, idle: 3, ..ZERO });

    let start = Instant::now();
    let d = ok(pool.get_for(&4).await);
    assert_eq!(start.elapsed(), Duration::ZERO, "it did not wait");
    assert_eq!((d.key, d.id), (4, 4));
    settle().await;
    assert_eq!(mock.closed(), vec![3], "the oldest idle conn (key 1) goes");
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );
    assert_eq!(
        key_counts(&pool, &2),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );
    assert_eq!(counts(&pool), Counts { open: 3, idle: 2, lent: 1, ..ZERO });
    check_counts(&pool, &keys);

    let e = ok(pool.get_for(&5).await);
    assert_eq!((e.key, e.id), (5, 5));
    settle().await;
    assert_eq!(mock.closed(), vec![3, 2]);
    assert_eq!(key_counts(&pool, &2), None, "key 2 lost its last conn");
    assert_eq!(counts(&pool), Counts { open: 3, idle: 1, lent: 2, ..ZERO });
    check_counts(&pool, &keys);
    assert_eq!(pool.state().counters.closed_evicted_lru, 2);
    assert_eq!(pool.state().waiting, 0);

    // Key 1 kept its newest idle conn.
    let f = ok(pool.get_for(&1).await);
    assert_eq!(f.id, 1);
    assert_eq!(mock.connects(), 5);
    check_counts(&pool, &keys);
}

// ---------------------------------------------------------------------------
// 5. Idle caps: global LRU eviction and the per-key cap
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn max_idle_evicts_the_least_recently_used_idle_conn_of_any_key() {
    let keys = [1, 2, 3, 4];
    let (mock, pool) = M::pool(|b| b.max_open(4).max_idle(2)).await;
    let c1 = ok(pool.get_for(&1).await);
    let c2 = ok(pool.get_for(&2).await);
    let c3 = ok(pool.get_for(&3).await);
    drop(c1);
    drop(c2);
    check_counts(&pool, &keys);
    assert_eq!(counts(&pool), Counts { open: 3, idle: 2, lent: 1, ..ZERO });

    drop(c3);
    check_counts(&pool, &keys);
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(key_counts(&pool, &1), None);
    assert_eq!(counts(&pool), Counts { open: 2, idle: 2, ..ZERO });
    assert_eq!(pool.state().counters.closed_evicted_lru, 1);

    // Using id 2 makes id 3 the least recently used, though it is younger.
    let c2 = ok(pool.get_for(&2).await);
    assert_eq!(c2.id, 2);
    let c4 = ok(pool.get_for(&4).await);
    assert_eq!(c4.id, 4);
    drop(c2);
    drop(c4);
    check_counts(&pool, &keys);
    settle().await;
    assert_eq!(mock.closed(), vec![1, 3]);
    assert_eq!(key_counts(&pool, &3), None);
    assert_eq!(
        key_counts(&pool, &2),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );
    assert_eq!(
        key_counts(&pool, &4),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );
    assert_eq!(counts(&pool), Counts { open: 2, idle: 2, ..ZERO });
    assert_eq!(pool.state().counters.closed_evicted_lru, 2);
    check_counts(&pool, &keys);
}

#[tokio::test(start_paused = true)]
async fn max_idle_per_key_closes_the_returned_conn_for_max_idle_per_key() {
    let keys = [1, 2];
    let (mock, pool) = M::pool(|b| b.max_open(4).max_idle_per_key(1)).await;
    let c1 = ok(pool.get_for(&1).await);
    let c2 = ok(pool.get_for(&1).await);
    let c3 = ok(pool.get_for(&2).await);
    drop(c1);
    check_counts(&pool, &keys);
    drop(c2);
    check_counts(&pool, &keys);
    drop(c3);
    check_counts(&pool, &keys);
    settle().await;
    assert_eq!(mock.closed(), vec![2]);
    let s = pool.state();
    assert_eq!(s.counters.closed_max_idle_per_key, 1);
    assert_eq!(s.counters.closed_total(), 1);
    assert_eq!(
        pool.key_state(&1).unwrap().counters.closed_max_idle_per_key,
        1
    );
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );
    assert_eq!(
        key_counts(&pool, &2),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );
    assert_eq!(counts(&pool), Counts { open: 2, idle: 2, ..ZERO });
    let again = ok(pool.get_for(&1).await);
    assert_eq!(again.id, 1);
}
