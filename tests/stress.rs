//! Bounded multi-threaded stress runs: many getters over few connections and
//! several keys, with random cancellations, failing dials and broken
//! connections, on a real 2-worker runtime — once with the core alone, once
//! with every lifecycle feature on and running fast (timers of a few
//! milliseconds, health checks, keepalive pings, backoff, `max_connecting`,
//! `min_idle`, dead connections). Afterwards every count is back to its
//! expected value and every connection the manager made was closed once.
//! They assert no timing, only outcomes; they stop by themselves (fixed op
//! count).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use connpool::{Builder, Error, HealthCheck, Pool, Pooled};
use support::{Mock, Step, check_counts};

type M = Mock<u32>;

const TASKS: u64 = 64;
const OPS: u64 = 400;
const KEYS: u32 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_gets_cancels_and_failures_leak_nothing() {
    let mock = M::new();
    stress(&mock, support::core_builder(mock.clone()), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_lifecycle_feature_running_fast_nothing_leaks() {
    let ms = Duration::from_millis;
    let mock = M::new();
    let builder = Pool::builder(mock.clone())
        .idle_timeout(Some(ms(3)))
        .max_lifetime(Some(ms(20)))
        .max_uses(Some(7))
        .min_idle(1)
        .health_check(HealthCheck::Always)
        .ping_timeout(ms(2))
        .keepalive_interval(Some(ms(2)))
        .keepalive_timeout(ms(1))
        .keepalive_max_missed(2)
        .backoff(ms(1), ms(4))
        .max_connecting(2);
    stress(&mock, builder, true).await;
}

/// Runs the random workload on `builder` (with the caps set here); `kill`
/// also kills random connections (their pings fail from then on).
async fn stress(mock: &M, builder: Builder<M>, kill: bool) {
    for k in 0..KEYS {
        // Every key gets some failing dials up front.
        for _ in 0..5 {
            mock.push(k, Step::Fail("scripted"));
        }
    }
    let pool = builder
        .max_open(6)
        .max_open_per_key(3)
        .max_idle(4)
        .max_idle_per_key(2)
        .checkout_timeout(Some(Duration::from_secs(20)))
        .build()
        .await
        .unwrap();
    let served = Arc::new(AtomicU64::new(0));
    let detached = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let pool = pool.clone();
        let served = Arc::clone(&served);
        let detached = Arc::clone(&detached);
        handles.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
            for _ in 0..OPS {
                let key = rng.u64(..u64::from(KEYS)) as u32;
                let get = pool.get_for(&key);
                let got = match rng.u64(..4) {
                    // Give up almost at once: cancels at a random point.
                    0 => {
                        match tokio::time::timeout(Duration::from_micros(rng.u64(..50)), get).await
                        {
                            Ok(r) => r,
                            Err(_) => continue,
                        }
                    }
                    _ => get.await,
                };
                match got {
                    Ok(mut conn) => {
                        served.fetch_add(1, Ordering::Relaxed);
                        match rng.u64(..20) {
                            0 => Pooled::mark_broken(&mut conn),
                            1 => conn.break_it(),
                            2 => {
                                detached.fetch_add(1, Ordering::Relaxed);
                                drop(Pooled::detach(conn));
                            }
                            3 if kill => conn.kill(),
                            _ => {
                                if rng.u64(..2) == 0 {
                                    tokio::task::yield_now().await;
                                }
                            }
                        }
                    }
                    Err(Error::Connect(_)) => {}
                    Err(Error::Backoff { .. }) if kill => {}
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    if kill {
        // A quiet spell: the timers (idle timeout, lifetime, keepalive of
        // dead connections, min_idle refills) run with nobody getting. Its
        // length changes what they get to do, never what is asserted.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let s = pool.state();
    check_counts(&pool, &(0..KEYS).collect::<Vec<_>>());
    assert_eq!(s.waiting, 0, "{s:?}");
    assert_eq!(s.lent, 0, "{s:?}");
    assert!(s.open <= 6 && s.idle <= 4, "{s:?}");
    // Backoff (in the lifecycle run) refuses many gets while a key's dials
    // fail; a good share still gets through.
    let share = if kill { 10 } else { 2 };
    assert!(
        served.load(Ordering::Relaxed) > TASKS * OPS / share,
        "{s:?}"
    );
    pool.close().await;
    let s = pool.state();
    assert_eq!((s.open, s.closing, s.idle), (0, 0, 0), "{s:?}");
    // Every connection made was closed by the pool exactly once, except the
    // detached ones, which the pool must not close.
    let made = mock.connects() as u64 - s.counters.dial_failures;
    let closed = mock.closed();
    let mut unique = closed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), closed.len(), "a connection was closed twice");
    assert_eq!(
        made,
        closed.len() as u64 + detached.load(Ordering::Relaxed),
        "made = closed + detached"
    );
    assert_eq!(
        s.counters.closed_total(),
        closed.len() as u64,
        "close counters disagree with the manager"
    );
}
