//! The maximum lifetime (exact, checked on return and at checkout, jittered)
//! and `max_uses`.

use std::collections::BTreeSet;
use std::time::Duration;

use connpool::Pooled;
use tokio::time::Instant;

use crate::support::*;

use super::{U, drain_closes, jump, ms, secs};

// ---------------------------------------------------------------------------
// 2. Max lifetime
// ---------------------------------------------------------------------------

/// With no jitter an idle connection is closed (`Lifetime`) at exactly birth
/// + `max_lifetime`, whatever use it had meanwhile (a use does not extend
/// it).
#[tokio::test(start_paused = true)]
async fn idle_conn_is_closed_at_exactly_birth_plus_max_lifetime() {
    let mock = U::new();
    let t0 = Instant::now();
    let pool = mock
        .core_pool(|b| b.max_lifetime(secs(60)).jitter(0.0).initial(1))
        .await;

    at(t0 + secs(20)).await;
    let c = ok(pool.get().await);
    assert_eq!(c.id, 1);
    at(t0 + secs(30)).await;
    drop(c);

    at(t0 + secs(60) - ms(1)).await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, idle: 1, ..ZERO },
        "not 1 ms early"
    );
    assert!(mock.closed().is_empty());

    at(t0 + secs(60)).await;
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(mock.closes_since(t0), vec![(1, secs(60))]);
    let s = pool.state();
    assert_eq!(s.counters.closed_lifetime, 1);
    assert_eq!(s.counters.closed_total(), 1);
    assert_eq!(s.closing, 0);
    check_counts(&pool, &[()]);
}

/// A connection past its lifetime while lent is not touched while lent; when
/// it comes back it is closed (`Lifetime`) instead of being handed to the
/// waiting getter, whose slot then dials a fresh one.
#[tokio::test(start_paused = true)]
async fn lent_conn_past_its_lifetime_is_closed_on_return_not_handed_to_a_waiter() {
    let (mock, pool) = U::pool(|b| {
        b.max_open(1)
            .max_lifetime(secs(60))
            .jitter(0.0)
            .checkout_timeout(None)
    })
    .await;
    let t0 = Instant::now();
    let c = ok(pool.get().await);
    assert_eq!(c.id, 1);

    at(t0 + secs(50)).await;
    let w = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );

    at(t0 + secs(61)).await;
    assert!(mock.closed().is_empty(), "not closed while lent");
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );
    assert!(!w.is_finished());

    drop(c);
    check_counts(&pool, &[()]);
    let c = ok(join(w).await);
    assert_eq!((c.id, Pooled::uses(&c)), (2, 1), "a fresh dial, not id 1");
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(mock.connects(), 2);
    let s = pool.state();
    assert_eq!(s.counters.closed_lifetime, 1);
    assert_eq!(s.counters.closed_total(), 1);
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    check_counts(&pool, &[()]);
}

/// An expired connection met at checkout (before the maintenance task ran)
/// is closed (`Lifetime`) and the getter gets the next idle one.
///
/// id 1 is born at 0 s, id 2 at 30 s; 2 is returned first, so 1 is the
/// newest idle connection when the clock jumps to 60 s.
#[tokio::test(start_paused = true)]
async fn expired_conn_met_at_checkout_is_closed_and_the_getter_gets_the_next() {
    let (mock, pool) = U::pool(|b| b.max_lifetime(secs(60)).jitter(0.0)).await;
    let t0 = Instant::now();
    let c1 = ok(pool.get().await);
    at(t0 + secs(30)).await;
    let c2 = ok(pool.get().await);
    assert_eq!((c1.id, c2.id), (1, 2));
    at(t0 + secs(31)).await;
    drop(c2);
    at(t0 + secs(32)).await;
    drop(c1);
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 2, idle: 2, ..ZERO });

    jump(secs(28)).await; // to 60 s, the maintenance task not yet run
    assert_eq!(Instant::now(), t0 + secs(60));
    assert_eq!(counts(&pool), Counts { open: 2, idle: 2, ..ZERO });
    let c = ok(pool.get().await);
    assert_eq!(c.id, 2, "the next idle one, not the expired one");
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    assert_eq!(pool.state().counters.closed_lifetime, 1);
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(mock.connects(), 2);
    let s = pool.state();
    assert_eq!(
        (s.counters.gets, s.counters.gets_waited),
        (3, 2),
        "the third get did not wait"
    );
    check_counts(&pool, &[()]);
}

/// Lifetime jitter 0.1: 1000 connections born at the same instant close
/// spread over `[0.9 × life, life]`: none before 90 s, all by 100 s, over
/// many 1 % buckets and many distinct instants.
#[tokio::test(start_paused = true)]
async fn lifetime_jitter_spreads_closes_over_the_band() {
    const N: usize = 1000;
    let life = secs(100);
    let mock = U::new();
    let t0 = Instant::now();
    let pool = mock
        .core_pool(|b| b.max_open(N).max_lifetime(life).jitter(0.1).initial(N))
        .await;
    assert_eq!(Instant::now(), t0, "all born at t0");
    assert_eq!(counts(&pool), Counts { open: N, idle: N, ..ZERO });

    at(t0 + life.mul_f64(0.9) - ms(1)).await;
    assert_eq!(pool.state().idle, N, "nothing before 0.9 × life");
    assert!(mock.closed().is_empty());

    at(t0 + life).await;
    drain_closes(&pool).await;
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(pool.state().counters.closed_lifetime, N as u64);
    assert_eq!(pool.state().counters.closed_total(), N as u64);

    let closes = mock.closes_since(t0);
    assert_eq!(closes.len(), N);
    let ids: BTreeSet<u64> = closes.iter().map(|&(id, _)| id).collect();
    assert_eq!(ids.len(), N, "each closed once");
    let (lo, hi) = (life.mul_f64(0.9), life);
    for &(id, after) in &closes {
        assert!(lo <= after && after <= hi, "conn {id} closed at {after:?}");
    }
    assert!(
        closes.windows(2).all(|w| w[0].1 <= w[1].1),
        "closed in deadline order"
    );
    let buckets: BTreeSet<u128> = closes
        .iter()
        .map(|&(_, after)| after.as_millis() / (life.as_millis() / 100))
        .collect();
    let instants: BTreeSet<Duration> = closes.iter().map(|&(_, after)| after).collect();
    assert!(buckets.len() >= 5, "1% buckets hit: {buckets:?}");
    assert!(
        instants.len() >= 500,
        "only {} distinct close instants",
        instants.len()
    );
    check_counts(&pool, &[()]);
}

// ---------------------------------------------------------------------------
// 3. Max uses
// ---------------------------------------------------------------------------

/// `max_uses(Some(3))`: a connection is lent exactly 3 times (`uses` 1, 2,
/// 3, counting a hand-off too) and closed (`Uses`) on its 3rd return, not
/// handed to the waiter, which gets a fresh dial.
#[tokio::test(start_paused = true)]
async fn max_uses_lends_a_conn_exactly_n_times() {
    let (mock, pool) = U::pool(|b| b.max_open(1).max_uses(3).checkout_timeout(None)).await;

    let c = ok(pool.get().await);
    assert_eq!((c.id, Pooled::uses(&c)), (1, 1));
    drop(c);
    let c = ok(pool.get().await);
    assert_eq!((c.id, Pooled::uses(&c)), (1, 2));
    // The 3rd lend is a hand-off to a waiter: it counts too.
    let w = spawn_get(&pool, ());
    settle().await;
    drop(c);
    let c = ok(join(w).await);
    assert_eq!((c.id, Pooled::uses(&c)), (1, 3));
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    assert!(mock.closed().is_empty());

    let w = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO }
    );
    drop(c); // 3rd return: closed, the waiter dials
    check_counts(&pool, &[()]);
    let c = ok(join(w).await);
    assert_eq!((c.id, Pooled::uses(&c)), (2, 1));
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(mock.connects(), 2);
    let s = pool.state();
    assert_eq!(s.counters.closed_uses, 1);
    assert_eq!(s.counters.closed_total(), 1);
    assert_eq!(s.counters.gets, 4);
    drop(c);
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    check_counts(&pool, &[()]);
}
