//! A PostgreSQL pool with the session set up on connect, reset on return,
//! and a prepared-statement cache, against the server of `DATABASE_URL` or
//! a throwaway one (PostgreSQL's binaries, `apt-get install postgresql`).
//!
//! ```text
//! cargo run --features postgres,metrics --example postgres
//! ```
//!
//! Two borrowers take turns on one connection. The first changes its
//! session (`SET search_path`, a temporary table); the pool's clean
//! recycle (the default) sees it and resets the session before the second
//! gets the connection, and the `after_connect` hook sets
//! `application_name` again. `prepare_cached` parses a statement once per
//! connection: the reset keeps the statement cache. Then a
//! borrower holds its connection past the leak-detection threshold, on
//! purpose, and the pool warns with the line of the `get` that took it;
//! last, the pool's metrics as a recorder saw them.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use connpool::Pool;
use connpool::managers::postgres::{PostgresManager, RecyclingMethod};
use metrics_util::debugging::DebuggingRecorder;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // The pool's warnings on stdout; its metrics into a recorder (installed
    // before the pool is built, which registers its series).
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_target(false)
        .with_ansi(false)
        .init();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install()?;

    let server = tokio::task::spawn_blocking(support::postgres).await??;
    println!("PostgreSQL: {}", server.describe());

    let manager = PostgresManager::new(server.config()).with_recycling(RecyclingMethod::Clean);
    let pool = Pool::builder(manager.single())
        .name("example")
        .max_open(1) // one session, so both borrowers share it
        .leak_detection_threshold(Duration::from_millis(200))
        // Every new session, and again after each reset.
        .after_connect(|conn, _key| {
            Box::pin(async move {
                conn.batch_execute("SET application_name = 'connpool-example'")
                    .await?;
                Ok(())
            })
        })
        .build()
        .await?;

    for borrower in 1..=2 {
        let conn = pool.get().await?;
        let row = conn
            .query_one(
                "SELECT current_setting('application_name'), current_setting('search_path'), \
                 to_regclass('pg_temp.scratch') IS NOT NULL",
                &[],
            )
            .await?;
        let (app, path, scratch): (String, String, bool) = (row.get(0), row.get(1), row.get(2));
        println!(
            "borrower {borrower}: application_name={app}, search_path={path}, temp table: {scratch}"
        );

        let sum = conn.prepare_cached("SELECT $1::int + $2::int").await?;
        for i in 0..3 {
            let row = conn.query_one(&sum, &[&i, &borrower]).await?;
            assert_eq!(row.get::<_, i32>(0), i + borrower);
        }
        let again = conn.prepare_cached("SELECT $1::int + $2::int").await?;
        conn.query_one(&again, &[&1, &1]).await?;
        // One parse per connection: the reset keeps the statement cache, so
        // the second borrower's statement is the first one's.
        println!(
            "borrower {borrower}: 4 queries; statements parsed on this connection so far: {}",
            conn.statements_prepared()
        );

        // Session state the next borrower must not see.
        conn.batch_execute("SET search_path = scratch_schema; CREATE TEMP TABLE scratch (x int)")
            .await?;
    } // the guard drops: the connection is recycled in the background

    // A borrower that keeps its connection too long: warned once.
    let held = pool.get().await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    drop(held);

    pool.close().await; // waits for the last recycle too
    let c = pool.state().counters;
    println!(
        "dials: {}, recycles: {} ({} failed)",
        c.dials, c.recycles, c.recycle_failures
    );
    println!("leaks reported: {}", c.leaks);
    println!("metrics:");
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        println!("  {} {{{}}} {value:?}", key.key().name(), labels.join(", "));
    }
    Ok(())
}
