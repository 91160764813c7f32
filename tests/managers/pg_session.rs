//! PostgreSQL session state between borrowers (`--features postgres`): what
//! each `RecyclingMethod` lets through, `after_connect` surviving a reset,
//! a transaction left open, and the statement cache.
//!
//! Every pool has `max_open(1)`, so the next borrower gets the same session
//! (checked by its backend pid) unless the recycle closed it. Each kind of
//! state is planted by one borrower and looked for by the next, and an
//! advisory lock also from another session (`pg_locks`): under `Clean`
//! none of it is there, under `Fast` all of it is (so the checks can fail).
//! Server as in `postgres`; `CI=true` makes a missing server fail.

use connpool::managers::postgres::{
    CLEAN_WITHOUT_DISCARD, PgConnection, PgError, RecyclingMethod, SingleDatabase,
};
use connpool::{HookFuture, Pool};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::postgres::{backend_pid, bounded, manager, recycled, unique};
use crate::support;
use crate::support::pg::PgServer;

/// Key of the advisory lock a borrower takes (low 32 bits in `pg_locks.objid`).
const LOCK: i64 = 0x00c0_ffee;

/// What the second borrower found of the first one's session.
#[derive(Debug, PartialEq, Eq)]
struct Found {
    same_session: bool,
    search_path: bool,
    temp_table: bool,
    advisory_lock: bool,
    listen: bool,
    prepared: bool,
}

impl Found {
    fn all(found: bool) -> Found {
        Found {
            same_session: true,
            search_path: found,
            temp_table: found,
            advisory_lock: found,
            listen: found,
            prepared: found,
        }
    }
}

async fn pool(pg: &PgServer, method: RecyclingMethod) -> Pool<SingleDatabase> {
    let manager = manager(pg, &unique("session")).with_recycling(method);
    Pool::builder(manager.single())
        .max_open(1)
        .build()
        .await
        .unwrap()
}

async fn one<T: tokio_postgres::types::FromSqlOwned>(conn: &Client, sql: &str) -> T {
    conn.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// A borrower plants every kind of session state; the next looks for it.
async fn what_reaches_the_next_borrower(pg: &PgServer, method: RecyclingMethod) -> Found {
    let pool = pool(pg, method).await;
    let admin = pg.client().await;
    let pid = {
        let conn = pool.get().await.unwrap();
        conn.batch_execute(&format!(
            "SET search_path = leaked, public; \
             CREATE TEMP TABLE leaked_t (x int); \
             SELECT pg_advisory_lock({LOCK}); \
             LISTEN leaked_channel; \
             PREPARE leaked_p AS SELECT 1"
        ))
        .await
        .unwrap();
        backend_pid(&conn).await.unwrap()
    };
    recycled(&pool).await;
    let locks: i64 = one(
        &admin,
        &format!(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND objid = {LOCK} AND pid = {pid}"
        ),
    )
    .await;
    let conn = pool.get().await.unwrap();
    let found = Found {
        same_session: backend_pid(&conn).await.unwrap() == pid,
        search_path: one::<String>(&conn, "SELECT current_setting('search_path')")
            .await
            .contains("leaked"),
        temp_table: one(&conn, "SELECT to_regclass('pg_temp.leaked_t') IS NOT NULL").await,
        advisory_lock: locks == 1,
        listen: one(
            &conn,
            "SELECT count(*) = 1 FROM pg_listening_channels() c WHERE c = 'leaked_channel'",
        )
        .await,
        prepared: one(
            &conn,
            "SELECT count(*) = 1 FROM pg_prepared_statements WHERE name = 'leaked_p'",
        )
        .await,
    };
    drop(conn);
    pool.close().await;
    found
}

#[tokio::test]
async fn clean_lets_no_session_state_through() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        for method in [
            RecyclingMethod::Clean,
            RecyclingMethod::Custom(CLEAN_WITHOUT_DISCARD.into()),
        ] {
            let found = what_reaches_the_next_borrower(&pg, method.clone()).await;
            assert_eq!(found, Found::all(false), "{method:?}");
        }
        assert_eq!(
            RecyclingMethod::default(),
            RecyclingMethod::Clean,
            "the default is the safe one"
        );
    })
    .await;
}

#[tokio::test]
async fn fast_and_verified_let_all_of_it_through() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        for method in [RecyclingMethod::Fast, RecyclingMethod::Verified] {
            let found = what_reaches_the_next_borrower(&pg, method.clone()).await;
            assert_eq!(found, Found::all(true), "{method:?}");
        }
    })
    .await;
}

/// A `SET` made by `after_connect` is made again after `DISCARD ALL`; one
/// made by a borrower is not.
#[tokio::test]
async fn after_connect_survives_the_reset() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        fn hook<'a>(conn: &'a mut PgConnection, _: &'a ()) -> HookFuture<'a, PgError> {
            Box::pin(async move { Ok(conn.batch_execute("SET search_path = hooked").await?) })
        }
        let pool = Pool::builder(manager(&pg, &unique("hooked")).single())
            .max_open(1)
            .after_connect(hook)
            .build()
            .await
            .unwrap();
        for _ in 0..2 {
            let conn = pool.get().await.unwrap();
            let path: String = one(&conn, "SELECT current_setting('search_path')").await;
            assert_eq!(path, "hooked");
            conn.batch_execute("SET search_path = borrower")
                .await
                .unwrap();
        }
        assert_eq!(pool.state().counters.dials, 1, "one session throughout");
        pool.close().await;
    })
    .await;
}

/// A hook refuses a session for a reason of its own: the get fails with
/// that reason in its message, and nothing of the driver's.
#[tokio::test]
async fn a_hook_fails_with_its_own_reason() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        fn hook<'a>(conn: &'a mut PgConnection, _: &'a ()) -> HookFuture<'a, PgError> {
            Box::pin(async move {
                let row = conn.query_one("SELECT pg_is_in_recovery()", &[]).await?;
                match row.get::<_, bool>(0) {
                    true => Ok(()),
                    false => Err(PgError::new("a primary, and this pool reads from replicas")),
                }
            })
        }
        let pool = Pool::builder(manager(&pg, &unique("refused")).single())
            .after_connect(hook)
            .no_backoff()
            .build()
            .await
            .unwrap();
        let e = pool.get().await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "connect failed: a primary, and this pool reads from replicas"
        );
        let pg_error = e.manager_error().expect("the hook's error");
        assert!(pg_error.driver().is_none() && pg_error.code().is_none());
        assert!(std::error::Error::source(&e).is_none());
        pool.close().await;
    })
    .await;
}

/// `DISCARD ALL` cannot run in a transaction block: a connection returned
/// in one is closed, and the next borrower gets a new session outside any
/// transaction.
#[tokio::test]
async fn a_transaction_left_open_closes_the_connection() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let pool = pool(&pg, RecyclingMethod::Clean).await;
        let pid = {
            let conn = pool.get().await.unwrap();
            conn.batch_execute("BEGIN; CREATE TEMP TABLE in_tx (x int)")
                .await
                .unwrap();
            backend_pid(&conn).await.unwrap()
        };
        recycled(&pool).await;
        let conn = pool.get().await.unwrap();
        assert_ne!(backend_pid(&conn).await.unwrap(), pid, "a new session");
        let in_tx: bool = one(&conn, "SELECT to_regclass('pg_temp.in_tx') IS NOT NULL").await;
        assert!(!in_tx);
        let c = pool.state().counters;
        assert_eq!((c.recycles, c.recycle_failures), (1, 1), "{c:?}");
        drop(conn);
        pool.close().await;
    })
    .await;
}

/// Prepared statements of this session (the protocol's, named `s<n>` by
/// tokio-postgres, and SQL's `PREPARE`).
/// (Simple protocol: the query itself prepares nothing.)
async fn server_statements(conn: &Client) -> Vec<String> {
    let messages = conn
        .simple_query("SELECT name FROM pg_prepared_statements")
        .await
        .unwrap();
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .collect()
}

/// A cache hit is the same statement, with no `Parse`: the session still
/// has the one prepared statement, under the same name. `Clean` empties the cache with the session;
/// `Fast` keeps both.
#[tokio::test]
async fn prepare_cached_hits_skip_the_parse_and_clean_empties_the_cache() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        const SQL: &str = "SELECT $1::int + 1";
        for (method, kept) in [
            (RecyclingMethod::Clean, false),
            (RecyclingMethod::Fast, true),
        ] {
            let pool = pool(&pg, method.clone()).await;
            let names = {
                let conn = pool.get().await.unwrap();
                let first = conn.prepare_cached(SQL).await.unwrap();
                let names = server_statements(&conn).await;
                assert_eq!(names.len(), 1, "{method:?}: {names:?}");
                let again = conn.prepare_cached(SQL).await.unwrap();
                assert_eq!(
                    conn.statement_cache().prepared(),
                    1,
                    "one Parse: {method:?}"
                );
                assert_eq!(server_statements(&conn).await, names, "{method:?}");
                let row = conn.query_one(&again, &[&41]).await.unwrap();
                assert_eq!(row.get::<_, i32>(0), 42);
                drop(first);
                names
            };
            recycled(&pool).await;
            let conn = pool.get().await.unwrap();
            assert_eq!(
                conn.statement_cache().len(),
                usize::from(kept),
                "{method:?}"
            );
            let left = server_statements(&conn).await;
            assert_eq!(left == names, kept, "{method:?}: {left:?}");
            assert_eq!(left.is_empty(), !kept, "{method:?}: {left:?}");
            let statement = conn.prepare_cached(SQL).await.unwrap();
            let prepared = if kept { 1 } else { 2 };
            assert_eq!(conn.statement_cache().prepared(), prepared, "{method:?}");
            assert_eq!(
                conn.query_one(&statement, &[&1])
                    .await
                    .unwrap()
                    .get::<_, i32>(0),
                2
            );
            drop(conn);
            pool.close().await;
        }
    })
    .await;
}
