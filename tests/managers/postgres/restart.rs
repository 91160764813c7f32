//! A server restart: every get answers in time while the server is down,
//! and the pool serves again once it is back, also under load.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use connpool::{Error, Pool};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::support;

use super::{backend_pid, bounded, manager, unique, wait_for};

/// How a get fared while the server was down or restarting.
#[derive(Debug, Default)]
struct Outcomes {
    /// Error kind (or "lent, query failed") → count.
    kinds: BTreeMap<&'static str, usize>,
    served: usize,
    slowest: Duration,
}

impl Outcomes {
    fn count(&mut self, kind: &'static str, took: Duration) {
        *self.kinds.entry(kind).or_default() += 1;
        self.slowest = self.slowest.max(took);
    }
}

/// One get and one query, timed; the get must answer within the checkout
/// deadline (+ 1 s slack).
async fn timed_get(
    pool: &Pool<connpool::Single<connpool::managers::postgres::PostgresManager>>,
    out: &Mutex<Outcomes>,
) -> bool {
    const DEADLINE: Duration = Duration::from_secs(2);
    let start = Instant::now();
    let got = pool.get().await;
    let took = start.elapsed();
    assert!(
        took < DEADLINE + Duration::from_secs(1),
        "a get took {took:?} with a checkout deadline of {DEADLINE:?}: {:?}",
        got.as_ref().err()
    );
    match got {
        Ok(conn) => match conn.simple_query("SELECT 1").await {
            Ok(_) => {
                let mut out = out.lock();
                out.served += 1;
                out.slowest = out.slowest.max(took);
                true
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                out.lock().count("lent, query failed", took);
                false
            }
        },
        Err(e) => {
            out.lock().count(support::outage_error(&e).0, took);
            false
        }
    }
}

/// (3) A server restart: while it is down every get answers (an error
/// saying why) within its checkout deadline; once it is back the pool
/// serves again within the backoff cap plus a dial; and a restart under
/// load leaves every caller answered in time and the pool serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_restart() {
    let Some(pg) = support::pg::dedicated() else {
        return;
    };
    bounded(async {
        const BACKOFF_CAP: Duration = Duration::from_millis(500);
        const CONNECT: Duration = Duration::from_secs(1);
        let app = unique("restart");
        let pool = Pool::builder(manager(&pg, &app).single())
            .max_open(4)
            .initial(2)
            .checkout_timeout(Duration::from_secs(2))
            .connect_timeout(CONNECT)
            .backoff(Duration::from_millis(50), BACKOFF_CAP)
            .build()
            .await
            .unwrap();
        let mut old_pids = BTreeSet::new();
        {
            let mut held = Vec::new();
            for _ in 0..4 {
                held.push(pool.get().await.unwrap());
            }
            for conn in &held {
                old_pids.insert(backend_pid(conn).await.unwrap());
            }
        }

        // Down.
        let stopper = Arc::clone(&pg);
        tokio::task::spawn_blocking(move || stopper.stop()).await.unwrap();
        let down = Arc::new(Mutex::new(Outcomes::default()));
        let callers: Vec<_> = (0..6)
            .map(|_| {
                let (pool, down) = (pool.clone(), Arc::clone(&down));
                tokio::spawn(async move {
                    for _ in 0..3 {
                        assert!(!timed_get(&pool, &down).await, "served while the server was down");
                    }
                })
            })
            .collect();
        for c in callers {
            c.await.unwrap();
        }
        println!("while down: {:?}", down.lock());

        // Up again: served within the backoff cap plus a dial.
        let starter = Arc::clone(&pg);
        tokio::task::spawn_blocking(move || starter.start()).await.unwrap();
        let up = Instant::now();
        loop {
            match pool.get().await {
                Ok(conn) => {
                    if let Ok(pid) = backend_pid(&conn).await {
                        assert!(!old_pids.contains(&pid));
                        break;
                    }
                }
                Err(Error::Backoff { retry_in, .. }) => tokio::time::sleep(retry_in).await,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
            assert!(
                up.elapsed() < BACKOFF_CAP + CONNECT + Duration::from_secs(1),
                "the pool did not serve within {:?} of the server's return",
                up.elapsed()
            );
        }
        println!("served again {:?} after the server was back", up.elapsed());
        let mut workers = Vec::new();
        for _ in 0..4 {
            let pool = pool.clone();
            workers.push(tokio::spawn(async move {
                for _ in 0..10 {
                    let conn = pool.get().await.expect("get after the restart");
                    conn.simple_query("SELECT 1").await.expect("query after the restart");
                }
            }));
        }
        for w in workers {
            w.await.unwrap();
        }

        // A restart under load.
        let load = Arc::new(Mutex::new(Outcomes::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let served_after = Arc::new(AtomicUsize::new(0));
        let restarted = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (pool, load, stop) = (pool.clone(), Arc::clone(&load), Arc::clone(&stop));
                let (served_after, restarted) = (Arc::clone(&served_after), Arc::clone(&restarted));
                tokio::spawn(async move {
                    while !stop.load(Ordering::Acquire) {
                        let after = restarted.load(Ordering::Acquire);
                        if timed_get(&pool, &load).await {
                            if after {
                                served_after.fetch_add(1, Ordering::AcqRel);
                            }
                        } else {
                            // Don't spin on instant failures.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                })
            })
            .collect();
        let restarter = Arc::clone(&pg);
        tokio::task::spawn_blocking(move || restarter.restart()).await.unwrap();
        restarted.store(true, Ordering::Release);
        let back = Instant::now();
        wait_for("the pool to serve 20 queries after the restart", || async {
            served_after.load(Ordering::Acquire) >= 20
        })
        .await;
        let recovered = back.elapsed();
        stop.store(true, Ordering::Release);
        for w in workers {
            w.await.unwrap();
        }
        println!(
            "restart under load: {:?}; 20 queries served {recovered:?} after pg_ctl restart returned",
            load.lock()
        );
        pool.close().await;
    })
    .await;
}
