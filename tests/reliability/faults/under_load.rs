//! Each fault under load: every call answers in time while the fault is on,
//! and the pool serves again soon after it clears.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use connpool::{Pool, Pooled};
use parking_lot::Mutex;
use tokio::time::{Instant, timeout};

use crate::support;
use crate::support::echo::EchoServer;
use crate::support::fault::{Fault, FaultProxy};

#[cfg(feature = "grpc")]
use super::grpc;
#[cfg(feature = "postgres")]
use super::pg;
use super::tcp::Echo;
use super::{
    BACKOFF_CAP, CHECKOUT, CLOSE_AFTER, CONNECT, DELAY, FAULT_FOR, OP, PAST_DEADLINE_LIMIT, SLACK,
    TASKS, Target, builder, quiet, serial,
};

/// How the calls of one phase ended.
#[derive(Debug, Default)]
struct Outcomes {
    kinds: BTreeMap<&'static str, u64>,
    calls: u64,
    slowest: Duration,
    past_deadline: Duration,
}

impl Outcomes {
    fn served(&self) -> u64 {
        self.kinds.get("ok").copied().unwrap_or(0)
    }
}

/// One call: a checkout, then one request under `OP`. A request that failed
/// or timed out marks its connection broken, as a user must (its reply may
/// still come). Returns how it ended and, for a backoff, when to retry.
async fn call<T: Target>(
    pool: &Pool<T::M>,
    key: &T::Key,
    n: u64,
    out: &Mutex<Outcomes>,
) -> (&'static str, Option<Duration>) {
    let start = Instant::now();
    let (k, retry) = match pool.get_for(key).await {
        Ok(mut conn) => match timeout(OP, T::op(&mut conn, n)).await {
            Ok(Ok(())) => ("ok", None),
            Ok(Err(e)) => {
                assert!(!e.is_empty());
                Pooled::mark_broken(&mut conn);
                ("request failed", None)
            }
            Err(_) => {
                Pooled::mark_broken(&mut conn);
                ("request timed out", None)
            }
        },
        Err(e) => support::outage_error(&e),
    };
    let took = start.elapsed();
    let mut o = out.lock();
    *o.kinds.entry(k).or_default() += 1;
    o.calls += 1;
    o.slowest = o.slowest.max(took);
    o.past_deadline = o.past_deadline.max(took.saturating_sub(CHECKOUT + OP));
    (k, retry)
}

/// Figures of one fault.
#[derive(Debug)]
struct FaultRun {
    fault: Fault,
    during: Outcomes,
    dials_during: usize,
    cut: usize,
    first_served: Duration,
    all_served: Duration,
    recovery: Outcomes,
}

async fn run_fault<T: Target>(target: &T, fault: Fault) -> FaultRun {
    let proxy = FaultProxy::start(target.upstream()).await;
    let (_, key) = target.manager(proxy.addr);
    let pool = builder(target, proxy.addr, Some(Duration::ZERO))
        .build()
        .await
        .unwrap();
    let n = Arc::new(AtomicU64::new(0));

    // Warm: every call of 64 callers is served.
    let warm = Arc::new(Mutex::new(Outcomes::default()));
    let callers: Vec<_> = (0..TASKS)
        .map(|_| {
            let (pool, key, n, warm) = (pool.clone(), key.clone(), n.clone(), warm.clone());
            tokio::spawn(async move {
                for _ in 0..3 {
                    call::<T>(&pool, &key, n.fetch_add(1, Ordering::Relaxed), &warm).await;
                }
            })
        })
        .collect();
    for c in callers {
        c.await.unwrap();
    }
    assert_eq!(
        warm.lock().served(),
        3 * TASKS as u64,
        "warm-up: {:?}",
        warm.lock()
    );

    // The fault, for FAULT_FOR of real time, under load.
    let dials_before = proxy.accepted();
    proxy.set(fault);
    let end = Instant::now() + FAULT_FOR;
    let during = Arc::new(Mutex::new(Outcomes::default()));
    let callers: Vec<_> = (0..TASKS)
        .map(|_| {
            let (pool, key, n, during) = (pool.clone(), key.clone(), n.clone(), during.clone());
            tokio::spawn(async move {
                while Instant::now() < end {
                    let (_, retry) =
                        call::<T>(&pool, &key, n.fetch_add(1, Ordering::Relaxed), &during).await;
                    support::back_off(retry).await;
                }
            })
        })
        .collect();
    tokio::time::sleep_until(end).await;

    // Cleared: fresh callers, each until served once.
    proxy.clear();
    let cleared = Instant::now();
    let dials_during = proxy.accepted() - dials_before;
    let cut = proxy.cut();
    let recovery = Arc::new(Mutex::new(Outcomes::default()));
    let limit = BACKOFF_CAP + CONNECT + CHECKOUT + OP + SLACK;
    let fresh: Vec<_> = (0..TASKS)
        .map(|_| {
            let (pool, key, n, recovery) = (pool.clone(), key.clone(), n.clone(), recovery.clone());
            tokio::spawn(async move {
                loop {
                    let (k, retry) =
                        call::<T>(&pool, &key, n.fetch_add(1, Ordering::Relaxed), &recovery).await;
                    if k == "ok" {
                        return Some(cleared.elapsed());
                    }
                    if cleared.elapsed() > 2 * limit {
                        return None;
                    }
                    support::back_off(retry).await;
                }
            })
        })
        .collect();
    let mut served = Vec::new();
    for f in fresh {
        served.push(f.await.unwrap());
    }
    for c in callers {
        c.await.unwrap();
    }
    let during = std::mem::take(&mut *during.lock());
    let recovery = std::mem::take(&mut *recovery.lock());
    let run = FaultRun {
        fault,
        during,
        dials_during,
        cut,
        first_served: served
            .iter()
            .flatten()
            .min()
            .copied()
            .unwrap_or(Duration::MAX),
        all_served: served
            .iter()
            .map(|s| s.unwrap_or(Duration::MAX))
            .max()
            .unwrap(),
        recovery,
    };
    println!("{} {:?}", target.name(), run);

    assert!(
        run.during.past_deadline <= PAST_DEADLINE_LIMIT,
        "{} {fault:?}: a call ended {:?} past its deadline of {:?}",
        target.name(),
        run.during.past_deadline,
        CHECKOUT + OP
    );
    assert!(
        run.recovery.past_deadline <= PAST_DEADLINE_LIMIT,
        "{} {fault:?}: after the fault, a call ended {:?} past its deadline",
        target.name(),
        run.recovery.past_deadline
    );
    assert!(
        served.iter().all(Option::is_some),
        "{} {fault:?}: callers never served after the fault cleared: {:?}",
        target.name(),
        run.recovery
    );
    assert!(
        run.first_served <= BACKOFF_CAP + CONNECT + SLACK,
        "{} {fault:?}: first served {:?} after the fault cleared",
        target.name(),
        run.first_served
    );
    assert!(
        run.all_served <= limit,
        "{} {fault:?}: all callers served only {:?} after the fault cleared",
        target.name(),
        run.all_served
    );
    // The fault did something: calls failed while it was on.
    assert!(
        run.during.served() < run.during.calls,
        "{} {fault:?}: nothing failed: {:?}",
        target.name(),
        run.during
    );

    quiet(&pool, std::slice::from_ref(&key)).await;
    let s = pool.state();
    assert_eq!(s.open, s.idle, "{s:?}");
    // Every dial that did not fail made a connection, and so did a failed
    // one whose connection was broken on arrival (a reset cut it): each
    // connection made is closed or idle.
    let made = s.counters.closed_total() + s.open as u64;
    assert!(
        s.counters.dials - s.counters.dial_failures <= made && made <= s.counters.dials,
        "every connection made is closed or idle: {s:?}"
    );
    pool.close().await;
    assert_eq!(pool.state().open, 0);
    run
}

async fn every_fault<T: Target>(target: &T) {
    let faults = [
        Fault::Blackhole,
        Fault::Reset,
        Fault::Delay(DELAY),
        Fault::CloseAfter(CLOSE_AFTER),
    ];
    let mut runs = Vec::new();
    for fault in faults {
        runs.push(run_fault(target, fault).await);
    }
    println!(
        "| target | fault | calls while on | served | errors | max past deadline | dials while on | connections cut | first served after | all 64 served after |"
    );
    for r in &runs {
        println!(
            "| {} | {:?} | {} | {} | {:?} | {:?} | {} | {} | {:?} | {:?} |",
            target.name(),
            r.fault,
            r.during.calls,
            r.during.served(),
            r.during
                .kinds
                .iter()
                .filter(|(k, _)| **k != "ok")
                .collect::<Vec<_>>(),
            r.during.past_deadline,
            r.dials_during,
            r.cut,
            r.first_served,
            r.all_served
        );
    }
}

#[test]
fn tcp_faults_under_load() {
    serial(async {
        let echo = Echo(EchoServer::start().await);
        every_fault(&echo).await;
    });
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_faults_under_load() {
    // The server starts in this test's turn too (see `serial`).
    let _alone = support::alone();
    let Some(server) = support::pg::kept() else {
        return;
    };
    support::multi_thread(2, every_fault(&pg::Postgres(server)));
}

/// gRPC: the server's stream limit is 8, so the 64 callers share 8
/// connections (of the pool's 16) as they would in use.
#[cfg(feature = "grpc")]
#[test]
fn grpc_faults_under_load() {
    serial(async {
        let target = grpc::Grpc::start("grpc", 8).await;
        every_fault(&target).await;
        target.server.abort();
    });
}
