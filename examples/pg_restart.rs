//! A PostgreSQL server restarted under load (`pg_ctl stop -m fast`: every
//! session terminated, then down a second, then started again on its
//! port), with `--fault freeze` frozen whole (`SIGSTOP` to every process
//! of it, `SIGCONT` a second later), or with `--fault partition` cut off
//! by the network, as each
//! client lives it, all at the same instant: connpool
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
//! cargo run --release --features postgres --example pg_restart -- --fault freeze
//! cargo run --release --features postgres --example pg_restart -- --fault partition --down 10
//! cargo run --release --features postgres --example pg_restart -- --quick
//! ```

#[path = "support/pg_server.rs"]
mod pg_support;
#[path = "support/restart_load.rs"]
mod restart_load;

use std::sync::Arc;

use connpool::Pool;
use connpool::managers::postgres::PostgresManager;
use restart_load::{Args, BoxError, Netns, Proxy, Request, Server};
use tokio_postgres::NoTls;

/// A throwaway PostgreSQL server, stopped (`pg_ctl stop -m fast`: every
/// session terminated) and started again on its port, or frozen whole.
struct Pg(Arc<pg_support::PgServer>);

impl Server for Pg {
    fn kill(&mut self) {
        self.0.stop();
    }
    fn start(&mut self) {
        self.0.start();
    }
    fn signal(&self, signal: &str) {
        self.0.signal_all(signal);
    }
}

fn main() -> Result<(), BoxError> {
    restart_load::main(|args, ns| async move { run(args, ns).await })
}

async fn run(args: Args, ns: Option<Arc<Netns>>) -> Result<(), BoxError> {
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
    // The server's configuration with the proxy as its only address (the
    // server's own would be tried first, around the proxy).
    let config = |i: usize| {
        let server = servers[i].config();
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(proxies[i].addr.port())
            .user(server.get_user().unwrap_or("postgres"))
            .dbname(server.get_dbname().unwrap_or("postgres"));
        if let Some(password) = server.get_password() {
            config.password(password);
        }
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

    let servers: Vec<Pg> = servers.into_iter().map(Pg).collect();
    restart_load::run(
        &args,
        ns,
        "PostgreSQL, a SELECT 1",
        &names,
        servers,
        &proxies,
        requests,
    )
    .await
}
