//! PostgreSQL session state between borrowers (`--features postgres`): what
//! each `RecyclingMethod` lets through, `after_connect` surviving a reset,
//! a transaction left open and the statement cache across borrowers
//! (sessions that cost no reset: `pg_tracking`).
//!
//! Every pool has `max_open(1)`, so the next borrower gets the same session
//! (checked by its backend pid). Each kind of state is planted alone by one
//! borrower (in a simple query, or through the extended protocol) and
//! looked for by the next: under `Clean` and `Always` none of it is there,
//! under `Fast` all of it is (so the checks can fail).
//! Server as in `postgres`; `CI=true` makes a missing server fail.

use connpool::Pool;
use connpool::Single;
use connpool::managers::postgres::{PgConnection, PgError, PostgresManager, RecyclingMethod};
use futures_util::future::BoxFuture;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::postgres::{backend_pid, bounded, manager, recycled, unique};
use crate::support;
use crate::support::pg::PgServer;

/// A role a borrower switches to (`SET ROLE`, `SET SESSION AUTHORIZATION`).
const ROLE: &str = "connpool_leaked_role";

/// How a borrower plants a kind of session state: in a simple query
/// (`batch_execute`) or through the extended protocol (`execute`: a
/// `Parse`, then a `Bind`).
#[derive(Debug, Clone, Copy)]
enum Plant {
    Simple(&'static str),
    Extended(&'static str),
}

/// Every kind of session state a borrower can leave, and a query of the
/// next borrower that is true if it is still there.
const KINDS: &[(&str, Plant, &str)] = &[
    (
        "SET",
        Plant::Simple("SET search_path = leaked, public"),
        "SELECT current_setting('search_path') LIKE '%leaked%'",
    ),
    (
        "SET, extended protocol",
        Plant::Extended("SET search_path = leaked, public"),
        "SELECT current_setting('search_path') LIKE '%leaked%'",
    ),
    (
        "set_config",
        Plant::Extended("SELECT set_config('search_path', 'leaked', false)"),
        "SELECT current_setting('search_path') LIKE '%leaked%'",
    ),
    (
        "temporary table",
        Plant::Simple("CREATE TEMP TABLE leaked_t (x int)"),
        "SELECT to_regclass('pg_temp.leaked_t') IS NOT NULL",
    ),
    (
        "SELECT INTO TEMP",
        Plant::Extended("SELECT 1 AS x INTO TEMP leaked_into"),
        "SELECT to_regclass('pg_temp.leaked_into') IS NOT NULL",
    ),
    (
        "advisory lock",
        Plant::Extended("SELECT pg_advisory_lock(12648430)"),
        "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    ),
    (
        "LISTEN",
        Plant::Simple("LISTEN leaked_channel"),
        "SELECT count(*) > 0 FROM pg_listening_channels() c WHERE c = 'leaked_channel'",
    ),
    (
        "PREPARE",
        Plant::Simple("PREPARE leaked_p AS SELECT 1"),
        "SELECT count(*) > 0 FROM pg_prepared_statements WHERE name = 'leaked_p'",
    ),
    (
        "cursor WITH HOLD",
        Plant::Simple("DECLARE leaked_c CURSOR WITH HOLD FOR SELECT 1"),
        "SELECT count(*) > 0 FROM pg_cursors WHERE name = 'leaked_c'",
    ),
    (
        "SET ROLE",
        Plant::Simple("SET ROLE connpool_leaked_role"),
        "SELECT current_user = 'connpool_leaked_role'",
    ),
    (
        "SET SESSION AUTHORIZATION",
        Plant::Simple("SET SESSION AUTHORIZATION connpool_leaked_role"),
        "SELECT session_user = 'connpool_leaked_role'",
    ),
    (
        "open transaction",
        Plant::Simple("BEGIN ISOLATION LEVEL SERIALIZABLE"),
        "SELECT current_setting('transaction_isolation') = 'serializable'",
    ),
    (
        "failed transaction",
        Plant::Simple("BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT 1 / 0"),
        "SELECT current_setting('transaction_isolation') = 'serializable'",
    ),
];

pub(super) async fn pool(pg: &PgServer, method: RecyclingMethod) -> Pool<Single<PostgresManager>> {
    let manager = manager(pg, &unique("session")).with_recycling(method);
    Pool::builder(manager.single())
        .max_open(1)
        .build()
        .await
        .unwrap()
}

pub(super) async fn one<T: tokio_postgres::types::FromSqlOwned>(conn: &Client, sql: &str) -> T {
    conn.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// For each kind of session state: a borrower plants it, the next (on
/// the same session) looks for it. The kinds it found (a probe that fails,
/// as in an aborted transaction, counts as found).
async fn what_reaches_the_next_borrower(
    pg: &PgServer,
    method: RecyclingMethod,
) -> Vec<&'static str> {
    let admin = pg.client().await;
    // Two tests make the role and grant it at once: the one that loses
    // the race sees `unique_violation`, not `duplicate_object`.
    admin
        .batch_execute(&format!(
            "DO $$BEGIN CREATE ROLE {ROLE}; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END$$; \
             DO $$BEGIN GRANT {ROLE} TO postgres; \
             EXCEPTION WHEN unique_violation THEN NULL; END$$"
        ))
        .await
        .unwrap();
    let mut found = Vec::new();
    for &(kind, plant, probe) in KINDS {
        let pool = pool(pg, method.clone()).await;
        let pid = {
            let conn = pool.get().await.unwrap();
            let pid = backend_pid(&conn).await.unwrap();
            let planted = match plant {
                Plant::Simple(sql) => conn.batch_execute(sql).await,
                Plant::Extended(sql) => conn.execute(sql, &[]).await.map(drop),
            };
            if kind != "failed transaction" {
                planted.unwrap_or_else(|e| panic!("{kind}: {e}"));
            }
            pid
        };
        recycled(&pool).await;
        let conn = pool.get().await.unwrap();
        // (Not in an aborted transaction, where no query runs.)
        if let Ok(again) = backend_pid(&conn).await {
            assert_eq!(again, pid, "{method:?}, {kind}: the same session");
        }
        let there = match conn.query_one(probe, &[]).await {
            Ok(row) => row.get::<_, bool>(0),
            Err(_) => true,
        };
        if there {
            found.push(kind);
        }
        drop(conn);
        pool.close().await;
    }
    found
}

#[tokio::test]
async fn clean_lets_no_session_state_through() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        for method in [RecyclingMethod::Clean, RecyclingMethod::Always] {
            let found = what_reaches_the_next_borrower(&pg, method.clone()).await;
            assert_eq!(found, Vec::<&str>::new(), "{method:?}");
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
        let all: Vec<&str> = KINDS.iter().map(|k| k.0).collect();
        for method in [RecyclingMethod::Fast, RecyclingMethod::Verified] {
            let found = what_reaches_the_next_borrower(&pg, method.clone()).await;
            assert_eq!(found, all, "{method:?}");
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
        fn hook<'a>(conn: &'a mut PgConnection, _: &'a ()) -> BoxFuture<'a, Result<(), PgError>> {
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
        fn hook<'a>(conn: &'a mut PgConnection, _: &'a ()) -> BoxFuture<'a, Result<(), PgError>> {
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

/// A connection returned inside a transaction block (open, or failed) is
/// rolled back and lent again: the next borrower gets the same session,
/// outside any transaction, without what the transaction did.
#[tokio::test]
async fn a_transaction_left_open_is_rolled_back() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        for (i, sql) in [
            "BEGIN; CREATE TEMP TABLE in_tx (x int)",
            "BEGIN; CREATE TEMP TABLE in_tx (x int); SELECT 1 / 0",
        ]
        .into_iter()
        .enumerate()
        {
            let pool = pool(&pg, RecyclingMethod::Clean).await;
            let pid = {
                let conn = pool.get().await.unwrap();
                assert_eq!(conn.batch_execute(sql).await.is_ok(), i == 0, "{sql}");
                backend_pid(&conn).await.ok()
            };
            recycled(&pool).await;
            let conn = pool.get().await.unwrap();
            let again = backend_pid(&conn).await.unwrap();
            if let Some(pid) = pid {
                assert_eq!(again, pid, "the same session");
            }
            let in_tx: bool = one(&conn, "SELECT to_regclass('pg_temp.in_tx') IS NOT NULL").await;
            assert!(!in_tx, "{sql}");
            conn.batch_execute("SAVEPOINT s")
                .await
                .expect_err("outside a transaction block");
            let c = pool.state().counters;
            assert_eq!(
                (c.dials, c.recycles, c.recycle_failures),
                (1, 1, 0),
                "{sql}: {c:?}"
            );
            drop(conn);
            pool.close().await;
        }
    })
    .await;
}

/// Prepared statements of this session (the protocol's, named `s<n>` by
/// tokio-postgres, and SQL's `PREPARE`).
/// (Simple protocol: the query itself prepares nothing.)
pub(crate) async fn server_statements(conn: &Client) -> Vec<String> {
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

/// Under `Clean` (and `Fast`) the statement cache survives the return and
/// hits across borrowers: one `Parse` for the pool's life, the server
/// session keeps the statement under the same name, also after a reset
/// (which deallocates the borrower's SQL `PREPARE` only). A `Custom`
/// recycle empties it with the session.
#[tokio::test]
async fn the_statement_cache_hits_across_borrowers() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        const SQL: &str = "SELECT $1::int + 1";
        for (method, kept) in [
            (RecyclingMethod::Clean, true),
            (RecyclingMethod::Fast, true),
            (RecyclingMethod::Custom("DISCARD ALL".into()), false),
        ] {
            let pool = pool(&pg, method.clone()).await;
            let names = {
                let conn = pool.get().await.unwrap();
                conn.prepare_cached(SQL).await.unwrap();
                server_statements(&conn).await
            };
            assert_eq!(names.len(), 1, "{method:?}: {names:?}");
            for round in 0..3 {
                let conn = pool.get().await.unwrap();
                let statement = conn.prepare_cached(SQL).await.unwrap();
                let row = conn.query_one(&statement, &[&41]).await.unwrap();
                assert_eq!(row.get::<_, i32>(0), 42);
                let prepared = conn.statements_prepared();
                assert_eq!(prepared == 1, kept, "{method:?}, round {round}: {prepared}");
                let left = server_statements(&conn).await;
                assert_eq!(left.contains(&names[0]), kept, "{method:?}: {left:?}");
                // Session state of the borrower's own: reset, unless Fast.
                conn.batch_execute(&format!(
                    "SET search_path = borrower; PREPARE mine_{round} AS SELECT 1"
                ))
                .await
                .unwrap();
                drop(conn);
                recycled(&pool).await;
                if method == RecyclingMethod::Clean {
                    let conn = pool.get().await.unwrap();
                    assert_eq!(
                        server_statements(&conn).await,
                        names,
                        "`mine_{round}` is gone"
                    );
                }
            }
            pool.close().await;
        }
    })
    .await;
}
