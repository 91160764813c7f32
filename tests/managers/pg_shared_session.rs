//! A shared PostgreSQL connection's session never carries one borrower's
//! state into another's statements, against a real server: every
//! session-changing statement is refused outside a transaction (nothing
//! sent), and in a transaction, for every pair of (session-changing
//! statement, way the transaction ends), a write another borrower sends
//! while it is open is neither lost nor run inside it, and no setting,
//! role, listen, temporary table, prepared statement, lock or cursor is
//! left for the next statement.
//!
//! The other borrower's write is polled once while the transaction is open:
//! tokio-postgres sends a prepared statement's request on that first poll,
//! so a handle that did not hold it back would put it in the transaction.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

use connpool::managers::postgres::{PgError, SharedPgConnection};
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::pg_shared::{Shared, shared_pool};
use super::postgres::{bounded, unique};
use crate::support;

/// Statements that change the session (and one of each kind of
/// transaction control), `{}` replaced by a unique name.
const CHANGES: &[&str] = &[
    "SET TimeZone = 'Asia/Tokyo'",
    "SET search_path = pg_catalog",
    "SELECT set_config('statement_timeout', '1234', false)",
    "SET ROLE pg_monitor",
    "LISTEN {}",
    "CREATE TEMP TABLE {} (id int)",
    "PREPARE {} AS SELECT 1",
    "SELECT pg_advisory_lock(4242)",
    "DECLARE {} CURSOR WITH HOLD FOR SELECT 1",
    "DO $$BEGIN PERFORM set_config('TimeZone', 'UTC+3', false); END$$",
    "SAVEPOINT {}",
    "COMMIT; BEGIN",
];

/// Everything about a session a borrower's statement could run under.
const FINGERPRINT: &str = "SELECT concat_ws(' | ', current_setting('TimeZone'), \
     current_setting('search_path'), current_setting('statement_timeout'), current_user, \
     (SELECT count(*) FROM pg_listening_channels()), \
     (SELECT count(*) FROM pg_prepared_statements WHERE from_sql), \
     (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()), \
     (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()), \
     (SELECT count(*) FROM pg_cursors), \
     pg_current_xact_id_if_assigned())";

#[derive(Debug, Clone, Copy)]
enum End {
    Commit,
    Rollback,
    Drop,
}

async fn fingerprint(conn: &SharedPgConnection) -> String {
    conn.query_one(FINGERPRINT, &[])
        .await
        .expect("the fingerprint query")
        .get(0)
}

async fn rows(admin: &Client, table: &str, id: i32) -> i64 {
    admin
        .query_one(
            &format!("SELECT count(*) FROM {table} WHERE id = $1"),
            &[&id],
        )
        .await
        .unwrap()
        .get(0)
}

/// A table of `id`s, and a pool of one connection lent shared.
async fn setup(pg: &support::pg::PgServer, tag: &str) -> (Client, String, Shared) {
    let admin = pg.client().await;
    let table = unique(tag);
    admin
        .batch_execute(&format!("CREATE TABLE {table} (id int)"))
        .await
        .unwrap();
    let pool = shared_pool(pg, &unique(tag), 1).await;
    (admin, table, pool)
}

/// Each session-changing statement, sent outside a transaction through
/// every method that takes SQL, is refused with an error that names it,
/// and the session is as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_changing_statements_are_refused_and_never_sent() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let (_admin, _table, pool) = setup(&pg, "shared_refused").await;
        let conn = pool.get().await.unwrap();
        let before = fingerprint(&conn).await;
        for change in CHANGES
            .iter()
            .chain(&["BEGIN", "DEALLOCATE ALL", "DISCARD ALL"])
        {
            let sql = change.replace("{}", &unique("x"));
            let keyword = sql
                .split(|c: char| c.is_whitespace() || c == ';')
                .next()
                .unwrap()
                .to_uppercase();
            let refusals: [Result<(), PgError>; 6] = [
                conn.batch_execute(&sql).await,
                conn.simple_query(&sql).await.map(drop),
                conn.execute(sql.as_str(), &[]).await.map(drop),
                conn.query(sql.as_str(), &[]).await.map(drop),
                conn.prepare(&sql).await.map(drop),
                conn.prepare_cached(&sql).await.map(drop),
            ];
            for refused in refusals {
                let e = refused.expect_err(&sql);
                assert!(e.is_unshareable(), "{sql}: {e}");
                assert!(e.to_string().contains(&format!("`{keyword}`")), "{e}");
            }
            assert_eq!(fingerprint(&conn).await, before, "after {sql}");
        }
        drop(conn);
        pool.close().await;
    })
    .await;
}

/// For every session-changing statement and every way a transaction
/// ends: another borrower's write sent while the transaction is open runs
/// after it, outside it (never lost to its rollback), the transaction's
/// own write is committed or not as it ended, and the session the next
/// statements run in is the one before the transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_write_is_lost_and_no_state_outlives_a_transaction() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let (admin, table, pool) = setup(&pg, "shared_pairs").await;
        let mut a = pool.get().await.unwrap();
        let b = pool.get().await.unwrap();
        assert_eq!(pool.state().open, 1, "both on one connection");
        let insert = b
            .prepare(&format!("INSERT INTO {table} VALUES ($1)"))
            .await
            .unwrap();
        let clean = fingerprint(&b).await;
        let mut id = 0;
        for change in CHANGES {
            for end in [End::Commit, End::Rollback, End::Drop] {
                id += 2;
                let (theirs, ours) = (id, id + 1);
                let sql = change.replace("{}", &unique("x"));
                let case = format!("{sql} then {end:?}");

                let tx = a.transaction().await.unwrap();
                tx.execute(&format!("INSERT INTO {table} VALUES ($1)"), &[&ours])
                    .await
                    .unwrap();
                tx.batch_execute(&sql).await.expect(&case);
                let params: [&(dyn ToSql + Sync); 1] = [&theirs];
                let mut write = pin!(b.execute(&insert, &params));
                let first = poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
                assert!(
                    first.is_pending(),
                    "{case}: the other borrower's write waits"
                );
                match end {
                    End::Commit => tx.commit().await.expect(&case),
                    End::Rollback => tx.rollback().await.expect(&case),
                    End::Drop => drop(tx),
                }
                assert_eq!(write.await.expect(&case), 1, "{case}");

                assert_eq!(rows(&admin, &table, theirs).await, 1, "{case}: theirs kept");
                // `COMMIT; BEGIN` committed it before the transaction ended.
                let committed = matches!(end, End::Commit) || sql.starts_with("COMMIT");
                assert_eq!(
                    rows(&admin, &table, ours).await,
                    i64::from(committed),
                    "{case}: ours as the transaction ended"
                );
                assert_eq!(fingerprint(&b).await, clean, "{case}: the session after");
            }
        }
        drop((a, b));
        pool.close().await;
    })
    .await;
}

/// In a transaction, a statement that would deallocate the borrowers'
/// prepared statements is refused, and so is preparing one that changes
/// the session (the statement would outlive the transaction); the
/// transaction goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_keeps_the_borrowers_statements() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let (_admin, _table, pool) = setup(&pg, "shared_forgets").await;
        let mut conn = pool.get().await.unwrap();
        let cached = conn.prepare_cached("SELECT 1 + $1::int").await.unwrap();
        let tx = conn.transaction().await.unwrap();
        for sql in ["DEALLOCATE ALL", "SELECT 1; DISCARD PLANS"] {
            let e = tx.batch_execute(sql).await.expect_err(sql);
            assert!(e.is_unshareable(), "{e}");
            assert!(e.to_string().contains("deallocate"), "{e}");
        }
        let e = tx.prepare_cached("SET TimeZone = 'UTC'").await.unwrap_err();
        assert!(
            e.is_unshareable() && e.to_string().contains("prepared"),
            "{e}"
        );
        tx.batch_execute("SET TimeZone = 'Asia/Tokyo'")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let row = conn.query_one(&cached, &[&1_i32]).await.unwrap();
        assert_eq!(
            row.get::<_, i32>(0),
            2,
            "the cached statement survived the reset"
        );
        drop(conn);
        pool.close().await;
    })
    .await;
}
