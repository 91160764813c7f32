//! A deadline around a PostgreSQL query, as a tokio-postgres user writes it
//! (`tokio::time::timeout`): the call ends at its deadline, and the
//! session goes to no other borrower while the statement it abandoned
//! runs (its reset waits for it, or the pool closes it); on a frozen
//! backend (`SIGSTOP`), the call ends at its deadline too and the
//! connection is replaced.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::postgres::RecyclingMethod;
use tokio_postgres::Client;

use super::postgres::{backend_pid, bounded, manager, unique, wait_for};
use crate::support;

/// Statements of `pid` running `pg_sleep` on the server.
pub(crate) async fn sleeping(admin: &Client, pid: i32) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep(%'",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0)
}

/// A statement under a 300 ms deadline on a pool of one connection, for
/// `Clean` (the default) and `Always`: the call fails at its deadline, and
/// its session goes to no other borrower while the statement runs. One of
/// 0.8 s: the next `get` waits for the reset behind it and is lent the same
/// session, reset, which answers its own query. One of 30 s, with a
/// `ping_timeout` of 500 ms: the reset times out, the pool closes the
/// connection, and the next `get` is served by a new session.
#[tokio::test]
async fn a_query_past_its_deadline_keeps_its_session_from_other_borrowers() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let admin = pg.client().await;
        for method in [RecyclingMethod::Clean, RecyclingMethod::Always] {
            for (sleep, same_session) in [("0.8", true), ("30", false)] {
                let what = format!("{method:?}, pg_sleep({sleep})");
                let manager = manager(&pg, &unique("deadline")).with_recycling(method.clone());
                let pool = Pool::builder(manager.single())
                    .max_open(1)
                    .ping_timeout(Duration::from_millis(if same_session { 5000 } else { 500 }))
                    .build()
                    .await
                    .unwrap();
                let conn = pool.get().await.unwrap();
                let pid = backend_pid(&conn).await.unwrap();
                let sql = format!("SELECT 1 FROM pg_sleep({sleep})");
                let late =
                    tokio::time::timeout(Duration::from_millis(300), conn.query_one(&sql, &[]))
                        .await;
                assert!(late.is_err(), "{what}: the deadline ended the call");
                assert_eq!(sleeping(&admin, pid).await, 1, "{what}: still running");
                drop(conn);

                let conn = pool.get().await.unwrap();
                let now_pid = backend_pid(&conn).await.unwrap();
                assert_eq!(
                    now_pid == pid,
                    same_session,
                    "{what}: pid {now_pid}, was {pid}"
                );
                if same_session {
                    assert_eq!(sleeping(&admin, pid).await, 0, "{what}: lent while busy");
                }
                let seven: i32 = conn.query_one("SELECT 7", &[]).await.unwrap().get(0);
                assert_eq!(seven, 7, "{what}: its own answer");
                drop(conn);
                pool.close().await;
            }
        }
    })
    .await;
}

/// A borrower may give its connection back with requests unanswered: a
/// row keeps its statement alive, and tokio-postgres closes the statement
/// when the row goes (a `Close` and a `Sync` it does not wait for). The
/// reset that follows a changed session must leave the next borrower
/// alone (a reset that sent a `CancelRequest` for the unanswered request
/// had it land on the next borrower's statement). 50 rounds.
#[tokio::test]
async fn a_reset_behind_unanswered_requests_leaves_the_next_borrower_alone() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let manager = manager(&pg, &unique("unanswered"));
        let pool = Pool::builder(manager.single())
            .max_open(1)
            .build()
            .await
            .unwrap();
        for round in 0..50 {
            let conn = pool.get().await.unwrap();
            let row = conn.query_one("SELECT $1::int", &[&round]).await.unwrap();
            assert_eq!(row.get::<_, i32>(0), round);
            conn.batch_execute("SET search_path = public")
                .await
                .unwrap();
            drop(row);
            drop(conn);
            let conn = pool.get().await.unwrap();
            // Long enough to be running when a stray cancel lands.
            let got = conn.query_one("SELECT 7 FROM pg_sleep(0.02)", &[]).await;
            let seven: i32 = got.unwrap_or_else(|e| panic!("round {round}: {e}")).get(0);
            assert_eq!(seven, 7, "round {round}");
        }
        pool.close().await;
    })
    .await;
}

/// Sends `signal` to the server process `pid` (a backend); false if this
/// user may not (the server runs as another user and this is not root):
/// the caller skips, except under `CI=true`, where CI runs as root.
pub(crate) fn signal(pid: i32, signal: &str) -> bool {
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
