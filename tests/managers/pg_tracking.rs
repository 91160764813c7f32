//! A PostgreSQL session the manager tracks (`--features postgres`, the
//! default `RecyclingMethod::Clean`): borrowers that leave it as they found
//! it cost no reset, and `PgConnection::cancel_query` reaches it. Server as
//! in `postgres`; `CI=true` makes a missing server fail.

use connpool::managers::postgres::RecyclingMethod;

use super::pg_session::{one, pool};
use super::postgres::{backend_pid, bounded, recycled, unique};
use crate::support;

/// Under `Clean`, a workload that leaves the session as it found it
/// (prepared queries, DML, committed and rolled back transactions, `SHOW`)
/// runs no reset at all: every return takes the fast path. A borrower that
/// changes the session gets exactly one reset, and the next are free again.
#[tokio::test]
async fn a_clean_workload_runs_no_reset() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let pool = pool(&pg, RecyclingMethod::Clean).await;
        let table = unique("clean_workload");
        {
            let conn = pool.get().await.unwrap();
            conn.batch_execute(&format!("CREATE TABLE {table} (id int PRIMARY KEY, n int)"))
                .await
                .unwrap();
        }
        recycled(&pool).await;
        assert_eq!(pool.state().counters.recycles, 1, "the CREATE TABLE");
        for i in 0..20 {
            let mut conn = pool.get().await.unwrap();
            let select = conn.prepare_cached("SELECT $1::int * 2").await.unwrap();
            let row = conn.query_one(&select, &[&i]).await.unwrap();
            assert_eq!(row.get::<_, i32>(0), i * 2);
            conn.execute(
                &format!("INSERT INTO {table} VALUES ($1, 0)") as &str,
                &[&i],
            )
            .await
            .unwrap();
            let tx = conn.transaction().await.unwrap();
            tx.execute(
                &format!("UPDATE {table} SET n = n + 1 WHERE id = $1") as &str,
                &[&i],
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            let tx = conn.transaction().await.unwrap();
            tx.execute(&format!("DELETE FROM {table}") as &str, &[])
                .await
                .unwrap();
            drop(tx); // rolled back
            conn.batch_execute("BEGIN; SET LOCAL work_mem = '1MB'; SHOW work_mem; COMMIT")
                .await
                .unwrap();
            assert!(conn.is_session_clean());
            assert_eq!(conn.statements_prepared(), 1, "round {i}");
        }
        recycled(&pool).await;
        let c = pool.state().counters;
        assert_eq!(
            (c.dials, c.recycles),
            (1, 1),
            "no reset for clean borrowers: {c:?}"
        );
        {
            let conn = pool.get().await.unwrap();
            conn.batch_execute("SET work_mem = '2MB'").await.unwrap();
            assert!(!conn.is_session_clean());
        }
        recycled(&pool).await;
        for _ in 0..3 {
            let conn = pool.get().await.unwrap();
            let work_mem: String = one(&conn, "SHOW work_mem").await;
            assert_ne!(work_mem, "2MB");
        }
        recycled(&pool).await;
        let c = pool.state().counters;
        assert_eq!(
            (c.dials, c.recycles),
            (1, 2),
            "one reset for the SET: {c:?}"
        );
        pool.get()
            .await
            .unwrap()
            .batch_execute(&format!("DROP TABLE {table}"))
            .await
            .unwrap();
        pool.close().await;
    })
    .await;
}

/// `PgConnection::cancel_query` cancels a running statement on a session
/// the manager dialed itself (tracked, plaintext), where tokio-postgres's
/// own `cancel_token().cancel_query(NoTls)` does not know the address; the
/// connection then serves the next borrower.
#[tokio::test]
async fn cancel_query_reaches_a_tracked_session() {
    use tokio_postgres::error::SqlState;
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let pool = pool(&pg, RecyclingMethod::Clean).await;
        let conn = pool.get().await.unwrap();
        assert!(conn.is_session_clean(), "tracked");
        assert!(
            conn.cancel_token()
                .cancel_query(tokio_postgres::NoTls)
                .await
                .is_err(),
            "tokio-postgres cannot reach a socket it did not open"
        );
        let pid = backend_pid(&conn).await.unwrap();
        let admin = pg.client().await;
        let sleeping = conn.simple_query("SELECT pg_sleep(60)");
        let cancel = async {
            super::postgres::wait_for("the statement running", || async {
                let state: Option<String> = admin
                    .query_one("SELECT query FROM pg_stat_activity WHERE pid = $1", &[&pid])
                    .await
                    .unwrap()
                    .get(0);
                state.is_some_and(|q| q.contains("pg_sleep(60)"))
            })
            .await;
            conn.cancel_query().await.unwrap();
        };
        let (slept, ()) = tokio::join!(sleeping, cancel);
        let err = slept.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
        drop(conn);
        let conn = pool.get().await.unwrap();
        assert_eq!(one::<i32>(&conn, "SELECT 7").await, 7);
    })
    .await;
}
