//! The PostgreSQL manager against a real server (`--features postgres`).
//!
//! Each test takes a server from `support::pg`: `DATABASE_URL` if set, else
//! a throwaway PostgreSQL shared by this binary's tests and kept up until it
//! exits (the restart test gets one of its own). Without PostgreSQL the
//! tests print a skip message and pass, unless `CI=true`.
//!
//! Pools count their connections on the server's side: every pool sets a
//! unique `application_name`, and a separate direct client samples
//! `pg_stat_activity` for it.
//!
//! Real I/O rules out the paused clock. No sleep is used to order events:
//! waits for a condition (a backend gone, a client that noticed its
//! connection closed, sessions gone after a pool closed) poll it with a
//! bounded real-time deadline (`wait_for`, 5 s) that only a broken
//! implementation reaches; the one timed assertion (answers within the
//! checkout deadline while the server is down) has a slack of a second.
//! Every test body is bounded by `TEST_LIMIT`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use connpool::managers::postgres::{PgError, PgKey, PostgresManager};
use connpool::{CloseReason, Error, HealthCheck, Manager, Pool, Pooled, async_trait};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_postgres::{Client, NoTls};

use crate::support;
use crate::support::pg::PgServer;

/// Upper bound of one test's body.
const TEST_LIMIT: Duration = Duration::from_secs(40);
/// Upper bound of a wait for a condition that a working implementation meets
/// in milliseconds.
const WAIT_LIMIT: Duration = Duration::from_secs(5);

/// Runs a test body with a time limit: a hang fails the test (and the
/// server guard still stops the server, on unwind).
pub(crate) async fn bounded<F: Future<Output = ()>>(body: F) {
    if tokio::time::timeout(TEST_LIMIT, body).await.is_err() {
        panic!("test did not finish within {TEST_LIMIT:?}");
    }
}

/// A name no other test or run uses: `connpool_<tag>_<pid>_<n>`.
pub(crate) fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "connpool_{tag}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A manager for the server's database whose sessions carry `app` as
/// their `application_name`.
pub(crate) fn manager(pg: &PgServer, app: &str) -> PostgresManager {
    let mut config = pg.config();
    config.application_name(app);
    PostgresManager::new(config)
}

/// Sessions whose `application_name` is `app`, per database.
async fn sessions(admin: &Client, app: &str) -> BTreeMap<String, i64> {
    admin
        .query(
            "SELECT datname::text, count(*) FROM pg_stat_activity \
             WHERE application_name = $1 GROUP BY datname",
            &[&app],
        )
        .await
        .expect("sampling pg_stat_activity")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

async fn total_sessions(admin: &Client, app: &str) -> i64 {
    sessions(admin, app).await.values().sum()
}

pub(crate) async fn backend_pid(conn: &Client) -> Result<i32, tokio_postgres::Error> {
    Ok(conn.query_one("SELECT pg_backend_pid()", &[]).await?.get(0))
}

/// Polls `cond` until it holds; fails the test after `WAIT_LIMIT`.
pub(crate) async fn wait_for<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT_LIMIT;
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "waited {WAIT_LIMIT:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `fut` once and drops it; true if it was pending.
async fn poll_once_then_drop<F: Future>(fut: F) -> bool {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_pending())).await
}

/// Terminates backend `pid` and waits until it is gone: by then the server
/// has sent its FATAL error to the client and will answer nothing more.
async fn terminate(admin: &Client, pid: i32) {
    let row = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .expect("pg_terminate_backend");
    assert!(row.get::<_, bool>(0), "backend {pid} was not there to kill");
    wait_for(&format!("backend {pid} to exit"), || async {
        let row = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .await
            .expect("sampling pg_stat_activity");
        row.get::<_, i64>(0) == 0
    })
    .await;
}

/// Waits until the connections returned to `pool` were recycled (their
/// `DISCARD ALL` ran: they are idle, or closed).
pub(crate) async fn recycled<M: Manager>(pool: &Pool<M>) {
    wait_for("the returned connections to be recycled", || async {
        pool.state().recycling == 0
    })
    .await;
}

/// Waits until no session of `app` is left (after the pool closed).
async fn wait_no_sessions(admin: &Client, app: &str) {
    wait_for(&format!("the sessions of {app} to end"), || async {
        total_sessions(admin, app).await == 0
    })
    .await;
}

/// (1) `max_open` holds as the server counts sessions: 32 tasks × 3 slow
/// queries through a pool of 4 never have more than 4 sessions open, every
/// query succeeds, and closing the pool ends the sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_open_holds_on_the_server() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let app = unique("max_open");
        let pool = Pool::builder(manager(&pg, &app).single())
            .max_open(4)
            .checkout_timeout(Duration::from_secs(20))
            .build()
            .await
            .unwrap();
        let admin = Arc::new(pg.client().await);

        let done = Arc::new(AtomicBool::new(false));
        let sampler = tokio::spawn({
            let (admin, app, done) = (Arc::clone(&admin), app.clone(), Arc::clone(&done));
            async move {
                let (mut max, mut samples) = (0, 0);
                while !done.load(Ordering::Acquire) {
                    max = max.max(total_sessions(&admin, &app).await);
                    samples += 1;
                }
                (max, samples)
            }
        });
        let workers: Vec<_> = (0..32)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    for j in 0..3 {
                        let conn = pool.get().await.expect("get");
                        let row = conn
                            .query_one("SELECT $1::int FROM pg_sleep(0.02)", &[&(i * 3 + j)])
                            .await
                            .expect("query through the pool");
                        assert_eq!(row.get::<_, i32>(0), i * 3 + j);
                        assert!(pool.state().open <= 4);
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.expect("worker panicked");
        }
        done.store(true, Ordering::Release);
        let (max, samples) = sampler.await.unwrap();

        let state = pool.state();
        assert!(max <= 4, "the server saw {max} sessions of a pool of 4");
        assert!(samples > 0);
        assert!(state.counters.dials <= 4, "{state:?}");
        assert_eq!(state.counters.gets, 96);
        assert_eq!(state.counters.closed_total(), 0, "{state:?}");
        // Now idle: the server sees exactly the pool's connections.
        assert_eq!(total_sessions(&admin, &app).await, state.open as i64);
        println!("max_open 4: at most {max} sessions seen in {samples} samples, {state:?}");

        pool.close().await;
        wait_no_sessions(&admin, &app).await;
    })
    .await;
}

/// (2) A backend killed while its connection is idle is found and replaced:
/// with `HealthCheck::Always` the next get (and each of several concurrent
/// gets after every idle backend was killed) succeeds at its first query.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_backend_is_replaced_before_it_is_lent() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let app = unique("killed");
        let pool = Pool::builder(manager(&pg, &app).single())
            .max_open(3)
            .health_check(HealthCheck::Always)
            .checkout_timeout(Duration::from_secs(10))
            .build()
            .await
            .unwrap();
        let admin = pg.client().await;

        // One connection, killed while idle, three times over.
        for round in 0..3 {
            recycled(&pool).await;
            let pid = {
                let conn = pool.get().await.unwrap();
                backend_pid(&conn).await.unwrap()
            };
            recycled(&pool).await;
            terminate(&admin, pid).await;
            let conn = pool.get().await.expect("get after the kill");
            let new_pid = backend_pid(&conn)
                .await
                .unwrap_or_else(|e| panic!("round {round}: the pool lent a dead connection: {e}"));
            assert_ne!(new_pid, pid);
        }
        let c = pool.state().counters;
        assert_eq!(
            c.closed(CloseReason::Broken) + c.closed(CloseReason::HealthCheck),
            3,
            "{c:?}"
        );
        assert_eq!(c.dials, 4, "{c:?}");

        // Three idle connections, all killed; three concurrent getters.
        let dead_pids: Vec<_> = {
            let mut held = Vec::new();
            for _ in 0..3 {
                held.push(pool.get().await.unwrap());
            }
            let mut pids = Vec::new();
            for conn in &held {
                pids.push(backend_pid(conn).await.unwrap());
            }
            pids
        };
        recycled(&pool).await;
        assert_eq!(pool.state().idle, 3);
        for &pid in &dead_pids {
            terminate(&admin, pid).await;
        }
        let getters: Vec<_> = (0..3)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let conn = Pooled::into_owned(pool.get().await.expect("get after the kills"));
                    let pid = backend_pid(&conn)
                        .await
                        .expect("the pool lent a dead connection");
                    (pid, conn)
                })
            })
            .collect();
        let mut fresh = BTreeSet::new();
        let mut held = Vec::new();
        for g in getters {
            let (pid, conn) = g.await.unwrap();
            assert!(!dead_pids.contains(&pid));
            fresh.insert(pid);
            held.push(conn);
        }
        drop(held);
        assert_eq!(fresh.len(), 3, "each getter holds a connection of its own");
        let c = pool.state().counters;
        assert_eq!(
            c.closed(CloseReason::Broken) + c.closed(CloseReason::HealthCheck),
            6,
            "{c:?}"
        );
        pool.close().await;
        wait_no_sessions(&admin, &app).await;
    })
    .await;
}

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
    pool: &Pool<connpool::managers::postgres::SingleDatabase>,
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

/// (4) Two databases as two keys of one pool: each key stays within
/// `max_open_per_key` as the server counts sessions per database, while the
/// global cap would allow more, and each key's connections reach its own
/// database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_databases_with_per_key_limits() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let admin = Arc::new(pg.client().await);
        let db2 = unique("db2");
        admin
            .batch_execute(&format!("CREATE DATABASE {db2}"))
            .await
            .expect("CREATE DATABASE");
        let app = unique("two_dbs");
        let manager = manager(&pg, &app);
        let k1 = manager.key();
        let db1 = k1
            .dbname
            .clone()
            .expect("the test config names its database");
        let k2 = k1.clone().with_dbname(&db2);
        let pool = Pool::builder(manager)
            .max_open(6)
            .max_open_per_key(2)
            .checkout_timeout(Duration::from_secs(20))
            .build()
            .await
            .unwrap();

        let done = Arc::new(AtomicBool::new(false));
        let sampler = tokio::spawn({
            let (admin, app, done) = (Arc::clone(&admin), app.clone(), Arc::clone(&done));
            async move {
                let mut max: BTreeMap<String, i64> = BTreeMap::new();
                while !done.load(Ordering::Acquire) {
                    for (db, n) in sessions(&admin, &app).await {
                        let m = max.entry(db).or_default();
                        *m = (*m).max(n);
                    }
                }
                max
            }
        });
        let mut workers = Vec::new();
        for (key, db) in [(&k1, &db1), (&k2, &db2)] {
            for _ in 0..12 {
                let (pool, key, db): (_, PgKey, String) = (pool.clone(), key.clone(), db.clone());
                workers.push(tokio::spawn(async move {
                    for _ in 0..3 {
                        let conn = pool.get_for(&key).await.expect("get");
                        let row = conn
                            .query_one("SELECT current_database()::text FROM pg_sleep(0.02)", &[])
                            .await
                            .expect("query");
                        assert_eq!(row.get::<_, String>(0), db);
                        assert!(pool.key_state(&key).unwrap().open <= 2);
                    }
                }));
            }
        }
        for w in workers {
            w.await.expect("worker panicked");
        }
        done.store(true, Ordering::Release);
        let max = sampler.await.unwrap();
        println!("max sessions per database: {max:?}");
        for db in [&db1, &db2] {
            let seen = max.get(db).copied().unwrap_or(0);
            assert!(
                (1..=2).contains(&seen),
                "{db}: {seen} sessions seen (limit 2)"
            );
        }
        assert_eq!(max.len(), 2, "{max:?}");
        // Now idle: the server sees exactly each key's connections.
        let now = sessions(&admin, &app).await;
        for (key, db) in [(&k1, &db1), (&k2, &db2)] {
            let open = pool.key_state(key).map_or(0, |s| s.open) as i64;
            assert_eq!(now.get(db).copied().unwrap_or(0), open, "{now:?}");
        }
        assert!(pool.state().counters.dials <= 4);

        pool.close().await;
        wait_no_sessions(&admin, &app).await;
        admin
            .batch_execute(&format!("DROP DATABASE {db2}"))
            .await
            .expect("DROP DATABASE");
    })
    .await;
}

/// (5a) The manager alone: a ping or query dropped mid-flight leaves the
/// client usable (tokio-postgres discards the abandoned answers), and once
/// the server closes the connection `is_broken` says so without any I/O of
/// ours, and `ping` fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_requests_and_is_broken() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let app = unique("manager");
        let manager = manager(&pg, &app);
        let mut client = manager.connect(&manager.key()).await.expect("connect");
        manager.ping(&mut client).await.expect("ping");
        assert!(!manager.is_broken(&mut client));

        // Each request is polled once (so it is handed to the connection
        // task) and dropped before its answer.
        // A ping may complete at its first poll when the machine is busy
        // (the connection task runs on the other worker): try until one is
        // abandoned mid-flight.
        let mut abandoned = false;
        for _ in 0..100 {
            if poll_once_then_drop(manager.ping(&mut client)).await {
                abandoned = true;
                break;
            }
        }
        assert!(
            abandoned,
            "no ping was pending at its first poll in 100 tries"
        );
        assert!(
            poll_once_then_drop(client.simple_query("SELECT pg_sleep(0.05), 'abandoned'")).await,
            "the query was not pending"
        );
        assert!(!manager.is_broken(&mut client));
        let row = client
            .query_one("SELECT 'next'::text", &[])
            .await
            .expect("the client works after abandoned requests");
        assert_eq!(row.get::<_, String>(0), "next");
        manager
            .ping(&mut client)
            .await
            .expect("ping after abandoned requests");

        let admin = pg.client().await;
        let pid = backend_pid(&client).await.unwrap();
        terminate(&admin, pid).await;
        let deadline = Instant::now() + WAIT_LIMIT;
        while !manager.is_broken(&mut client) {
            assert!(
                Instant::now() < deadline,
                "is_broken never saw the server close"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(manager.ping(&mut client).await.is_err());
    })
    .await;
}

/// (5b) A connection whose backend is killed while it is lent is closed as
/// broken when it comes back, never lent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_connection_is_not_reused_after_return() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let app = unique("returned");
        let pool = Pool::builder(manager(&pg, &app).single())
            .max_open(1)
            .health_check(HealthCheck::Never)
            .build()
            .await
            .unwrap();
        let admin = pg.client().await;
        let conn = pool.get().await.unwrap();
        let pid = backend_pid(&conn).await.unwrap();
        terminate(&admin, pid).await;
        wait_for("the client to see its connection closed", || async {
            conn.is_closed()
        })
        .await;
        drop(conn);
        let state = pool.state();
        assert_eq!(state.counters.closed(CloseReason::Broken), 1, "{state:?}");
        assert_eq!(state.idle, 0);

        let conn = pool.get().await.unwrap();
        let new_pid = backend_pid(&conn).await.expect("a working connection");
        assert_ne!(new_pid, pid);
        assert_eq!(pool.state().counters.dials, 2);
        drop(conn);
        pool.close().await;
    })
    .await;
}

/// Delegates to [`PostgresManager`], but makes its connections itself so
/// the test learns when a connection's I/O task has ended (the moment its
/// client reports `is_closed`).
struct Watched {
    inner: PostgresManager,
    ended: mpsc::UnboundedSender<()>,
}

#[async_trait]
impl Manager for Watched {
    type Key = ();
    type Connection = Client;
    type Error = PgError;

    async fn connect(&self, _: &()) -> Result<Client, PgError> {
        let config = self.inner.config_for(&self.inner.key());
        let (client, connection) = config.connect(NoTls).await?;
        let ended = self.ended.clone();
        tokio::spawn(async move {
            let _ = connection.await;
            let _ = ended.send(());
        });
        Ok(client)
    }

    async fn ping(&self, conn: &mut Client) -> Result<(), PgError> {
        Ok(conn.check_connection().await?)
    }

    fn is_broken(&self, conn: &mut Client) -> bool {
        conn.is_closed()
    }
}

/// (5c) A connection the server closes while it is idle (its
/// `idle_session_timeout`, PostgreSQL 14+; a terminated backend before) is
/// caught by `is_broken` at checkout, even with `HealthCheck::Never`: the
/// getter gets a new connection that works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_idle_connection_is_not_lent() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let admin = pg.client().await;
        let version: i32 = admin
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .unwrap()
            .get(0);
        let app = unique("idle_closed");
        let mut inner = manager(&pg, &app);
        let server_closes = version >= 140000;
        if server_closes {
            let mut config = inner.config().clone();
            // Long enough that the replacement connection, dialed right
            // after, is not closed the same way before its first query on a
            // loaded machine (100 ms was: seen as a flake at load 50).
            config.options("-c idle_session_timeout=1000");
            inner = PostgresManager::new(config);
        }
        let (ended, mut ends) = mpsc::unbounded_channel();
        let pool = Pool::builder(Watched { inner, ended })
            .max_open(1)
            .health_check(HealthCheck::Never)
            .build()
            .await
            .unwrap();

        let pid = {
            let conn = pool.get().await.unwrap();
            backend_pid(&conn).await.unwrap()
        };
        assert_eq!(pool.state().idle, 1);
        if !server_closes {
            terminate(&admin, pid).await;
        }
        tokio::time::timeout(WAIT_LIMIT, ends.recv())
            .await
            .expect("the server did not close the idle connection")
            .unwrap();

        let conn = pool.get().await.unwrap();
        let new_pid = backend_pid(&conn)
            .await
            .expect("the pool lent the closed connection");
        assert_ne!(new_pid, pid);
        let state = pool.state();
        assert_eq!(state.counters.closed(CloseReason::Broken), 1, "{state:?}");
        assert_eq!(state.counters.health_checks, 0);
        assert_eq!(state.counters.dials, 2);
        drop(conn);
        pool.close().await;
    })
    .await;
}
