//! A PostgreSQL server restarted under load (`pg_ctl stop -m fast`: every
//! session terminated, then down a second, then started again on its
//! port), as each client lives it, all at the same instant: connpool
//! (`PostgresManager`, its defaults), deadpool-postgres and sqlx's
//! `PgPool` (pools of 16, their defaults). Each client has a throwaway
//! server of its own behind a proxy of its own that counts the connections
//! it is asked for (those refused while the server is down included).
//!
//! Each client runs 8 tasks in a loop: `SELECT 1` under a 1 s deadline
//! (`tokio::time::timeout`), and 10 ms of pause after a failure. Prints
//! the same table as `redis_restart`.
//!
//! ```text
//! cargo run --release --features postgres --example pg_restart
//! cargo run --release --features postgres --example pg_restart -- --quick
//! ```

#[path = "support/pg_server.rs"]
mod pg_support;
#[path = "support/restart_load.rs"]
mod restart_load;

use std::sync::Arc;
use std::time::Instant;

use connpool::Pool;
use connpool::managers::postgres::PostgresManager;
use restart_load::{Args, BoxError, DEADLINE, Fault, Load, Proxy, Request, TASKS};
use tokio_postgres::NoTls;

fn main() -> Result<(), BoxError> {
    restart_load::main(|args, _| run(args))
}

async fn run(args: Args) -> Result<(), BoxError> {
    if args.fault != Fault::Restart {
        // A PostgreSQL server is many processes (a backend per session):
        // a freeze of them all is the tests' (`pg_deadline`), and so is a
        // partition (`reliability`'s `partition::`), not here.
        return Err("pg_restart stops and starts the server: `--fault restart` only".into());
    }
    let (warm, down, after) = args.phases();
    let names = ["connpool", "deadpool-postgres", "sqlx PgPool"];
    let mut servers = Vec::new();
    let mut proxies = Vec::new();
    for _ in names {
        let server = tokio::task::spawn_blocking(pg_support::dedicated)
            .await?
            .ok_or("no PostgreSQL to restart (`apt-get install postgresql`)")?;
        let port = server.config().get_ports()[0];
        proxies.push(Proxy::start(([127, 0, 0, 1], port).into()).await?);
        servers.push(server);
    }
    let config = |i: usize| {
        let mut config = servers[i].config();
        config.host("127.0.0.1").port(proxies[i].addr.port());
        config
    };

    let pool = Pool::builder(PostgresManager::new(config(0)).single())
        .max_open(16)
        .build()
        .await?;
    let deadpool =
        deadpool_postgres::Pool::builder(deadpool_postgres::Manager::new(config(1), NoTls))
            .max_size(16)
            .build()?;
    let sqlx = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect(&format!(
            "postgresql://postgres@127.0.0.1:{}/postgres",
            proxies[2].addr.port()
        ))
        .await?;
    let requests: Vec<Request> = vec![
        Arc::new(move || {
            let pool = pool.clone();
            Box::pin(async move {
                pool.get().await?.query_one("SELECT 1", &[]).await?;
                Ok(())
            })
        }),
        Arc::new(move || {
            let pool = deadpool.clone();
            Box::pin(async move {
                pool.get().await?.query_one("SELECT 1", &[]).await?;
                Ok(())
            })
        }),
        Arc::new(move || {
            let pool = sqlx.clone();
            Box::pin(async move {
                sqlx::query("SELECT 1").execute(&pool).await?;
                Ok(())
            })
        }),
    ];

    let loads: Vec<Load> = requests.into_iter().map(Load::start).collect();
    tokio::time::sleep(warm).await;
    let asked_before: Vec<usize> = proxies.iter().map(Proxy::asked).collect();
    let stopping = servers.clone();
    let killed = tokio::task::spawn_blocking(move || {
        let killed = Instant::now();
        std::thread::scope(|s| {
            for server in &stopping {
                s.spawn(|| server.stop());
            }
        });
        killed
    })
    .await?;
    tokio::time::sleep(down).await;
    let starting = servers.clone();
    let back = tokio::task::spawn_blocking(move || {
        std::thread::scope(|s| {
            for server in &starting {
                s.spawn(|| server.start());
            }
        });
        // Each start returns once its server accepts sessions.
        Instant::now()
    })
    .await?;
    tokio::time::sleep(after).await;

    println!(
        "PostgreSQL stopped under load ({TASKS} tasks per client, each SELECT 1 under a \
         {DEADLINE:?} deadline), down {down:?}, then {after:?} more"
    );
    let phases = (killed, back);
    restart_load::report(loads, &names, &proxies, &asked_before, phases, args.quick).await;
    Ok(())
}
