//! Behind a real PgBouncer in transaction mode (`pool_mode = transaction`,
//! 8 server connections): 64 borrowers through a pool of
//! [`PostgresManager::transaction_pooling`] run 10,240 statements, typed
//! queries with parameters (an unnamed statement each), simple queries,
//! inserts, and transactions that prepare a named statement and run it,
//! with no error; the server never sees more than the pooler's 8
//! connections while the pool holds many more to the pooler.
//!
//! `CI=true` makes a missing PostgreSQL or PgBouncer a failure
//! (`support::pg`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use connpool::Pool;
use connpool::managers::postgres::PostgresManager;
use tokio::task::JoinSet;
use tokio_postgres::Config;
use tokio_postgres::types::Type;

use crate::support::pg;

const BORROWERS: usize = 64;
const ROUNDS: i32 = 160;
const SERVER_CONNECTIONS: usize = 8;

/// One round of borrower `task`: a statement of each of four kinds by
/// turn (`i % 4`), on a connection of its own from the pool.
async fn round(
    pool: &Pool<connpool::Single<PostgresManager>>,
    task: i32,
    i: i32,
) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let e = |e: tokio_postgres::Error| e.to_string();
    match i % 4 {
        0 => {
            let row = conn
                .query_typed_one("SELECT $1::int4 + 1", &[(&i, Type::INT4)])
                .await
                .map_err(e)?;
            if row.get::<_, i32>(0) != i + 1 {
                return Err("a wrong answer".into());
            }
        }
        1 => {
            conn.simple_query("SELECT 1").await.map_err(e)?;
        }
        2 => {
            conn.execute_typed(
                "INSERT INTO bounced (task, i) VALUES ($1, $2)",
                &[(&task, Type::INT4), (&i, Type::INT4)],
            )
            .await
            .map_err(e)?;
        }
        _ => {
            // A named statement lives as long as its transaction: one
            // server connection.
            let tx = conn.transaction().await.map_err(e)?;
            let statement = tx.prepare("SELECT $1::int4 * 2").await.map_err(e)?;
            let row = tx.query_one(&statement, &[&i]).await.map_err(e)?;
            if row.get::<_, i32>(0) != i * 2 {
                return Err("a wrong answer".into());
            }
            tx.commit().await.map_err(e)?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_borrowers_through_a_transaction_mode_pgbouncer() {
    let Some(server) = pg::dedicated() else {
        return;
    };
    server
        .client()
        .await
        .batch_execute("CREATE TABLE bounced (task int, i int)")
        .await
        .unwrap();
    let Some(bouncer) = server.bouncer(SERVER_CONNECTIONS) else {
        return;
    };
    let mut config = Config::new();
    config
        .host("127.0.0.1")
        .port(bouncer.port())
        .user("postgres")
        .dbname("postgres");
    let manager = PostgresManager::new(config).transaction_pooling();
    let pool = Pool::builder(manager.single())
        .max_open(BORROWERS)
        .build()
        .await
        .unwrap();

    let errors = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for task in 0..BORROWERS as i32 {
        let (pool, errors) = (pool.clone(), Arc::clone(&errors));
        tasks.spawn(async move {
            for i in 0..ROUNDS {
                if let Err(e) = round(&pool, task, i).await
                    && errors.fetch_add(1, Ordering::SeqCst) < 5
                {
                    eprintln!("task {task}, round {i}: {e}");
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let statements = BORROWERS * ROUNDS as usize;
    let state = pool.state();
    let server_side: i64 = server
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let inserted: i64 = server
        .client()
        .await
        .query_one("SELECT count(*) FROM bounced", &[])
        .await
        .unwrap()
        .get(0);
    println!(
        "{statements} statements from {BORROWERS} borrowers: {} errors; the pool held {} \
         connections to PgBouncer, the server {server_side} from it; {} resets",
        errors.load(Ordering::SeqCst),
        state.open,
        state.counters.recycles
    );
    assert_eq!(errors.load(Ordering::SeqCst), 0);
    assert_eq!(inserted as usize, statements / 4, "every insert landed");
    assert!(
        server_side as usize <= SERVER_CONNECTIONS,
        "{server_side} server connections"
    );
    assert!(
        state.open > SERVER_CONNECTIONS,
        "{} pool connections",
        state.open
    );
    assert_eq!(state.counters.recycles, 0, "no reset of the pool's");
    pool.close().await;
}
