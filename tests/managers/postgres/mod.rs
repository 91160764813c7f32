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

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use connpool::managers::postgres::PostgresManager;
use connpool::{Manager, Pool};
use tokio::time::Instant;
use tokio_postgres::Client;

use crate::support::pg::PgServer;

mod broken;
mod limits;
mod restart;

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
