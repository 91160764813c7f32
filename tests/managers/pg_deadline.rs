//! A deadline around a PostgreSQL query, as a tokio-postgres user writes it
//! (`tokio::time::timeout`): the call ends at its deadline, the statement
//! it abandoned is cancelled on the server, and the connection serves the
//! next borrower once reset, with no late reply and no new dial; on a
//! frozen backend (`SIGSTOP`), the call ends at its deadline too and the
//! connection is replaced.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::postgres::RecyclingMethod;
use tokio_postgres::Client;

use super::postgres::{backend_pid, bounded, manager, unique, wait_for};
use crate::support;

/// Statements of `pid` running `pg_sleep(30)` on the server.
async fn sleeping(admin: &Client, pid: i32) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep(30)%'",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0)
}

/// A 30 s statement under a 300 ms deadline, on a pool of one connection
/// with the default recycling (`Clean`): the call fails at its deadline;
/// the next `get` is lent the same session (not a new dial after the reset
/// timed out behind the statement), the statement no longer runs, and the
/// session answers its own query. For `Always` too.
#[tokio::test]
async fn a_query_past_its_deadline_is_cancelled_and_its_session_reused() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let admin = pg.client().await;
        for method in [RecyclingMethod::Clean, RecyclingMethod::Always] {
            let manager = manager(&pg, &unique("deadline")).with_recycling(method.clone());
            let pool = Pool::builder(manager.single())
                .max_open(1)
                .build()
                .await
                .unwrap();
            let conn = pool.get().await.unwrap();
            let pid = backend_pid(&conn).await.unwrap();
            let late = tokio::time::timeout(
                Duration::from_millis(300),
                conn.query_one("SELECT 1 FROM pg_sleep(30)", &[]),
            )
            .await;
            assert!(late.is_err(), "{method:?}: the deadline ended the call");
            assert_eq!(
                sleeping(&admin, pid).await,
                1,
                "still running on the server"
            );
            drop(conn);

            let conn = pool.get().await.unwrap();
            assert_eq!(
                backend_pid(&conn).await.unwrap(),
                pid,
                "{method:?}: the same session, cancelled and reset"
            );
            let seven: i32 = conn.query_one("SELECT 7", &[]).await.unwrap().get(0);
            assert_eq!(seven, 7, "{method:?}: its own answer");
            wait_for("the statement gone from the server", || async {
                sleeping(&admin, pid).await == 0
            })
            .await;
            assert_eq!(pool.state().counters.dials, 1, "{method:?}: no new dial");
            drop(conn);
            pool.close().await;
        }
    })
    .await;
}

/// Sends `signal` to the server process `pid` (a backend); false if this
/// user may not (the server runs as another user and this is not root):
/// the caller skips, except under `CI=true`, where CI runs as root.
fn signal(pid: i32, signal: &str) -> bool {
    let sent = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        sent || std::env::var("CI").as_deref() != Ok("true"),
        "kill -{signal} {pid} failed under CI"
    );
    if !sent {
        eprintln!("skipped: kill -{signal} {pid} not allowed (not root?)");
    }
    sent
}

/// A frozen backend (`SIGSTOP`: its socket still accepts bytes, it answers
/// nothing): a query on it ends at its 300 ms deadline; the reset that
/// follows cannot run, so the pool closes the connection at its
/// `ping_timeout` (500 ms here) and the next `get` is served by a new
/// session; thawed, the old backend ends (nothing left on the server).
#[tokio::test]
async fn a_frozen_backend_fails_its_query_by_the_deadline_and_is_replaced() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let admin = pg.client().await;
        let manager = manager(&pg, &unique("frozen"));
        let pool = Pool::builder(manager.single())
            .max_open(1)
            .ping_timeout(Duration::from_millis(500))
            .checkout_timeout(Duration::from_secs(5))
            .build()
            .await
            .unwrap();
        let conn = pool.get().await.unwrap();
        let pid = backend_pid(&conn).await.unwrap();
        if !signal(pid, "STOP") {
            return;
        }
        let late =
            tokio::time::timeout(Duration::from_millis(300), conn.query_one("SELECT 1", &[])).await;
        assert!(late.is_err(), "the deadline ended the call");
        drop(conn);

        let conn = pool.get().await.unwrap();
        let new_pid = backend_pid(&conn).await.unwrap();
        assert_ne!(new_pid, pid, "a new session");
        let seven: i32 = conn.query_one("SELECT 7", &[]).await.unwrap().get(0);
        assert_eq!(seven, 7);
        assert!(pool.state().counters.recycle_failures >= 1);
        assert!(signal(pid, "CONT"));
        wait_for("the frozen backend gone once thawed", || async {
            let left: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                )
                .await
                .unwrap()
                .get(0);
            left == 0
        })
        .await;
        drop(conn);
        pool.close().await;
    })
    .await;
}
