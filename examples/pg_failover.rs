//! A PostgreSQL switchover under 16 writers, as each client lives it:
//! connpool (`PostgresManager`, its defaults), deadpool-postgres, bb8 and
//! sqlx's `PgPool` (pools of 16, their defaults), each with a primary and
//! a streaming standby of its own (`pg_basebackup -R`). The client reaches
//! the primary through one address (a proxy, as a VIP or a DNS name). The
//! switchover is Patroni's: the primary stopped (`-m fast`), the standby
//! promoted, the old primary started again as a standby of the new one;
//! the address stays on the old primary, up read-only, for a second (a DNS
//! cache not expired yet), then moves to the new one.
//!
//! Each writer inserts the next id under a 1 s deadline, 10 ms of pause
//! after a failure. The table: writes acknowledged, failed, how long after
//! the move writes resumed, the client's sessions left on the demoted
//! server at the end, and acknowledged writes missing from the new
//! primary.
//!
//! A second table: the same switchover with a multi-host string
//! (`host=primary,standby`) and no `target_session_attrs`, the old
//! primary, first in the string, up again as a standby: connpool,
//! deadpool-postgres and bb8 (sqlx takes one host), five runs each
//! (`--runs N`), and the dials connpool made from the switchover on.
//!
//! ```text
//! cargo run --release --features postgres --example pg_failover
//! ```

#[path = "support/movable.rs"]
mod movable;
#[path = "support/pg_server.rs"]
mod pg_support;
#[path = "support/writers.rs"]
mod writers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bb8_postgres::PostgresConnectionManager;
use connpool::Pool;
use connpool::managers::postgres::PostgresManager;
use movable::Movable;
use pg_support::PgServer;
use tokio_postgres::NoTls;
use writers::{BoxError, DEADLINE, WRITERS, Write, Writers};

const APP: &str = "failover-writers";
const CLIENTS: [&str; 4] = [
    "connpool",
    "deadpool-postgres",
    "bb8-postgres",
    "sqlx PgPool",
];

fn main() -> Result<(), BoxError> {
    writers::main(run())
}

async fn run() -> Result<(), BoxError> {
    let runs: usize = match std::env::args().skip_while(|a| a != "--runs").nth(1) {
        Some(n) => n.parse()?,
        None => 5,
    };
    println!(
        "PostgreSQL switchover, the address left 1 s on the old primary (up read-only), then moved \
         ({WRITERS} writers, each insert under a {DEADLINE:?} deadline)\n"
    );
    println!(
        "| client | acknowledged | failed | writes resumed after the move | sessions left on the demoted server | acknowledged writes lost |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for name in CLIENTS {
        let row = switchover(name).await?;
        println!("| {name} | {row} |");
    }
    println!(
        "\nThe same switchover through `host=primary,standby` without target_session_attrs \
         ({runs} runs each)\n"
    );
    println!(
        "| client | run | acknowledged | failed | writes resumed after the promotion | sessions left on the demoted server | acknowledged writes lost | dials from the switchover on |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for name in &CLIENTS[..3] {
        for run in 1..=runs {
            let row = multi_host(name).await?;
            println!("| {name} | {run} | {row} |");
        }
    }
    Ok(())
}

/// One client's run, as its table row.
async fn switchover(name: &str) -> Result<String, BoxError> {
    let (primary, standby) = primary_and_standby().await?;
    let proxy = Movable::start(addr(&primary)).await?;
    let insert = client(name, proxy.addr).await?;

    let writers = Writers::start(&insert);
    tokio::time::sleep(Duration::from_millis(500)).await;
    switch_over(&primary, &standby).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.move_to(addr(&standby));
    let moved = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (acked, failed) = writers.stop().await;
    let (left, lost) = settle(&acked, &standby, &primary).await?;
    Ok(format!(
        "{} | {failed} | {} | {left} | {lost}",
        acked.len(),
        resumed(&acked, moved)
    ))
}

/// One client's run through a multi-host string without
/// `target_session_attrs`, as its table row (without the client's name
/// and the run's number).
async fn multi_host(name: &str) -> Result<String, BoxError> {
    let (primary, standby) = primary_and_standby().await?;
    let mut config = primary.config();
    config
        .application_name(APP)
        .host("127.0.0.1")
        .port(addr(&standby).port());
    let (insert, dials) = client_for(name, config).await?;

    let writers = Writers::start(&insert);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = dials.as_ref().map(|d| d());
    let promoted = switch_over(&primary, &standby).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (acked, failed) = writers.stop().await;
    let dials = match (dials, before) {
        (Some(d), Some(before)) => (d() - before).to_string(),
        _ => "—".to_owned(),
    };
    let (left, lost) = settle(&acked, &standby, &primary).await?;
    Ok(format!(
        "{} | {failed} | {} | {left} | {lost} | {dials}",
        acked.len(),
        resumed(&acked, promoted)
    ))
}

/// A dedicated primary with the table, and its standby.
async fn primary_and_standby() -> Result<(Arc<PgServer>, Arc<PgServer>), BoxError> {
    let primary = tokio::task::spawn_blocking(pg_support::dedicated)
        .await?
        .ok_or("no PostgreSQL (`apt-get install postgresql`)")?;
    primary
        .client()
        .await
        .batch_execute("CREATE TABLE failover (id bigint PRIMARY KEY)")
        .await?;
    let standby = Arc::new({
        let primary = Arc::clone(&primary);
        tokio::task::spawn_blocking(move || primary.standby()).await?
    });
    Ok((primary, standby))
}

/// Patroni's switchover: `primary` stopped, `standby` promoted, the old
/// primary started again as a standby of the new one. The instant of the
/// promotion.
async fn switch_over(
    primary: &Arc<PgServer>,
    standby: &Arc<PgServer>,
) -> Result<Instant, BoxError> {
    let (old, new) = (Arc::clone(primary), Arc::clone(standby));
    tokio::task::spawn_blocking(move || {
        old.stop();
        new.promote();
    })
    .await?;
    let promoted = Instant::now();
    let (old, new) = (Arc::clone(primary), Arc::clone(standby));
    tokio::task::spawn_blocking(move || old.start_as_standby_of(&new)).await?;
    Ok(promoted)
}

/// How long after `from` the first write was acknowledged.
fn resumed(acked: &[(u64, Instant)], from: Instant) -> String {
    acked
        .iter()
        .map(|&(_, at)| at)
        .filter(|&at| at > from)
        .min()
        .map_or("never".to_owned(), |at| format!("{:.0?}", at - from))
}

/// Sessions of the writers left on `demoted`, and acknowledged writes
/// missing from `primary`.
async fn settle(
    acked: &[(u64, Instant)],
    primary: &PgServer,
    demoted: &PgServer,
) -> Result<(i64, i64), BoxError> {
    let ids: Vec<i64> = acked.iter().map(|&(id, _)| id as i64).collect();
    let found: i64 = primary
        .client()
        .await
        .query_one("SELECT count(*) FROM failover WHERE id = ANY($1)", &[&ids])
        .await?
        .get(0);
    let left: i64 = demoted
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&APP],
        )
        .await?
        .get(0);
    Ok((left, ids.len() as i64 - found))
}

/// How many dials a client made so far, where it says.
type Dials = Box<dyn Fn() -> u64 + Send>;

/// The client `name`'s insert, through the address `at`.
async fn client(name: &str, at: SocketAddr) -> Result<Write, BoxError> {
    let config = pg_support::through(at, APP);
    if name == "sqlx PgPool" {
        let url = format!(
            "postgresql://postgres@127.0.0.1:{}/postgres?application_name={APP}",
            at.port()
        );
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(16)
            .connect(&url)
            .await?;
        return Ok(Arc::new(move |id| {
            let (pool, id) = (pool.clone(), id as i64);
            Box::pin(async move {
                sqlx::query("INSERT INTO failover (id) VALUES ($1)")
                    .bind(id)
                    .execute(&pool)
                    .await?;
                Ok(())
            })
        }));
    }
    Ok(client_for(name, config).await?.0)
}

/// The client `name`'s insert (connpool, deadpool-postgres or bb8) with
/// `config`, and its dial count if it keeps one.
async fn client_for(
    name: &str,
    config: tokio_postgres::Config,
) -> Result<(Write, Option<Dials>), BoxError> {
    const SQL: &str = "INSERT INTO failover (id) VALUES ($1)";
    let insert: Write = match name {
        "connpool" => {
            let pool = Pool::builder(PostgresManager::new(config).single())
                .max_open(16)
                .build()
                .await?;
            let counted = pool.clone();
            let dials: Dials = Box::new(move || counted.state().counters.dials);
            let insert: Write = Arc::new(move |id| {
                let (pool, id) = (pool.clone(), id as i64);
                Box::pin(async move {
                    pool.get().await?.execute(SQL, &[&id]).await?;
                    Ok(())
                })
            });
            return Ok((insert, Some(dials)));
        }
        "deadpool-postgres" => {
            let manager = deadpool_postgres::Manager::new(config, NoTls);
            let pool = deadpool_postgres::Pool::builder(manager)
                .max_size(16)
                .build()?;
            Arc::new(move |id| {
                let (pool, id) = (pool.clone(), id as i64);
                Box::pin(async move {
                    pool.get().await?.execute(SQL, &[&id]).await?;
                    Ok(())
                })
            })
        }
        _ => {
            let manager = PostgresConnectionManager::new(config, NoTls);
            let pool = bb8::Pool::builder().max_size(16).build(manager).await?;
            Arc::new(move |id| {
                let (pool, id) = (pool.clone(), id as i64);
                Box::pin(async move {
                    pool.get().await?.execute(SQL, &[&id]).await?;
                    Ok(())
                })
            })
        }
    };
    Ok((insert, None))
}

fn addr(server: &PgServer) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.config().get_ports()[0]))
}
