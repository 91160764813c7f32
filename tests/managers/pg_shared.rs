//! PostgreSQL connections lent shared ([`SharedPostgres`]) against a real
//! server: many borrowers on one session, their statements pipelined on
//! one client, one statement cache, and a connection killed under them.
//!
//! Borrowers are made to hold their handles at once with a barrier (no
//! sleep orders anything); waits for a condition poll it with the bounded
//! deadline of `wait_for`.

use std::collections::BTreeSet;
use std::sync::Arc;

use connpool::Pool;
use connpool::Single;
use connpool::managers::postgres::{PgError, PostgresManager, SharedPgConnection, SharedPostgres};
use tokio::sync::Barrier;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::postgres::{bounded, manager, unique, wait_for};
use crate::support;
use crate::support::pg::PgServer;

pub(crate) type Shared = Pool<Single<SharedPostgres>>;

/// The server process of a shared connection's session.
pub(crate) async fn backend_pid(conn: &SharedPgConnection) -> Result<i32, PgError> {
    Ok(conn.query_one("SELECT pg_backend_pid()", &[]).await?.get(0))
}

/// The names of the session's prepared statements.
async fn server_statements(conn: &SharedPgConnection) -> Vec<String> {
    // A simple query: an extended one would be a prepared statement itself.
    conn.simple_query("SELECT name FROM pg_prepared_statements")
        .await
        .unwrap()
        .iter()
        .filter_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .collect()
}

/// A pool of at most `max_open` connections, each lent to up to 64
/// borrowers, whose sessions carry `app` as their `application_name`.
pub(crate) async fn shared_pool(pg: &PgServer, app: &str, max_open: usize) -> Shared {
    Pool::builder(manager(pg, app).shared(64).single())
        .max_open(max_open)
        .build()
        .await
        .unwrap()
}

/// Sessions whose `application_name` is `app`.
async fn sessions(admin: &Client, app: &str) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .expect("sampling pg_stat_activity")
        .get(0)
}

/// `n` borrowers that each take a handle, then wait until all `n` (and the
/// caller, who also waits on the returned barrier) hold theirs, then run
/// `work` on it.
pub(crate) fn borrowers<T, F, Fut>(
    pool: &Shared,
    n: usize,
    work: F,
) -> (Arc<Barrier>, Vec<tokio::task::JoinHandle<T>>)
where
    T: Send + 'static,
    F: Fn(usize, connpool::Pooled<'static, Single<SharedPostgres>>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send,
{
    let barrier = Arc::new(Barrier::new(n + 1));
    let tasks = (0..n)
        .map(|i| {
            let (pool, barrier, work) = (pool.clone(), Arc::clone(&barrier), work.clone());
            tokio::spawn(async move {
                let conn = connpool::Pooled::into_owned(pool.get().await.expect("a shared handle"));
                barrier.wait().await;
                work(i, conn).await
            })
        })
        .collect();
    (barrier, tasks)
}

/// 20 borrowers that hold a handle at once all talk to one backend: one
/// pid seen by all, one session on the server, one connection in the
/// pool (of 4 allowed). Closing the pool ends the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn borrowers_share_one_session() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let app = unique("shared_one");
        let pool = shared_pool(&pg, &app, 4).await;
        let admin = pg.client().await;
        let first = pool.get().await.unwrap();
        let pid = backend_pid(&first).await.unwrap();

        let (barrier, tasks) = borrowers(&pool, 20, |_, conn| async move {
            backend_pid(&conn)
                .await
                .expect("a query on a shared handle")
        });
        barrier.wait().await;
        let mut pids = BTreeSet::new();
        for task in tasks {
            pids.insert(task.await.unwrap());
        }
        assert_eq!(pids, BTreeSet::from([pid]), "every borrower on one backend");
        assert_eq!(pool.state().open, 1);
        assert_eq!(sessions(&admin, &app).await, 1);
        drop(first);

        pool.close().await;
        wait_for("the shared session to end", || async {
            sessions(&admin, &app).await == 0
        })
        .await;
    })
    .await;
}

/// 50 borrowers holding handles to the one connection a pool of one
/// allows send their statements at once: all are answered, each with its
/// own answer, through one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_borrowers_pipeline_on_one_connection() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let app = unique("shared_pipeline");
        let pool = shared_pool(&pg, &app, 1).await;
        let (barrier, tasks) = borrowers(&pool, 50, |i, conn| async move {
            let i = i32::try_from(i).unwrap();
            let row = conn
                .query_one("SELECT $1::int * 2, pg_backend_pid()", &[&i])
                .await
                .expect("a pipelined statement");
            assert_eq!(row.get::<_, i32>(0), i * 2);
            row.get::<_, i32>(1)
        });
        barrier.wait().await;
        // All 50 hold a handle now, on the one connection.
        assert_eq!(pool.state().open, 1);
        assert_eq!(pool.state().counters.dials, 1);
        let mut pids = BTreeSet::new();
        for task in tasks {
            pids.insert(task.await.unwrap());
        }
        assert_eq!(pids.len(), 1, "{pids:?}");
        pool.close().await;
    })
    .await;
}

/// 50 borrowers of one connection ask for the same uncached statement at
/// once: one `Parse` (one statement on the server, one cache miss), and
/// every borrower runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_statement_cache_prepares_once_per_connection() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let app = unique("shared_cache");
        let pool = shared_pool(&pg, &app, 1).await;
        let (barrier, tasks) = borrowers(&pool, 50, |i, conn| async move {
            let statement = conn.prepare_cached("SELECT $1::int + 1").await.unwrap();
            let i = i32::try_from(i).unwrap();
            let row = conn.query_one(&statement, &[&i]).await.unwrap();
            assert_eq!(row.get::<_, i32>(0), i + 1);
        });
        barrier.wait().await;
        for task in tasks {
            task.await.unwrap();
        }
        let conn = pool.get().await.unwrap();
        assert_eq!(conn.statements_prepared(), 1);
        assert_eq!(conn.cached_statements(), 1);
        assert_eq!(server_statements(&conn).await.len(), 1);
        drop(conn);
        pool.close().await;
    })
    .await;
}

/// A connection killed on the server (`pg_terminate_backend`) while 10
/// borrowers have statements in flight on it fails every one of them, with
/// the server's words or `connection closed`; it is closed as broken and
/// the next borrower gets a new session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_connection_fails_its_borrowers_and_is_replaced() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let app = unique("shared_killed");
        let pool = shared_pool(&pg, &app, 2).await;
        let admin = pg.client().await;
        let first = pool.get().await.unwrap();
        let pid = backend_pid(&first).await.unwrap();

        let (barrier, tasks) = borrowers(&pool, 10, |_, conn| async move {
            conn.query_one("SELECT 1 FROM pg_sleep(30)", &[]).await
        });
        barrier.wait().await;
        wait_for("the statement to run on the server", || async {
            let row = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep%'",
                    &[&pid],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0) == 1
        })
        .await;
        let killed: bool = admin
            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .unwrap()
            .get(0);
        assert!(killed);

        for task in tasks {
            let error = task
                .await
                .unwrap()
                .expect_err("a statement on a killed session");
            let said = error;
            assert!(
                said.code() == Some(&SqlState::ADMIN_SHUTDOWN)
                    || said.driver().is_some_and(|e| e.is_closed()),
                "{said}"
            );
            assert!(
                said.to_string().contains("terminating connection")
                    || said.to_string() == "connection closed",
                "{said}"
            );
        }
        wait_for("the client to see its connection gone", || async {
            first.is_closed()
        })
        .await;
        drop(first);

        let conn = pool.get().await.unwrap();
        let new_pid = backend_pid(&conn).await.unwrap();
        assert_ne!(new_pid, pid);
        assert_eq!(pool.state().counters.closed_broken, 1);
        drop(conn);
        pool.close().await;
    })
    .await;
}

/// While a borrower holds a transaction on a shared session, a new
/// borrower gets another connection when the pool may open one, so its
/// statements do not wait for the whole transaction; at the cap, it joins
/// the busy session (and its statement runs once the transaction ends)
/// rather than wait for a connection that cannot come.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_in_a_transaction_takes_no_new_borrower_while_another_can_open() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let pool = shared_pool(&pg, &unique("busy"), 2).await;
        let mut holder = pool.get().await.unwrap();
        let holder_pid = backend_pid(&holder).await.unwrap();
        let tx = holder.transaction().await.unwrap();
        tx.execute("SELECT 1", &[]).await.unwrap();
        let other = pool.get().await.unwrap();
        let other_pid =
            tokio::time::timeout(std::time::Duration::from_secs(5), backend_pid(&other))
                .await
                .expect("a statement of another borrower waited for the transaction")
                .unwrap();
        assert_ne!(other_pid, holder_pid);
        let state = pool.state();
        assert_eq!((state.open, state.borrowers), (2, 2), "{state:?}");
        tx.commit().await.unwrap();
        drop((holder, other));
        pool.close().await;

        // At the cap: the busy session is the only one there can be.
        let pool = shared_pool(&pg, &unique("busy_at_cap"), 1).await;
        let mut holder = pool.get().await.unwrap();
        let holder_pid = backend_pid(&holder).await.unwrap();
        let tx = holder.transaction().await.unwrap();
        let other = connpool::Pooled::into_owned(pool.get().await.unwrap());
        let state = pool.state();
        assert_eq!((state.open, state.borrowers), (1, 2), "{state:?}");
        let pid = tokio::spawn(async move { backend_pid(&other).await.unwrap() });
        tx.commit().await.unwrap();
        assert_eq!(pid.await.unwrap(), holder_pid);
        drop(holder);
        pool.close().await;
    })
    .await;
}

/// A write refused as read-only (`25006`, what a demoted primary answers)
/// on a shared session says its server changed, as on a session lent
/// exclusively: at its borrower's return the key is cleared, and the next
/// borrower gets a new session. (The role's sessions start read-only
/// until the test resets it, as a standby's would until its promotion.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_refused_as_read_only_clears_the_key() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        const ROLE: &str = "connpool_shared_read_only";
        let admin = pg.client().await;
        admin
            .batch_execute(&format!(
                "DO $$BEGIN CREATE ROLE {ROLE} LOGIN; \
                 EXCEPTION WHEN duplicate_object THEN NULL; END$$; \
                 ALTER ROLE {ROLE} SET default_transaction_read_only = on; \
                 CREATE TABLE IF NOT EXISTS {ROLE} (id int); \
                 GRANT INSERT ON {ROLE} TO {ROLE}"
            ))
            .await
            .unwrap();
        let mut config = pg.config();
        config
            .user(ROLE)
            .application_name(unique("shared_read_only"));
        let pool = Pool::builder(PostgresManager::new(config).shared(64).single())
            .max_open(2)
            .build()
            .await
            .unwrap();
        let first = pool.get().await.unwrap();
        let pid = backend_pid(&first).await.unwrap();
        let refused = first
            .execute(&format!("INSERT INTO {ROLE} VALUES (1)"), &[])
            .await
            .expect_err("a write in a read-only session");
        assert_eq!(refused.code(), Some(&SqlState::READ_ONLY_SQL_TRANSACTION));
        admin
            .batch_execute(&format!(
                "ALTER ROLE {ROLE} RESET default_transaction_read_only"
            ))
            .await
            .unwrap();
        drop(first);
        let state = pool.state();
        assert_eq!(
            (state.counters.key_clears, state.counters.closed_broken),
            (1, 1),
            "{state:?}"
        );

        let conn = pool.get().await.unwrap();
        assert_ne!(backend_pid(&conn).await.unwrap(), pid);
        conn.execute(&format!("INSERT INTO {ROLE} VALUES (2)"), &[])
            .await
            .expect("a write on the new session");
        drop(conn);
        pool.close().await;
    })
    .await;
}
