//! The TechEmpower database workloads against PostgreSQL, through connpool
//! and the other Rust pools, same server, same run, same pool size.
//!
//! ```text
//! cargo run --release --features postgres --example techempower            # the full run
//! cargo run --release --features postgres --example techempower -- --quick # a few seconds (CI)
//! cargo run --release --features postgres --example techempower -- --workloads single,fortunes
//! cargo run --release --features postgres --example techempower -- --rounds 3 --seconds 3
//! ```
//!
//! The server is `DATABASE_URL`'s, else a throwaway PostgreSQL started for
//! the run (PostgreSQL's binaries: `apt-get install postgresql`), with
//! TechEmpower's schema: `world` (10,000 rows: `id`, `randomnumber`) and
//! `fortune` (its 12 rows). The workloads, as TechEmpower specifies them,
//! each request borrowing one connection:
//!
//! - **single**: one row of `world` by a random id;
//! - **queries**: 20 such rows (pipelined on the connection where the
//!   driver can: tokio-postgres; sqlx runs them one after another);
//! - **fortunes**: every row of `fortune`, one added, sorted by message,
//!   rendered as an HTML table;
//! - **updates**: 20 rows read (as in `queries`), each given a new random
//!   number, written back in one `UPDATE … FROM unnest(…)`.
//!
//! The pools: connpool with its default ([`RecyclingMethod::Clean`]), with
//! `Fast` (and, when asked for, `--pools connpool-always`, with `Always`:
//! a session reset after every return, and `--pools connpool-keyed`, the
//! default through a keyed pool's `get_for` with one key), and lent shared
//! ([`SharedPostgres`], up to 32 borrowers per connection, their
//! statements pipelined), deadpool-postgres with its
//! default (`Fast`), the reference, and a second deadpool-postgres pool
//! measured as any other (*deadpool-postgres again*: its ratios to the
//! first are what the noise alone makes of two identical pools), bb8-postgres
//! and sqlx's `PgPool`, each with 16 connections (`--pool-size`), under 64
//! and 256 concurrent tasks (`--tasks`). Statements are prepared once per
//! connection where the pool caches them (connpool and deadpool's
//! `prepare_cached`, sqlx's own cache); bb8 has no statement cache, so its
//! requests prepare each statement (a `Parse` round trip more).
//!
//! Each cell (workload × tasks × pool) starts from the same server state
//! (the tables vacuumed and a checkpoint taken, with autovacuum off for
//! them, so that the server's housekeeping after the updates workload
//! lands between cells, not inside one pool's window), builds its pool,
//! warms up (`--warmup`), then measures a window (`--seconds`): requests
//! completed per second, the median and 99th percentile latency, the
//! longest request, and the tasks that completed nothing in the window
//! (starved); for connpool, the session resets it ran. Before the first
//! round of each workload and task count, one cell more runs unmeasured,
//! so that the first pool measured meets the server as the others do (not
//! with cold caches, nor, on the first updates, with the freshly loaded
//! pages full). With `--rounds N` every pool is measured N times, the
//! pools taking turns (each round starting with the next pool and walking
//! them with a step that changes from round to round: no pool is always
//! the first after a change of workload, and each follows every other),
//! and the table adds the
//! rounds up; beside the ratios of the sums it shows the rounds' own
//! ratios to deadpool-postgres (of requests per second and of p99), which
//! compare cells run a minute apart at most, where the sums also weigh
//! which pool met the machine's slow spells: their geometric mean and its
//! interval of two standard errors (about 95 %), to read beside the same
//! figures of *deadpool-postgres again*. A request
//! that fails is counted apart (and must not happen).
//!
//! [`RecyclingMethod::Clean`]: connpool::managers::postgres::RecyclingMethod::Clean
//! [`SharedPostgres`]: connpool::managers::postgres::SharedPostgres

#[path = "techempower/cells.rs"]
mod cells;
#[path = "techempower/requests.rs"]
mod requests;
#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use bb8_postgres::PostgresConnectionManager;
use clap::Parser;
use connpool::Single;
use connpool::managers::postgres::{
    PostgresManager, RecyclingMethod, SharedPgConnection, SharedPostgres,
};
use tokio_postgres::{Client, Config, NoTls};

use cells::{Cell, measure, spread};
use requests::{on_client, on_sqlx};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Borrowers per connection of connpool's shared pool.
const SHARED_BORROWERS: usize = 32;

#[derive(Parser)]
#[command(about = "The TechEmpower database workloads, pool against pool")]
struct Args {
    /// A few seconds in all: short windows, 64 tasks only.
    #[arg(long)]
    quick: bool,
    /// Seconds measured per cell.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Seconds of warm-up per cell (dials, statement caches).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Rounds per workload and task count: each round measures every pool
    /// once, in turn, so that a busy machine weighs on all of them alike;
    /// the table adds the rounds up and summarises the rounds' own ratios.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Concurrent tasks, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [64, 256])]
    tasks: Vec<usize>,
    /// Connections per pool.
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
    /// The workloads to run, comma-separated (default: all four).
    #[arg(long, value_delimiter = ',', value_enum)]
    workloads: Vec<Workload>,
    /// The pools to run, comma-separated (default: all but
    /// connpool-always and connpool-keyed; deadpool-postgres, the ratios' reference, always
    /// runs).
    #[arg(long, value_delimiter = ',', value_enum)]
    pools: Vec<Kind>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    Single,
    Queries,
    Fortunes,
    Updates,
}

impl Workload {
    const ALL: [Workload; 4] = [
        Workload::Single,
        Workload::Queries,
        Workload::Fortunes,
        Workload::Updates,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::Single => "single query",
            Workload::Queries => "20 queries",
            Workload::Fortunes => "fortunes",
            Workload::Updates => "20 updates",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    Connpool,
    ConnpoolFast,
    ConnpoolAlways,
    ConnpoolShared,
    ConnpoolKeyed,
    Deadpool,
    DeadpoolAgain,
    Bb8,
    Sqlx,
}

impl Kind {
    const ALL: [Kind; 9] = [
        Kind::Connpool,
        Kind::ConnpoolFast,
        Kind::ConnpoolAlways,
        Kind::ConnpoolShared,
        Kind::ConnpoolKeyed,
        Kind::Deadpool,
        Kind::DeadpoolAgain,
        Kind::Bb8,
        Kind::Sqlx,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Connpool => "connpool (default: Clean)",
            Kind::ConnpoolFast => "connpool Fast",
            Kind::ConnpoolAlways => "connpool Always",
            Kind::ConnpoolShared => "connpool shared",
            Kind::ConnpoolKeyed => "connpool keyed (one key)",
            Kind::Deadpool => "deadpool-postgres (default: Fast)",
            Kind::DeadpoolAgain => "deadpool-postgres again (the noise)",
            Kind::Bb8 => "bb8-postgres",
            Kind::Sqlx => "sqlx PgPool",
        }
    }
}

enum Db {
    Connpool(connpool::Pool<Single<PostgresManager>>),
    Shared(connpool::Pool<Single<SharedPostgres>>),
    Keyed(
        connpool::Pool<PostgresManager>,
        connpool::managers::postgres::PgKey,
    ),
    Deadpool(deadpool_postgres::Pool),
    Bb8(bb8::Pool<PostgresConnectionManager<NoTls>>),
    Sqlx(sqlx::PgPool),
}

impl Db {
    async fn build(kind: Kind, config: &Config, url: &str, size: usize) -> Result<Db, BoxError> {
        Ok(match kind {
            Kind::Connpool | Kind::ConnpoolFast | Kind::ConnpoolAlways => {
                let method = match kind {
                    Kind::ConnpoolFast => RecyclingMethod::Fast,
                    Kind::ConnpoolAlways => RecyclingMethod::Always,
                    _ => RecyclingMethod::default(),
                };
                let manager = PostgresManager::new(config.clone()).with_recycling(method);
                Db::Connpool(
                    connpool::Pool::builder(manager.single())
                        .max_open(size)
                        .build()
                        .await?,
                )
            }
            Kind::ConnpoolShared => {
                let manager = PostgresManager::new(config.clone());
                Db::Shared(
                    connpool::Pool::builder(manager.shared(SHARED_BORROWERS).single())
                        .max_open(size)
                        .build()
                        .await?,
                )
            }
            Kind::ConnpoolKeyed => {
                let manager = PostgresManager::new(config.clone());
                let key = manager.key();
                Db::Keyed(
                    connpool::Pool::builder(manager)
                        .max_open(size)
                        .build()
                        .await?,
                    key,
                )
            }
            Kind::Deadpool | Kind::DeadpoolAgain => {
                let manager = deadpool_postgres::Manager::from_config(
                    config.clone(),
                    NoTls,
                    deadpool_postgres::ManagerConfig::default(),
                );
                Db::Deadpool(
                    deadpool_postgres::Pool::builder(manager)
                        .max_size(size)
                        .build()?,
                )
            }
            Kind::Bb8 => {
                let manager = PostgresConnectionManager::new(config.clone(), NoTls);
                Db::Bb8(
                    bb8::Pool::builder()
                        .max_size(u32::try_from(size)?)
                        .build(manager)
                        .await?,
                )
            }
            Kind::Sqlx => Db::Sqlx(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(u32::try_from(size)?)
                    .connect(url)
                    .await?,
            ),
        })
    }

    async fn close(self) {
        match self {
            Db::Connpool(pool) => pool.close().await,
            Db::Shared(pool) => pool.close().await,
            Db::Keyed(pool, _) => pool.close().await,
            Db::Deadpool(pool) => pool.close(),
            Db::Bb8(pool) => drop(pool),
            Db::Sqlx(pool) => pool.close().await,
        }
    }

    /// One request of `workload`.
    async fn request(&self, workload: Workload) -> Result<(), BoxError> {
        match self {
            Db::Connpool(pool) => {
                let conn = pool.get().await?;
                let client: &Client = &conn;
                on_client(client, workload, |sql| conn.prepare_cached(sql)).await
            }
            Db::Shared(pool) => {
                let conn = pool.get().await?;
                let handle: &SharedPgConnection = &conn;
                on_client(handle, workload, |sql| conn.prepare_cached(sql)).await
            }
            Db::Keyed(pool, key) => {
                let conn = pool.get_for(key).await?;
                let client: &Client = &conn;
                on_client(client, workload, |sql| conn.prepare_cached(sql)).await
            }
            Db::Deadpool(pool) => {
                let conn = pool.get().await?;
                let client: &Client = &conn;
                on_client(client, workload, |sql| conn.prepare_cached(sql)).await
            }
            Db::Bb8(pool) => {
                let conn = pool.get().await?;
                on_client(&*conn, workload, |sql| conn.prepare(sql)).await
            }
            Db::Sqlx(pool) => on_sqlx(pool, workload).await,
        }
    }
}

/// What every cell of a run shares.
struct Setup<'a> {
    /// The server's administrator session (set-up and tidying).
    admin: &'a Client,
    config: &'a Config,
    url: &'a str,
    /// Connections per pool.
    size: usize,
    warmup: Duration,
    window: Duration,
}

impl Setup<'_> {
    /// One cell: the server tidied, `kind`'s pool built, `tasks` tasks of
    /// `workload` measured, the pool closed.
    async fn cell(&self, kind: Kind, workload: Workload, tasks: usize) -> Result<Cell, BoxError> {
        tidy(self.admin).await?;
        let db = Arc::new(Db::build(kind, self.config, self.url, self.size).await?);
        let mut cell = measure(Arc::clone(&db), workload, tasks, self.warmup, self.window).await;
        if let Db::Connpool(pool) = &*db {
            cell.resets = Some(pool.state().counters.recycles);
        }
        if let Ok(db) = Arc::try_unwrap(db) {
            db.close().await;
        }
        Ok(cell)
    }
}

/// TechEmpower's schema and rows.
async fn set_up(client: &Client) -> Result<(), BoxError> {
    client
        .batch_execute(
            "DROP TABLE IF EXISTS world, fortune; \
             CREATE TABLE world (id integer PRIMARY KEY, randomnumber integer NOT NULL DEFAULT 0); \
             INSERT INTO world SELECT n, 1 + floor(random() * 10000)::int FROM generate_series(1, 10000) n; \
             CREATE TABLE fortune (id integer PRIMARY KEY, message varchar(2048) NOT NULL); \
             INSERT INTO fortune VALUES \
             (1, 'fortune: No such file or directory'), \
             (2, 'A computer scientist is someone who fixes things that aren''t broken.'), \
             (3, 'After enough decimal places, nobody gives a damn.'), \
             (4, 'A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1'), \
             (5, 'A computer program does what you tell it to do, not what you want it to do.'), \
             (6, 'Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen'), \
             (7, 'Any program that runs right is obsolete.'), \
             (8, 'A list is only as strong as its weakest link. — Donald Knuth'), \
             (9, 'Feature: A bug with seniority.'), \
             (10, 'Computers make very fast, very accurate mistakes.'), \
             (11, '<script>alert(\"This should not be displayed in a browser alert box.\");</script>'), \
             (12, 'フレームワークのベンチマーク'); \
             ALTER TABLE world SET (autovacuum_enabled = off); \
             ALTER TABLE fortune SET (autovacuum_enabled = off); \
             ANALYZE world, fortune",
        )
        .await?;
    Ok(())
}

/// The same server state for every cell: no dead rows left by the cell
/// before, no checkpoint due (see the module docs).
async fn tidy(client: &Client) -> Result<(), BoxError> {
    // One statement each: `VACUUM` runs outside any transaction.
    client.batch_execute("VACUUM world").await?;
    client.batch_execute("VACUUM fortune").await?;
    client.batch_execute("CHECKPOINT").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = Args::parse();
    if args.quick {
        args.seconds = 0.3;
        args.warmup = 0.2;
        args.tasks = vec![64];
    }
    let Some(server) = support::pg_support::shared() else {
        return Err("no PostgreSQL server (set DATABASE_URL or install PostgreSQL)".into());
    };
    eprintln!("server: {}", server.describe());
    let admin = server.client().await;
    set_up(&admin).await?;
    let config = server.config();
    let (warmup, window) = (
        Duration::from_secs_f64(args.warmup),
        Duration::from_secs_f64(args.seconds),
    );
    println!(
        "pool size {}, {:.1} s measured per cell after {:.1} s of warm-up, {} round(s)\n",
        args.pool_size, args.seconds, args.warmup, args.rounds
    );
    let setup = Setup {
        admin: &admin,
        config: &config,
        url: server.url(),
        size: args.pool_size,
        warmup,
        window,
    };
    let mut failed = 0;
    if args.workloads.is_empty() {
        args.workloads = Workload::ALL.to_vec();
    }
    for &workload in &args.workloads {
        for &tasks in &args.tasks {
            println!("### {}, {tasks} tasks\n", workload.name());
            println!(
                "| pool | requests/s | ÷ deadpool | rounds' ÷ deadpool: geo. mean (± 2 s.e.) | p50 | p99 | ÷ deadpool's p99 | rounds' p99 ÷ deadpool's: geo. mean (± 2 s.e.) | longest | starved tasks |"
            );
            println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            let mut cells: Vec<(Kind, Cell)> = Kind::ALL
                .iter()
                .filter(|&&k| {
                    (args.pools.is_empty()
                        && !matches!(k, Kind::ConnpoolAlways | Kind::ConnpoolKeyed))
                        || args.pools.contains(&k)
                        || k == Kind::Deadpool
                })
                .map(|&k| (k, Cell::default()))
                .collect();
            // Unmeasured: the server's state after the cells before (the
            // first updates find the freshly loaded pages full; the first
            // cell of a run, cold caches) is not the first pool's alone.
            failed += setup.cell(Kind::Deadpool, workload, tasks).await?.errors;
            for round in 0..args.rounds.max(1) {
                for i in support::turns::turns(cells.len(), round) {
                    let (kind, total) = &mut cells[i];
                    let cell = setup.cell(*kind, workload, tasks).await?;
                    failed += cell.errors;
                    total.add(cell);
                }
            }
            cells.sort_by_key(|(kind, _)| Kind::ALL.iter().position(|k| k == kind));
            for (_, c) in &mut cells {
                c.latencies.sort_unstable();
            }
            let deadpool = cells
                .iter()
                .find(|(k, _)| *k == Kind::Deadpool)
                .map(|(_, c)| (c.per_second(), c.rates.clone(), c.at(0.99), c.p99s.clone()))
                .expect("deadpool is measured");
            for (kind, c) in &cells {
                let rates = c.rates.iter().zip(&deadpool.1).map(|(r, d)| r / d);
                let p99s = c.p99s.iter().zip(&deadpool.3);
                let p99s = p99s.map(|(p, d)| p.as_secs_f64() / d.as_secs_f64());
                let mut errors = if c.errors > 0 {
                    format!(" ({} errors)", c.errors)
                } else {
                    String::new()
                };
                if let Some(resets) = c.resets {
                    errors.push_str(&format!(" ({resets} resets)"));
                }
                println!(
                    "| {}{errors} | {:.0} | {:.2} | {} | {:.2} ms | {:.2} ms | {:.2} | {} | {:.1} ms | {} |",
                    kind.name(),
                    c.per_second(),
                    c.per_second() / deadpool.0,
                    spread(rates.collect()),
                    ms(c.at(0.50)),
                    ms(c.at(0.99)),
                    c.at(0.99).as_secs_f64() / deadpool.2.as_secs_f64(),
                    spread(p99s.collect()),
                    ms(c.latencies.last().copied().unwrap_or_default()),
                    c.starved
                );
            }
            println!();
        }
    }
    if failed > 0 {
        return Err(format!("{failed} requests failed").into());
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
