//! The pool's core behaviour, deterministically, under tokio's paused clock:
//! FIFO hand-off, per-key and global caps, LRU eviction, the idle/dial race,
//! dial failures, `max_waiters`, the checkout deadline, close, the guard's
//! operations, the counters and pre-warming.
//!
//! Every test runs on a current-thread runtime with the clock paused; tasks
//! only run when the test yields (`settle`, an `.await`), and time only
//! passes through `tokio::time::advance` or tokio's auto-advance when every
//! task is idle. Connection ids are the mock's: 1, 2, 3… in order of the
//! dials' completion.

use std::time::Duration;

use connpool::{BuildError, CloseReason, ConnectError, Error, Pool, Pooled};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::support;
use crate::support::*;

type M = Mock<u32>;
type U = Mock<()>;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The message of a `Error::Connect(ConnectError::Manager(_))`.
#[track_caller]
fn manager_error(e: &Error<MockError>) -> String {
    match e {
        Error::Connect(ConnectError::Manager(m)) => m.0.clone(),
        other => panic!("expected Error::Connect(ConnectError::Manager(_)), got {other:?}"),
    }
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

// ---------------------------------------------------------------------------
// 1. FIFO order of waiters
// ---------------------------------------------------------------------------

/// Waiters queued at the key's cap are served in arrival order, whatever
/// order the connections come back in, each by direct hand-off.
#[tokio::test(start_paused = true)]
async fn fifo_waiters_are_handed_returns_in_arrival_order() {
    let (mock, pool) = M::pool(|b| b.max_open(2)).await;
    let a = ok(pool.get_for(&1).await);
    let b = ok(pool.get_for(&1).await);
    assert_eq!((a.id, b.id), (1, 2));
    check_counts(&pool, &[1]);

    let mut w = Vec::new();
    for i in 0..4 {
        w.push(spawn_get(&pool, 1));
        settle().await;
        assert_eq!(
            counts(&pool),
            Counts { open: 2, lent: 2, waiting: i + 1, ..ZERO }
        );
        check_counts(&pool, &[1]);
    }

    // b (id 2) comes back first: it goes to the first waiter.
    drop(b);
    check_counts(&pool, &[1]);
    settle().await;
    assert!(w[0].is_finished());
    assert!(!w[1].is_finished() && !w[2].is_finished() && !w[3].is_finished());
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 2, waiting: 3, ..ZERO }
    );
    drop(a);
    check_counts(&pool, &[1]);
    settle().await;
    assert!(w[1].is_finished());
    assert!(!w[2].is_finished() && !w[3].is_finished());
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 2, waiting: 2, ..ZERO }
    );

    let mut w = w.into_iter();
    let c0 = ok(join(w.next().unwrap()).await);
    let c1 = ok(join(w.next().unwrap()).await);
    assert_eq!((c0.id, c1.id), (2, 1));
    let (w2, w3) = (w.next().unwrap(), w.next().unwrap());

    // Returned in the order id 1, id 2: the third waiter gets id 1.
    drop(c1);
    check_counts(&pool, &[1]);
    settle().await;
    assert!(w2.is_finished() && !w3.is_finished());
    drop(c0);
    check_counts(&pool, &[1]);
    let c2 = ok(join(w2).await);
    let c3 = ok(join(w3).await);
    assert_eq!((c2.id, c3.id), (1, 2));
    assert_eq!(counts(&pool), Counts { open: 2, lent: 2, ..ZERO });
    assert_eq!(mock.connects(), 2, "hand-offs dial nothing");
    assert_eq!(pool.state().counters.dials, 2);
    drop((c2, c3));
    check_counts(&pool, &[1]);
    assert_eq!(counts(&pool), Counts { open: 2, idle: 2, ..ZERO });
    assert!(mock.closed().is_empty());
}

/// Slots freed by closed/detached connections go to the key's dial waiters
/// in arrival order.
#[tokio::test(start_paused = true)]
async fn fifo_dial_waiters_get_freed_slots_in_arrival_order() {
    let (mock, pool) = U::pool(|b| b.max_open(1)).await;
    let mut c = ok(pool.get().await);
    assert_eq!(c.id, 1);
    let mut w = Vec::new();
    for _ in 0..3 {
        w.push(spawn_get(&pool, ()));
        settle().await;
    }
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 3, ..ZERO }
    );
    check_counts(&pool, &[()]);

    // Broken: closed, its slot dials for the first waiter.
    Pooled::mark_broken(&mut c);
    drop(c);
    check_counts(&pool, &[()]);
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert!(w[0].is_finished() && !w[1].is_finished() && !w[2].is_finished());
    let mut w = w.into_iter();
    let c0 = ok(join(w.next().unwrap()).await);
    assert_eq!(c0.id, 2);
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 2, ..ZERO }
    );

    // Detached: its slot dials for the second waiter.
    let raw = Pooled::detach(c0);
    assert_eq!(raw.id, 2);
    check_counts(&pool, &[()]);
    let c1 = ok(join(w.next().unwrap()).await);
    assert_eq!(c1.id, 3);
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );

    // Returned: handed to the third.
    drop(c1);
    let c2 = ok(join(w.next().unwrap()).await);
    assert_eq!(c2.id, 3);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
    assert_eq!(mock.connects(), 3);
    assert_eq!(mock.closed(), vec![1]);
}

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
    assert_eq!(pool.state().counters.closed(CloseReason::EvictedLru), 1);
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
    assert_eq!(pool.state().counters.closed(CloseReason::EvictedLru), 2);
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
    assert_eq!(s.counters.closed(CloseReason::Broken), 1);
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
    assert_eq!(pool.state().counters.closed(CloseReason::EvictedLru), 2);
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
    assert_eq!(pool.state().counters.closed(CloseReason::EvictedLru), 1);

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
    assert_eq!(pool.state().counters.closed(CloseReason::EvictedLru), 2);
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
    assert_eq!(s.counters.closed(CloseReason::MaxIdlePerKey), 1);
    assert_eq!(s.counters.closed_total(), 1);
    assert_eq!(
        pool.key_state(&1)
            .unwrap()
            .counters
            .closed(CloseReason::MaxIdlePerKey),
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

// ---------------------------------------------------------------------------
// 6. The idle/dial race, won both ways
// ---------------------------------------------------------------------------

/// How every race starts (`max_open(2)`): connection 1 lent, and a getter
/// `g` of key 1 waiting on its own dial, which `gate` holds.
struct Race {
    mock: M,
    pool: Pool<M>,
    c1: Pooled<'static, M>,
    gate: Gate,
    g: JoinHandle<Got<M>>,
}

async fn race() -> Race {
    let (mock, pool) = M::pool(|b| b.max_open(2)).await;
    let c1 = Pooled::into_owned(ok(pool.get_for(&1).await));
    let gate = mock.gate(1);
    let g = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    check_counts(&pool, &[1]);
    Race { mock, pool, c1, gate, g }
}

/// A return beats the getter's own dial: the getter gets the returned conn,
/// the dialed one goes idle afterwards.
#[tokio::test(start_paused = true)]
async fn race_return_first_then_dial_goes_idle() {
    let Race { mock, pool, c1, gate, g } = race().await;
    drop(c1);
    check_counts(&pool, &[1]);
    let got = ok(join(g).await);
    assert_eq!(got.id, 1);
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 1, dialing: 1, ..ZERO }
    );

    gate.succeed();
    settle().await;
    check_counts(&pool, &[1]);
    assert_eq!(counts(&pool), Counts { open: 2, idle: 1, lent: 1, ..ZERO });
    assert_eq!(mock.connects(), 2);
    let next = ok(pool.get_for(&1).await);
    assert_eq!(next.id, 2, "the dialed conn was kept idle");
    assert_eq!(mock.connects(), 2);
    assert!(mock.closed().is_empty());
}

/// Same race, with a second waiter arriving meanwhile: the dialed conn goes
/// to it.
#[tokio::test(start_paused = true)]
async fn race_return_first_then_dial_goes_to_next_waiter() {
    let Race { mock, pool, c1, gate, g } = race().await;
    drop(c1);
    let got = ok(join(g).await);
    assert_eq!(got.id, 1);

    // At the key's cap (one lent, one dialing): it waits, no dial.
    let g2 = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    check_counts(&pool, &[1]);
    assert_eq!(mock.connects(), 2);

    gate.succeed();
    let got2 = ok(join(g2).await);
    assert_eq!(got2.id, 2);
    check_counts(&pool, &[1]);
    assert_eq!(counts(&pool), Counts { open: 2, lent: 2, ..ZERO });
    assert_eq!(mock.connects(), 2);
}

/// The dial beats a return: the getter gets the dialed conn, the returned
/// one goes idle.
#[tokio::test(start_paused = true)]
async fn race_dial_first_then_return_goes_idle() {
    let Race { mock, pool, c1, gate, g } = race().await;

    gate.succeed();
    let got = ok(join(g).await);
    assert_eq!(got.id, 2);
    check_counts(&pool, &[1]);
    assert_eq!(counts(&pool), Counts { open: 2, lent: 2, ..ZERO });

    drop(c1);
    check_counts(&pool, &[1]);
    assert_eq!(counts(&pool), Counts { open: 2, idle: 1, lent: 1, ..ZERO });
    let next = ok(pool.get_for(&1).await);
    assert_eq!(next.id, 1);
    assert_eq!(mock.connects(), 2);
    assert!(mock.closed().is_empty());
}

// ---------------------------------------------------------------------------
// 7. Hand-off on return
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn return_is_handed_straight_to_the_waiter_never_idle() {
    let (mock, pool) = U::pool(|b| b.max_open(1).max_idle(1)).await;
    let c = ok(pool.get().await);
    let g = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );

    drop(c);
    // Before the waiter runs: already counted as lent to it, never idle.
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
    let got = ok(join(g).await);
    assert_eq!(got.id, 1);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    assert_eq!(mock.connects(), 1);
    assert_eq!(pool.state().counters.dials, 1);
    assert!(mock.closed().is_empty());
}

// ---------------------------------------------------------------------------
// 8. Dial failures, timeouts and panics
// ---------------------------------------------------------------------------

/// The failure goes to the getter the dial was for; the slot goes to the
/// next dial waiter, which dials and is served.
#[tokio::test(start_paused = true)]
async fn dial_failure_reaches_its_getter_and_the_next_waiter_dials() {
    let (mock, pool) = M::pool(|b| b.max_open(1)).await;
    let gate = mock.gate(1);
    let g1 = spawn_get(&pool, 1);
    settle().await;
    let g2 = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, dialing: 1, waiting: 2, ..ZERO }
    );
    check_counts(&pool, &[1]);

    gate.fail("refused");
    settle().await;
    check_counts(&pool, &[1]);
    let e = err(join(g1).await);
    assert_eq!(manager_error(&e), "refused");
    let c = ok(join(g2).await);
    assert_eq!(c.id, 1);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    assert_eq!(mock.connects(), 2);
    let s = pool.state();
    assert_eq!((s.counters.dials, s.counters.dial_failures), (2, 1));
}

/// A waiter with its own dial in flight is not told of another getter's
/// dial failure, and no extra dial is started for it.
#[tokio::test(start_paused = true)]
async fn dial_failure_is_not_told_to_other_waiters() {
    let (mock, pool) = M::pool(|b| b.max_open(2)).await;
    let gate_a = mock.gate(1);
    let gate_b = mock.gate(1);
    let g1 = spawn_get(&pool, 1);
    settle().await;
    let g2 = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, dialing: 2, waiting: 2, ..ZERO }
    );

    gate_a.fail("refused");
    settle().await;
    check_counts(&pool, &[1]);
    assert!(g1.is_finished());
    assert!(!g2.is_finished(), "the other waiter is not told");
    assert_eq!(manager_error(&err(join(g1).await)), "refused");
    assert_eq!(
        counts(&pool),
        Counts { open: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    assert_eq!(mock.connects(), 2);

    gate_b.succeed();
    let c = ok(join(g2).await);
    assert_eq!(c.id, 1);
    check_counts(&pool, &[1]);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
}

#[tokio::test(start_paused = true)]
async fn dial_timeout_gives_connect_timeout_and_releases_the_slot() {
    let (mock, pool) = M::pool(|b| b.max_open(1).connect_timeout(secs(1))).await;
    mock.push(1, Step::Hang);
    let start = Instant::now();
    let g1 = spawn_get(&pool, 1);
    settle().await;
    let g2 = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, dialing: 1, waiting: 2, ..ZERO }
    );

    tokio::time::advance(Duration::from_millis(999)).await;
    settle().await;
    assert!(!g1.is_finished());
    let e = err(join(g1).await);
    assert_eq!(start.elapsed(), secs(1));
    match e {
        Error::Connect(ConnectError::Timeout(d)) => assert_eq!(d, secs(1)),
        other => panic!("expected a dial timeout, got {other:?}"),
    }
    let c = ok(join(g2).await);
    assert_eq!(c.id, 1);
    check_counts(&pool, &[1]);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    assert_eq!(pool.state().counters.dial_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn dial_panic_gives_aborted_and_releases_the_slot() {
    let (mock, pool) = U::pool(|b| b.max_open(1)).await;
    mock.push((), Step::Panic);
    // Both check out before the dial task runs: g2 waits for the slot.
    let g1 = spawn_get(&pool, ());
    let g2 = spawn_get(&pool, ());
    settle().await;
    check_counts(&pool, &[()]);
    match err(join(g1).await) {
        Error::Connect(ConnectError::Panicked(m)) => assert_eq!(&*m, "scripted panic in connect"),
        other => panic!("expected ConnectError::Panicked, got {other:?}"),
    }
    let c = ok(join(g2).await);
    assert_eq!(c.id, 1);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
    let s = pool.state();
    assert_eq!((s.counters.dials, s.counters.dial_failures), (2, 1));
    drop(c);
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
}

// ---------------------------------------------------------------------------
// 9. max_waiters
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn max_waiters_rejects_the_extra_waiter_at_once() {
    let (_, pool) = U::pool(|b| b.max_open(1).max_waiters(2)).await;
    let c = ok(pool.get().await);
    let w1 = spawn_get(&pool, ());
    settle().await;
    let w2 = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 2, ..ZERO }
    );

    let start = Instant::now();
    match err(pool.get().await) {
        Error::TooManyWaiters { max_waiters, .. } => assert_eq!(max_waiters, 2),
        other => panic!("expected TooManyWaiters, got {other:?}"),
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    check_counts(&pool, &[()]);
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 2, ..ZERO }
    );
    let s = pool.state();
    assert_eq!(s.counters.rejections, 1);
    assert_eq!((s.counters.gets, s.counters.gets_waited), (4, 3));
    assert_eq!(pool.key_state(&()).unwrap().counters.rejections, 1);

    // One waiter served: room for another.
    drop(c);
    let c1 = ok(join(w1).await);
    assert_eq!(c1.id, 1);
    let w3 = spawn_get(&pool, ());
    settle().await;
    assert!(!w3.is_finished());
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 2, ..ZERO }
    );
    assert_eq!(pool.state().counters.rejections, 1);
    drop(c1);
    let c2 = ok(join(w2).await);
    drop(c2);
    let c3 = ok(join(w3).await);
    assert_eq!(c3.id, 1);
    check_counts(&pool, &[()]);
}

/// A getter waiting for its own dial counts as a waiter: with
/// `max_waiters(1)` a second get during that dial is refused at once, and an
/// idle connection is still served without waiting.
#[tokio::test(start_paused = true)]
async fn max_waiters_counts_a_getter_waiting_for_its_own_dial() {
    let (mock, pool) = U::pool(|b| b.max_waiters(1)).await;
    let gate = mock.gate(());
    let first = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    match err(pool.get().await) {
        Error::TooManyWaiters { max_waiters, .. } => assert_eq!(max_waiters, 1),
        other => panic!("expected TooManyWaiters, got {other:?}"),
    }
    assert_eq!(mock.connects(), 1, "the refused get started no dial");
    gate.succeed();
    let c = ok(join(first).await);
    drop(c);
    let again = ok(pool.get().await);
    assert_eq!(again.id, 1);
    assert_eq!(pool.state().counters.rejections, 1);
    drop(again);
    check_counts(&pool, &[()]);
}

// ---------------------------------------------------------------------------
// 10. Checkout deadline
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn checkout_deadline_defaults_to_30s_and_fires_exactly() {
    let (_, pool) = U::pool(|b| b.max_open(1)).await;
    assert_eq!(pool.config().checkout_timeout(), Some(secs(30)));
    let c = ok(pool.get().await);
    let start = Instant::now();
    let g = spawn_get(&pool, ());
    settle().await;
    tokio::time::advance(secs(30) - Duration::from_millis(1)).await;
    settle().await;
    assert!(!g.is_finished());
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    settle().await;
    assert!(g.is_finished());
    assert_eq!(start.elapsed(), secs(30));
    match err(join(g).await) {
        Error::Timeout { waited, last_connect_error, foreign_runtime: false, .. } => {
            assert_eq!(waited, secs(30));
            assert!(last_connect_error.is_none(), "{last_connect_error:?}");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    check_counts(&pool, &[()]);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    let s = pool.state();
    assert_eq!(s.counters.timeouts, 1);
    assert_eq!(s.counters.wait_time, secs(30));
    assert_eq!(pool.key_state(&()).unwrap().counters.timeouts, 1);
    drop(c);
}

#[tokio::test(start_paused = true)]
async fn checkout_timeout_carries_the_keys_last_dial_error() {
    let (mock, pool) = M::pool(|b| {
        b.max_open(2)
            .checkout_timeout(secs(10))
            .connect_timeout(secs(60))
    })
    .await;
    let c = ok(pool.get_for(&1).await);
    mock.push(1, Step::Fail("refused"));
    assert_eq!(manager_error(&err(pool.get_for(&1).await)), "refused");
    check_counts(&pool, &[1]);
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, lent: 1, ..ZERO })
    );

    mock.push(1, Step::Hang);
    let start = Instant::now();
    let e = err(pool.get_for(&1).await);
    assert_eq!(start.elapsed(), secs(10));
    match e {
        Error::Timeout {
            waited,
            last_connect_error: Some(ConnectError::Manager(m)),
            foreign_runtime: false,
            ..
        } => {
            assert_eq!(waited, secs(10));
            assert_eq!(m.0, "refused");
        }
        other => panic!("expected Timeout with the last dial error, got {other:?}"),
    }
    // The hung dial carries on.
    check_counts(&pool, &[1]);
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 1, dialing: 1, ..ZERO }
    );
    drop(c);
}

#[tokio::test(start_paused = true)]
async fn checkout_timeout_none_waits_past_an_hour() {
    let (_, pool) = U::pool(|b| b.max_open(1).checkout_timeout(None)).await;
    let c = ok(pool.get().await);
    let g = spawn_get(&pool, ());
    settle().await;
    tokio::time::advance(secs(3601)).await;
    settle().await;
    assert!(!g.is_finished());
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );
    assert_eq!(pool.state().counters.timeouts, 0);
    drop(c);
    let got = ok(join(g).await);
    assert_eq!(got.id, 1);
    check_counts(&pool, &[()]);
    assert_eq!(pool.state().counters.wait_time, secs(3601));
}

// ---------------------------------------------------------------------------
// 11. close
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn close_fails_gets_wakes_waiters_closes_idle_and_waits_for_lent() {
    let keys = [1, 2];
    let (mock, pool) = M::pool(|b| b.max_open(3).max_open_per_key(2)).await;
    let a = ok(pool.get_for(&1).await);
    let b = ok(pool.get_for(&1).await);
    let c = ok(pool.get_for(&2).await);
    assert_eq!((a.id, b.id, c.id), (1, 2, 3));
    drop(c);
    let w = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 3, idle: 1, lent: 2, waiting: 1, ..ZERO }
    );
    check_counts(&pool, &keys);
    let gets_before = pool.state().counters.gets;

    let p = pool.clone();
    let closer = tokio::spawn(async move { p.close().await });
    settle().await;
    assert!(pool.is_closed());
    assert!(matches!(err(join(w).await), Error::Closed));
    assert_eq!(
        mock.closed(),
        vec![3],
        "idle conn closed through the manager"
    );
    assert!(!closer.is_finished(), "two conns are still lent");
    let s = pool.state();
    assert!(s.closed);
    assert_eq!(Counts::from(&s), Counts { open: 2, lent: 2, ..ZERO });
    assert_eq!(s.closing, 0);
    assert_eq!(s.counters.closed(CloseReason::PoolClosed), 1);
    check_counts(&pool, &keys);

    assert!(matches!(err(pool.get_for(&1).await), Error::Closed));
    assert!(matches!(err(pool.get_for(&3).await), Error::Closed));
    assert_eq!(
        pool.state().counters.gets,
        gets_before,
        "closed gets not counted"
    );
    assert_eq!(key_counts(&pool, &3), None);

    drop(a);
    check_counts(&pool, &keys);
    settle().await;
    assert_eq!(mock.closed(), vec![3, 1]);
    assert!(!closer.is_finished());
    drop(b);
    check_counts(&pool, &keys);
    settle().await;
    assert_eq!(mock.closed(), vec![3, 1, 2]);
    assert!(closer.is_finished());
    join(closer).await;
    let s = pool.state();
    assert_eq!(Counts::from(&s), ZERO);
    assert_eq!(s.closing, 0);
    assert_eq!(s.keys, 0);
    assert_eq!(s.counters.closed(CloseReason::PoolClosed), 3);
    assert_eq!(mock.connects(), 3);
    // Closing again resolves at once.
    pool.close().await;
}

#[tokio::test(start_paused = true)]
async fn close_timeout_reports_the_lent_conn() {
    let (mock, pool) = U::pool(|b| b.max_open(2)).await;
    let c = ok(pool.get().await);
    let d = ok(pool.get().await);
    drop(d);
    let start = Instant::now();
    let r = pool.close_timeout(secs(5)).await;
    assert_eq!(start.elapsed(), secs(5));
    let e = r.expect_err("close timed out");
    assert_eq!((e.open, e.closing), (1, 0));
    assert_eq!(
        e.to_string(),
        "pool close timed out with 1 connection(s) open and 0 closing"
    );
    assert_eq!(mock.closed(), vec![2]);
    check_counts(&pool, &[()]);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });

    drop(c);
    settle().await;
    assert_eq!(mock.closed(), vec![2, 1]);
    let start = Instant::now();
    assert_eq!(pool.close_timeout(secs(5)).await, Ok(()));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(pool.state().closing, 0);
}

/// Dials in flight at close: a success is closed when it lands, a failure
/// just ends; close resolves after both.
#[tokio::test(start_paused = true)]
async fn close_closes_a_dial_in_flight_when_it_completes() {
    let (mock, pool) = U::pool(|b| b.max_open(2)).await;
    let gate_a = mock.gate(());
    let gate_b = mock.gate(());
    let g1 = spawn_get(&pool, ());
    settle().await;
    let g2 = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, dialing: 2, waiting: 2, ..ZERO }
    );

    let p = pool.clone();
    let closer = tokio::spawn(async move { p.close().await });
    settle().await;
    assert!(matches!(err(join(g1).await), Error::Closed));
    assert!(matches!(err(join(g2).await), Error::Closed));
    assert!(!closer.is_finished());
    assert_eq!(counts(&pool), Counts { open: 2, dialing: 2, ..ZERO });
    check_counts(&pool, &[()]);

    gate_a.succeed();
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(counts(&pool), Counts { open: 1, dialing: 1, ..ZERO });
    assert!(!closer.is_finished());
    check_counts(&pool, &[()]);

    gate_b.fail("late");
    settle().await;
    assert!(closer.is_finished());
    join(closer).await;
    assert_eq!(mock.closed(), vec![1]);
    let s = pool.state();
    assert_eq!(Counts::from(&s), ZERO);
    assert_eq!(s.closing, 0);
    assert_eq!(s.keys, 0);
    assert_eq!(s.counters.closed(CloseReason::PoolClosed), 1);
    assert_eq!(s.counters.dial_failures, 1);
}

// ---------------------------------------------------------------------------
// 12. The guard: detach, mark_broken, is_broken
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn detach_frees_the_slot_and_the_pool_never_closes_it() {
    let (mock, pool) = U::pool(|b| b.max_open(1)).await;
    let c = ok(pool.get().await);
    let g = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );

    let raw = Pooled::detach(c);
    assert_eq!(raw.id, 1);
    check_counts(&pool, &[()]);
    assert_eq!(
        counts(&pool),
        Counts { open: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    let got = ok(join(g).await);
    assert_eq!(got.id, 2, "a fresh dial, not the detached conn");
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    drop(got);
    pool.close().await;
    assert_eq!(
        mock.closed(),
        vec![2],
        "the detached conn is not closed by the pool"
    );
    drop(raw);
}

#[tokio::test(start_paused = true)]
async fn mark_broken_closes_instead_of_reusing() {
    let (mock, pool) = U::pool(|b| b.max_open(1)).await;
    let mut c = ok(pool.get().await);
    assert!(!Pooled::is_marked_broken(&c));
    Pooled::mark_broken(&mut c);
    assert!(Pooled::is_marked_broken(&c));
    drop(c);
    check_counts(&pool, &[()]);
    assert_eq!(counts(&pool), ZERO);
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed(CloseReason::Broken), 1);
    let c = ok(pool.get().await);
    assert_eq!(c.id, 2);
    assert_eq!(mock.connects(), 2);
}

#[tokio::test(start_paused = true)]
async fn is_broken_on_return_closes_the_conn() {
    let (mock, pool) = U::pool(|b| b.max_open(1)).await;
    let c = ok(pool.get().await);
    let g = spawn_get(&pool, ());
    settle().await;
    c.break_it();
    drop(c);
    check_counts(&pool, &[()]);
    // Not handed to the waiter: closed, and the waiter dials anew.
    assert_eq!(
        counts(&pool),
        Counts { open: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    let got = ok(join(g).await);
    assert_eq!(got.id, 2);
    assert_eq!(mock.closed(), vec![1]);
    let s = pool.state();
    assert_eq!(s.counters.closed(CloseReason::Broken), 1);
    assert_eq!(s.counters.closed_total(), 1);
}

#[tokio::test(start_paused = true)]
async fn is_broken_idle_conns_are_skipped_at_checkout() {
    let (mock, pool) = U::pool(|b| b.max_open(3)).await;
    let c1 = ok(pool.get().await);
    let c2 = ok(pool.get().await);
    let c3 = ok(pool.get().await);
    let (f2, f3) = (c2.broken.clone(), c3.broken.clone());
    drop(c1);
    drop(c2);
    drop(c3);
    assert_eq!(counts(&pool), Counts { open: 3, idle: 3, ..ZERO });
    // The two newest idle conns die while idle.
    f2.store(true, std::sync::atomic::Ordering::SeqCst);
    f3.store(true, std::sync::atomic::Ordering::SeqCst);

    let c = ok(pool.get().await);
    assert_eq!(c.id, 1, "skipped ids 3 and 2");
    check_counts(&pool, &[()]);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    settle().await;
    assert_eq!(sorted(mock.closed()), vec![2, 3]);
    let s = pool.state();
    assert_eq!(s.counters.closed(CloseReason::Broken), 2);
    assert_eq!(
        (s.counters.gets, s.counters.gets_waited),
        (4, 3),
        "one get, counted once"
    );
    assert_eq!(mock.connects(), 3);

    // All idle conns broken: the getter dials.
    c.break_it();
    let raw_flag = c.broken.clone();
    drop(c); // closed on return (broken)
    settle().await;
    assert_eq!(sorted(mock.closed()), vec![1, 2, 3]);
    drop(raw_flag);
    let d = ok(pool.get().await);
    assert_eq!(d.id, 4);
    let e = ok(pool.get().await);
    assert_eq!(e.id, 5);
    let flag = e.broken.clone();
    drop(e);
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
    drop(d);
    // Idle: [5 (broken), 4]; newest first is 4.
    let x = ok(pool.get().await);
    assert_eq!(x.id, 4);
    let y = ok(pool.get().await);
    assert_eq!(y.id, 6, "broken idle id 5 skipped, new dial");
    settle().await;
    assert_eq!(sorted(mock.closed()), vec![1, 2, 3, 5]);
    check_counts(&pool, &[()]);
    assert_eq!(counts(&pool), Counts { open: 2, lent: 2, ..ZERO });
}

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
    assert_eq!(s.counters.closed(CloseReason::Broken), 1);

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

// ---------------------------------------------------------------------------
// 14. Pre-warming
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn initial_for_prewarms_exactly_n_per_key() {
    let (mock, pool) = M::pool(|b| b.initial_for(1, 2).initial_for(2, 3)).await;
    assert_eq!(mock.connects(), 5);
    check_counts(&pool, &[1, 2]);
    assert_eq!(counts(&pool), Counts { open: 5, idle: 5, ..ZERO });
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 2, idle: 2, ..ZERO })
    );
    assert_eq!(
        key_counts(&pool, &2),
        Some(Counts { open: 3, idle: 3, ..ZERO })
    );
    let s = pool.state();
    assert_eq!((s.counters.dials, s.counters.gets), (5, 0));
    assert_eq!(s.keys, 2);
    let a = ok(pool.get_for(&1).await);
    let b = ok(pool.get_for(&1).await);
    assert_eq!(a.key, 1);
    assert_eq!(b.key, 1);
    assert_eq!(mock.connects(), 5, "served from the pre-warmed conns");
    assert_eq!(pool.state().counters.gets_waited, 0);
}

#[tokio::test(start_paused = true)]
async fn initial_prewarms_a_single_destination_pool() {
    let (mock, pool) = U::pool(|b| b.initial(3)).await;
    assert_eq!(mock.connects(), 3);
    assert_eq!(counts(&pool), Counts { open: 3, idle: 3, ..ZERO });
    check_counts(&pool, &[()]);
}

#[tokio::test(start_paused = true)]
async fn initial_failure_fails_build_and_closes_what_was_opened() {
    let mock = M::new();
    mock.push(1, Step::Ok);
    mock.push(1, Step::Fail("boom"));
    mock.push(1, Step::Ok);
    let r = support::core_builder(mock.clone())
        .initial_for(1, 3)
        .build()
        .await;
    match r {
        Err(BuildError::Connect(ConnectError::Manager(e))) => assert_eq!(e.0, "boom"),
        Err(other) => panic!("expected BuildError::Connect(Manager), got {other:?}"),
        Ok(_) => panic!("expected the build to fail"),
    }
    assert_eq!(mock.connects(), 3);
    assert_eq!(
        sorted(mock.closed()),
        vec![1, 2],
        "both opened conns closed"
    );
}

#[tokio::test(start_paused = true)]
async fn initial_timeout_fails_build_with_connect_timeout() {
    let mock = U::new();
    mock.push((), Step::Ok);
    mock.push((), Step::Hang);
    let start = Instant::now();
    let r = support::core_builder(mock.clone())
        .connect_timeout(secs(1))
        .initial(2)
        .build()
        .await;
    assert_eq!(start.elapsed(), secs(1));
    match r {
        Err(BuildError::Connect(ConnectError::Timeout(d))) => assert_eq!(d, secs(1)),
        Err(other) => panic!("expected BuildError::Connect(Timeout), got {other:?}"),
        Ok(_) => panic!("expected the build to fail"),
    }
    assert_eq!(mock.closed(), vec![1]);
}

/// A pre-warm dial that panics is a failed dial (`ConnectError::Panicked`,
/// as for every other dial), not a panic of `build`.
#[tokio::test(start_paused = true)]
async fn initial_panicking_dial_fails_build_with_panicked() {
    let mock = U::new();
    mock.push((), Step::Ok);
    mock.push((), Step::Panic);
    let r = support::core_builder(mock.clone()).initial(2).build().await;
    match r {
        Err(BuildError::Connect(ConnectError::Panicked(_))) => {}
        Err(other) => panic!("expected BuildError::Connect(Panicked), got {other:?}"),
        Ok(_) => panic!("expected the build to fail"),
    }
    assert_eq!(mock.closed(), vec![1]);
}

/// `initial_for(key, 0)` pre-warms nothing and leaves no trace of the key.
#[tokio::test(start_paused = true)]
async fn initial_for_zero_registers_no_key() {
    let (mock, pool) = M::pool(|b| b.initial_for(1, 1).initial_for(2, 0)).await;
    assert_eq!(mock.connects(), 1);
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );
    assert_eq!(
        key_counts(&pool, &2),
        None,
        "key 2 has no connection and no waiter"
    );
    assert_eq!(pool.state().keys, 1);
}

/// Checkout takes the most recently returned connection first (LIFO),
/// whether the returns were few (a single-key pool keeps them on its
/// `recent` stack, unparked) or more than that stack holds (then they are
/// all parked, oldest first).
#[tokio::test(start_paused = true)]
async fn checkout_takes_the_most_recently_returned_first() {
    for n in [3, 6] {
        let (_, pool) = U::pool(|b| b.max_open(n).initial(n)).await;
        let mut lent = Vec::new();
        for _ in 0..n {
            lent.push(ok(pool.get().await));
        }
        let returned: Vec<u64> = lent.iter().map(|c| c.id).collect();
        for c in lent {
            drop(c);
        }
        assert_eq!(pool.state().idle, n);
        let mut got = Vec::new();
        for _ in 0..n {
            got.push(ok(pool.get().await));
        }
        let order: Vec<u64> = got.iter().map(|c| c.id).collect();
        let newest_first: Vec<u64> = returned.into_iter().rev().collect();
        assert_eq!(order, newest_first, "{n} returned");
        check_counts(&pool, &[()]);
    }
}
