//! PostgreSQL restart under load: 64 tasks run
//! `SELECT 1` through a pool (`max_open` 16, `max_connecting` 2, the default
//! backoff of 100 ms doubling to 5 s, `Duration::ZERO`) while a
//! throwaway server of the test's own does `pg_ctl restart -m fast`.
//!
//! - Every call (checkout + query under the caller's own timeout) ends with
//!   an answer or a typed error within its deadline (the overshoot is
//!   measured and bounded).
//! - No reconnect storm: a counting manager records every dial. The outage,
//!   as the pool sees it, runs from the start of the first failed dial to
//!   the start of the first successful one after it; the dials started in
//!   it are bounded by `max_connecting` × the backoff windows that can open
//!   in that time (the first burst, then one after each backoff of at least
//!   half its delay — equal jitter — the same derivation as
//!   `pool/backoff.rs`, here on the real clock). Both are printed.
//! - After the restart returns, no call that starts gets a connection the
//!   old server dropped (its query would fail), and every task is served
//!   again within the backoff cap + a dial + one call's deadline.
//!
//! `CI=true` makes a missing PostgreSQL a failure (`support::pg`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use connpool::Single;
use connpool::managers::postgres::{PgConnection, PgError, PostgresManager};
use connpool::{Health, Manager, Pool, Pooled, async_trait};
use parking_lot::Mutex;
use tokio::time::{Instant, timeout};

use crate::support;
use crate::support::check_counts;

const TASKS: usize = 64;
const MAX_OPEN: usize = 16;
const MAX_CONNECTING: usize = 2;
const CHECKOUT: Duration = Duration::from_secs(3);
const CONNECT: Duration = Duration::from_secs(2);
/// A caller's own timeout on its query.
const OP: Duration = Duration::from_secs(2);
const PAST_DEADLINE_LIMIT: Duration = Duration::from_millis(500);
/// The default backoff's first delay and longest (the `Builder` docs).
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// The default backoff's delay after `failures` failed dials in a row,
/// before jitter: the base, doubling per failure up to the cap.
fn backoff_delay(failures: u32) -> Duration {
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(u32::MAX);
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_CAP)
}
/// Upper bound of the whole test body.
const TEST_LIMIT: Duration = Duration::from_secs(90);

/// One dial: when it started and ended, and whether it made a connection.
#[derive(Debug, Clone, Copy)]
struct Dial {
    start: Instant,
    end: Instant,
    ok: bool,
}

/// The PostgreSQL manager, recording every dial.
struct Counting {
    inner: Single<PostgresManager>,
    dials: Mutex<Vec<Dial>>,
}

#[async_trait]
impl Manager for Counting {
    type Key = ();
    type Connection = PgConnection;
    type Error = PgError;

    async fn connect(&self, key: &()) -> Result<PgConnection, PgError> {
        let start = Instant::now();
        let r = self.inner.connect(key).await;
        self.dials
            .lock()
            .push(Dial { start, end: Instant::now(), ok: r.is_ok() });
        r
    }

    async fn ping(&self, conn: &mut PgConnection) -> Result<(), PgError> {
        self.inner.ping(conn).await
    }

    fn health(&self, conn: &mut PgConnection) -> Health {
        self.inner.health(conn)
    }

    async fn recycle(&self, conn: &mut PgConnection) -> Result<(), PgError> {
        self.inner.recycle(conn).await
    }

    async fn close(&self, conn: PgConnection) {
        self.inner.close(conn).await;
    }
}

#[derive(Debug, Default)]
struct Outcomes {
    kinds: BTreeMap<&'static str, u64>,
    calls: u64,
    past_deadline: Duration,
    /// Queries that failed on a connection lent after the restart returned.
    dead_after_restart: u64,
}

/// Backoff windows that can open within `outage`: the first burst, then one
/// after each backoff, which lasts at least half its delay.
fn windows(outage: Duration) -> usize {
    let mut windows = 1;
    let mut elapsed = Duration::ZERO;
    loop {
        elapsed += backoff_delay(windows as u32) / 2;
        if elapsed >= outage {
            return windows;
        }
        windows += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_under_load_no_storm_no_stale_connection() {
    let Some(pg) = support::pg::dedicated() else {
        return;
    };
    let body = async {
        let mut config = pg.config();
        config.application_name("connpool_pg_restart");
        let manager = Counting {
            inner: PostgresManager::new(config).single(),
            dials: Mutex::new(Vec::new()),
        };
        let pool = Pool::builder(manager)
            .max_open(MAX_OPEN)
            .max_connecting(MAX_CONNECTING)
            .checkout_timeout(CHECKOUT)
            .connect_timeout(CONNECT)
            .health_check(Duration::ZERO)
            .build()
            .await
            .unwrap();

        let out = Arc::new(Mutex::new(Outcomes::default()));
        let stop = Arc::new(AtomicBool::new(false));
        // When `pg_ctl restart` returned (None before).
        let restarted: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
        let served_after = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..TASKS)
            .map(|_| {
                let (pool, out, stop) = (pool.clone(), out.clone(), stop.clone());
                let (restarted, served_after) = (restarted.clone(), served_after.clone());
                tokio::spawn(async move {
                    let mut served_since_restart = false;
                    let mut first_after = None;
                    while !stop.load(Ordering::Acquire) {
                        let after = *restarted.lock();
                        let start = Instant::now();
                        let (k, dead, retry) = match pool.get().await {
                            Ok(mut conn) => {
                                match timeout(OP, conn.simple_query("SELECT 1")).await {
                                    Ok(Ok(_)) => ("ok", false, None),
                                    Ok(Err(e)) => {
                                        assert!(!e.to_string().is_empty());
                                        Pooled::mark_broken(&mut conn);
                                        ("query failed", true, None)
                                    }
                                    Err(_) => {
                                        Pooled::mark_broken(&mut conn);
                                        ("query timed out", true, None)
                                    }
                                }
                            }
                            Err(e) => {
                                let (k, retry) = support::outage_error(&e);
                                (k, false, retry)
                            }
                        };
                        let took = start.elapsed();
                        {
                            let mut o = out.lock();
                            *o.kinds.entry(k).or_default() += 1;
                            o.calls += 1;
                            o.past_deadline =
                                o.past_deadline.max(took.saturating_sub(CHECKOUT + OP));
                            if dead && after.is_some() {
                                o.dead_after_restart += 1;
                            }
                        }
                        if let (Some(at), "ok", false) = (after, k, served_since_restart) {
                            served_since_restart = true;
                            first_after = Some(start + took - at);
                            served_after.fetch_add(1, Ordering::AcqRel);
                        }
                        support::back_off(retry).await;
                    }
                    first_after
                })
            })
            .collect();

        // Load reaches the server before the restart.
        let warm = Instant::now();
        while out.lock().kinds.get("ok").copied().unwrap_or(0) < 10 * TASKS as u64 {
            assert!(
                warm.elapsed() < Duration::from_secs(10),
                "no load: {:?}",
                out.lock()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let before = out.lock().kinds.clone();

        let restarter = Arc::clone(&pg);
        let t0 = Instant::now();
        tokio::task::spawn_blocking(move || restarter.restart())
            .await
            .unwrap();
        let t_up = Instant::now();
        *restarted.lock() = Some(t_up);
        let restart_took = t_up - t0;

        // Every task served again.
        let limit = BACKOFF_CAP + CONNECT + CHECKOUT + OP + Duration::from_secs(2);
        while served_after.load(Ordering::Acquire) < TASKS {
            assert!(
                t_up.elapsed() < limit,
                "only {} of {TASKS} tasks served {:?} after the restart: {:?}",
                served_after.load(Ordering::Acquire),
                t_up.elapsed(),
                out.lock()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.store(true, Ordering::Release);
        let mut recovered = Vec::new();
        for w in workers {
            recovered.push(w.await.unwrap().expect("served after the restart"));
        }
        let last_served = recovered.iter().max().copied().unwrap();

        // The dials.
        let dials = pool.manager().dials.lock().clone();
        let first_fail = dials.iter().filter(|d| !d.ok).map(|d| d.start).min();
        let (outage_dials, outage, bound) = match first_fail {
            None => (0, Duration::ZERO, MAX_CONNECTING),
            Some(f0) => {
                let s1 = dials
                    .iter()
                    .filter(|d| d.ok && d.start > f0)
                    .map(|d| d.start)
                    .min()
                    .expect("a successful dial after the restart");
                let n = dials
                    .iter()
                    .filter(|d| d.start >= f0 && d.start < s1)
                    .count();
                let outage = s1 - f0;
                (n, outage, MAX_CONNECTING * windows(outage))
            }
        };
        let o = std::mem::take(&mut *out.lock());
        let s = pool.state();
        println!(
            "pg restart: pg_ctl restart -m fast took {restart_took:?}; calls {} (before the restart: {before:?}); \
             outcomes {:?}; max past deadline {:?}; dead connections lent after the restart {}; \
             dials in total {} ({} failed); outage seen by the pool {outage:?}: {outage_dials} dials \
             (bound {bound} = max_connecting {MAX_CONNECTING} x {} backoff windows); \
             all {TASKS} tasks served again {last_served:?} after the restart returned; \
             health checks {} ({} failed)",
            o.calls,
            o.kinds,
            o.past_deadline,
            o.dead_after_restart,
            dials.len(),
            dials.iter().filter(|d| !d.ok).count(),
            bound / MAX_CONNECTING,
            s.counters.health_checks,
            s.counters.health_check_failures,
        );
        let longest_dial = dials.iter().map(|d| d.end - d.start).max().unwrap();
        println!("pg restart: longest dial {longest_dial:?}");
        assert!(
            o.past_deadline <= PAST_DEADLINE_LIMIT,
            "a call ended {:?} past its deadline",
            o.past_deadline
        );
        assert_eq!(
            o.dead_after_restart, 0,
            "a call after the restart got a connection the old server had dropped"
        );
        assert!(
            outage_dials <= bound,
            "{outage_dials} dials in an outage of {outage:?} (bound {bound})"
        );

        // Quiet, counts consistent, then closed.
        let settle = Instant::now();
        loop {
            let s = pool.state();
            if s.lent == 0 && s.waiting == 0 && s.dialing == 0 && s.pinging == 0 && s.recycling == 0
            {
                break;
            }
            assert!(settle.elapsed() < Duration::from_secs(5), "{s:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        check_counts(&pool, &[()]);
        let s = pool.state();
        assert_eq!(s.open, s.idle, "{s:?}");
        // Read again: dials may have started after the outage figures
        // were taken (a connection dropped by the restart, replaced).
        assert_eq!(
            s.counters.dials,
            pool.manager().dials.lock().len() as u64,
            "the pool counts every dial"
        );
        pool.close().await;
        assert_eq!(pool.state().open, 0);
    };
    if timeout(TEST_LIMIT, body).await.is_err() {
        panic!("test did not finish within {TEST_LIMIT:?}");
    }
}
