//! The PostgreSQL target: a throwaway server, one `SELECT 1` a request.

use std::net::SocketAddr;
use std::sync::Arc;

use connpool::Single;
use connpool::async_trait;
use connpool::managers::postgres::PgConnection;
use connpool::managers::postgres::PostgresManager;

use super::Target;
use crate::support::pg::PgServer;

/// A throwaway PostgreSQL (`SELECT 1`).
pub struct Postgres(pub Arc<PgServer>);

#[async_trait]
impl Target for Postgres {
    type M = Single<PostgresManager>;
    type Key = ();

    fn name(&self) -> &'static str {
        "postgres"
    }

    fn upstream(&self) -> SocketAddr {
        let port = self.0.config().get_ports()[0];
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn manager(&self, addr: SocketAddr) -> (Single<PostgresManager>, ()) {
        let base = self.0.config();
        // A new config: `host`/`port` on the server's would add a second
        // address after the server's own, not replace it.
        let mut config = tokio_postgres::Config::new();
        config
            .user(base.get_user().unwrap_or("postgres"))
            .dbname(base.get_dbname().unwrap_or("postgres"))
            .host("127.0.0.1")
            .port(addr.port())
            .application_name("connpool_faults");
        (PostgresManager::new(config).single(), ())
    }

    async fn op(conn: &mut PgConnection, _n: u64) -> Result<(), String> {
        conn.simple_query("SELECT 1")
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
