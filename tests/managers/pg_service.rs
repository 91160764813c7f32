//! `PgService`: one statement per call, with one deadline from the
//! checkout to the result, against a throwaway PostgreSQL: statements
//! through it; a statement past its deadline, cancelled on the server and
//! its connection retired; a frozen backend (`SIGSTOP`), whose call ends
//! by its deadline and whose pool serves the next call from a new session;
//! a server stopped and started again (`pg_ctl`), each call ending by its
//! deadline while it is down and served soon after it is back.

use std::time::{Duration, Instant};

use connpool::Pool;
use connpool::managers::postgres::PgService;

use super::pg_deadline::{signal, sleeping};
use super::postgres::{bounded, manager, unique, wait_for};
use crate::support;

#[tokio::test]
async fn statements_through_the_service() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let pool = Pool::builder(manager(&pg, &unique("service")).single())
            .build()
            .await
            .unwrap();
        let db = PgService::new(pool.clone(), ()).timeout(Duration::from_secs(2));
        let row = db.query_one("SELECT $1::int + 1", &[&41]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 42);
        assert_eq!(
            db.query("SELECT generate_series(1, 3)", &[])
                .await
                .unwrap()
                .len(),
            3
        );
        assert!(
            db.query_opt("SELECT 1 WHERE false", &[])
                .await
                .unwrap()
                .is_none()
        );
        db.batch_execute("CREATE TEMP TABLE t (n int)")
            .await
            .unwrap();
        // A server error reads as the server said it, and is no timeout.
        let err = db.execute("SELECT nope", &[]).await.unwrap_err();
        assert!(!err.is_timeout());
        assert!(
            err.to_string().contains("column \"nope\" does not exist"),
            "{err}"
        );
        assert_eq!(pool.state().lent, 0, "every call gave its connection back");
        pool.close().await;
    })
    .await;
}

/// `pg_sleep(30)` under a 500 ms deadline: the call fails at its deadline,
/// naming it; the statement is cancelled on the server (its session runs
/// nothing soon after), the connection is retired, and the next call is
/// served by a new session.
#[tokio::test]
async fn a_statement_past_its_deadline_is_cancelled_on_the_server() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let admin = pg.client().await;
        let pool = Pool::builder(manager(&pg, &unique("service_cancel")).single())
            .max_open(1)
            .build()
            .await
            .unwrap();
        let db = PgService::new(pool.clone(), ()).timeout(Duration::from_millis(500));
        let pid: i32 = db
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);

        let start = Instant::now();
        let err = db
            .query_one("SELECT 1 FROM pg_sleep(30)", &[])
            .await
            .unwrap_err();
        let took = start.elapsed();
        assert!(err.is_timeout(), "{err}");
        assert_eq!(
            err.to_string(),
            "PostgreSQL call timed out: no result within its deadline of 500ms \
             (waiting for the statement; a cancel request for it is sent to the \
             server, and its connection retired)"
        );
        assert!(took < Duration::from_millis(900), "{took:?}");
        wait_for("the statement cancelled on the server", || async {
            sleeping(&admin, pid).await == 0
        })
        .await;

        let now: i32 = db
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        assert_ne!(now, pid, "a new session");
        assert_eq!(pool.state().counters.closed_broken, 1);
        assert_eq!(pool.state().counters.reply_timeouts, 1);
        pool.close().await;
    })
    .await;
}

/// A frozen backend: the call ends by its deadline, the connection is
/// retired, and the next call is served at once by a new session.
#[tokio::test]
async fn a_frozen_backend_ends_the_call_by_its_deadline() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let pool = Pool::builder(manager(&pg, &unique("service_frozen")).single())
            .max_open(1)
            .build()
            .await
            .unwrap();
        let db = PgService::new(pool.clone(), ()).timeout(Duration::from_millis(500));
        let pid: i32 = db
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        if !signal(pid, "STOP") {
            return;
        }
        let start = Instant::now();
        let err = db.query_one("SELECT 1", &[]).await.unwrap_err();
        let took = start.elapsed();
        assert!(err.is_timeout(), "{err}");
        assert!(took < Duration::from_millis(900), "{took:?}");

        let start = Instant::now();
        let now: i32 = db
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        assert_ne!(now, pid, "a new session");
        eprintln!(
            "frozen backend: the call ended after {took:?}; the next served in {:?}",
            start.elapsed()
        );
        assert!(signal(pid, "CONT"));
        pool.close().await;
    })
    .await;
}

/// The server stopped (`pg_ctl stop -m fast`) and started again, with the
/// pool's defaults and one 500 ms deadline: each call while it is down
/// fails by its deadline, and calls are served again within half a second
/// of the server's being back.
#[tokio::test]
async fn a_restarted_server_is_served_again_soon_after_it_is_back() {
    const DEADLINE: Duration = Duration::from_millis(500);
    let Some(pg) = support::pg::dedicated() else {
        return;
    };
    bounded(async {
        let pool = Pool::builder(manager(&pg, &unique("service_restart")).single())
            .build()
            .await
            .unwrap();
        let db = PgService::new(pool.clone(), ()).timeout(DEADLINE);
        db.query_one("SELECT 1", &[]).await.unwrap();

        let stopping = std::sync::Arc::clone(&pg);
        tokio::task::spawn_blocking(move || stopping.stop()).await.unwrap();
        let mut longest = Duration::ZERO;
        for _ in 0..4 {
            let start = Instant::now();
            let err = db.query_one("SELECT 1", &[]).await.unwrap_err();
            longest = longest.max(start.elapsed());
            assert!(longest < DEADLINE + Duration::from_millis(100), "{longest:?}: {err}");
        }
        let starting = std::sync::Arc::clone(&pg);
        tokio::task::spawn_blocking(move || starting.start()).await.unwrap();
        let back = Instant::now();
        loop {
            match db.query_one("SELECT 1", &[]).await {
                Ok(_) => break,
                Err(e) => assert!(back.elapsed() < Duration::from_millis(500), "{e}"),
            }
        }
        let served = back.elapsed();
        assert!(served < Duration::from_millis(500), "{served:?}");
        eprintln!(
            "restart through PgService: calls while down ended after at most {longest:?} (deadline {DEADLINE:?}); served {served:?} after the server was back"
        );
        pool.close().await;
    })
    .await;
}

/// A call's future can be spawned (an axum handler's must be `Send`).
#[allow(dead_code)]
fn calls_are_send(db: PgService<connpool::Single<connpool::managers::postgres::PostgresManager>>) {
    fn send<T: Send>(_: T) {}
    send(async move { db.query_one("SELECT 1", &[]).await });
}

/// A clone bound to one instant: its statements share it. Under a 1 s
/// budget, `pg_sleep(0.6)` is served and a second one is cut at the
/// budget's end (each would fit a 1 s deadline of its own); and with the
/// pool's one connection held, a call fails waiting for a connection.
/// Each is counted where it was: `reply_timeouts`, `timeouts`.
#[tokio::test]
async fn statements_of_a_clone_bound_to_one_instant_share_it() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        const BUDGET: Duration = Duration::from_secs(1);
        let pool = Pool::builder(manager(&pg, &unique("service_budget")).single())
            .max_open(1)
            .build()
            .await
            .unwrap();
        let db = PgService::new(pool.clone(), ()).timeout(BUDGET);
        db.query_one("SELECT 1", &[]).await.unwrap();
        let start = tokio::time::Instant::now();
        let request = db.deadline(start + BUDGET);
        request.execute("SELECT pg_sleep(0.6)", &[]).await.unwrap();
        let err = request
            .execute("SELECT pg_sleep(0.6)", &[])
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        let took = start.elapsed();
        assert!(
            took >= BUDGET && took < BUDGET + Duration::from_millis(300),
            "{took:?}"
        );
        assert_eq!(pool.state().counters.reply_timeouts, 1);

        let held = pool.get().await.unwrap();
        let err = db
            .clone()
            .timeout(Duration::from_millis(200))
            .query_one("SELECT 1", &[])
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(
            err.to_string().contains("waiting for a connection"),
            "{err}"
        );
        assert_eq!(pool.state().counters.timeouts, 1);
        drop(held);
        pool.close().await;
    })
    .await;
}
