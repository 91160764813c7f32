//! `SELECT 1` through a pool of PostgreSQL connections, against a new
//! connection per query.
//!
//! ```text
//! cargo run --release --features postgres --example postgres            # 8 tasks × 50 queries
//! cargo run --release --features postgres --example postgres -- 16 100  # tasks, queries per task
//! DATABASE_URL=postgresql://postgres@127.0.0.1/postgres cargo run --release --features postgres --example postgres
//! ```
//!
//! Uses the server of `DATABASE_URL` if it is set; otherwise starts a
//! throwaway PostgreSQL (the tests' launcher, `tests/pg_support`: needs the
//! server binaries, `apt-get install postgresql`) and stops it at the end.

#[path = "../tests/pg_support/mod.rs"]
mod pg_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use connpool::Pool;
use connpool::managers::postgres::PostgresManager;
use tokio_postgres::{Client, Config, NoTls};

struct Run {
    elapsed: Duration,
    p99: Duration,
    connections: u64,
}

impl Run {
    fn rate(&self, queries: usize) -> f64 {
        queries as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self, label: &str, queries: usize) {
        println!(
            "{label:<16} {queries} queries in {:>7.1} ms: {:>8.0} queries/s, p99 {:>6.2} ms, {} connections opened",
            self.elapsed.as_secs_f64() * 1e3,
            self.rate(queries),
            self.p99.as_secs_f64() * 1e3,
            self.connections
        );
    }
}

fn p99(mut latencies: Vec<Duration>) -> Duration {
    latencies.sort();
    latencies[(latencies.len() * 99).div_ceil(100).saturating_sub(1)]
}

async fn select_1(client: &Client) {
    let rows = client.simple_query("SELECT 1").await.expect("SELECT 1");
    assert!(!rows.is_empty());
}

/// `tasks` tasks × `per_task` queries, each on a connection from the pool.
async fn pooled(config: Config, tasks: usize, per_task: usize) -> Run {
    let pool = Pool::builder(PostgresManager::new(config).single())
        .max_open(tasks)
        .build()
        .await
        .expect("building the pool");
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let t = Instant::now();
                    let conn = pool.get().await.expect("get");
                    select_1(&conn).await;
                    drop(conn);
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.await.expect("task panicked"));
    }
    let elapsed = start.elapsed();
    let connections = pool.state().counters.dials;
    pool.close().await;
    Run {
        elapsed,
        p99: p99(latencies),
        connections,
    }
}

/// The same queries, each on a connection of its own (connect, query, close).
async fn unpooled(config: Config, tasks: usize, per_task: usize) -> Run {
    let config = Arc::new(config);
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let config = Arc::clone(&config);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let t = Instant::now();
                    let (client, connection) = config.connect(NoTls).await.expect("connect");
                    let io = tokio::spawn(connection);
                    select_1(&client).await;
                    drop(client); // sends Terminate; the I/O task then ends
                    let _ = io.await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.await.expect("task panicked"));
    }
    Run {
        elapsed: start.elapsed(),
        p99: p99(latencies),
        connections: (tasks * per_task) as u64,
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).map(|a| {
        a.parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .expect("usage: postgres [tasks] [queries per task]")
    });
    let tasks = args.next().unwrap_or(8);
    let per_task = args.next().unwrap_or(50);
    let queries = tasks * per_task;

    let Some(server) = pg_support::shared() else {
        println!("no PostgreSQL server available: nothing to measure");
        return;
    };
    if server.is_throwaway() {
        println!("PostgreSQL: started {}", server.describe());
    } else {
        println!("PostgreSQL: using {}", server.describe());
    }
    let mut config = server.config();
    config.application_name("connpool-example");
    println!("{tasks} tasks × {per_task} queries of `SELECT 1`\n");

    let pool = pooled(config.clone(), tasks, per_task).await;
    let direct = unpooled(config, tasks, per_task).await;
    pool.print("pooled:", queries);
    direct.print("new connection:", queries);
    println!(
        "\npooled vs new connection: {:.1}× the throughput, p99 {:.1}× lower, {:.0}× fewer connections opened",
        pool.rate(queries) / direct.rate(queries),
        direct.p99.as_secs_f64() / pool.p99.as_secs_f64(),
        direct.connections as f64 / pool.connections.max(1) as f64
    );

    let throwaway = server.is_throwaway();
    drop(server);
    if throwaway {
        println!("stopped the throwaway server");
    }
}
