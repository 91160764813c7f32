//! The PostgreSQL manager's errors against a real server: an unknown
//! database, an unknown role, a wrong password and a server that is down.

use std::sync::Arc;
use std::time::Duration;

use connpool::managers::postgres::{PgError, PostgresManager};
use connpool::{ConnectError, Pool};
use tokio_postgres::Config;
use tokio_postgres::error::SqlState;

use super::*;
use crate::support::pg::{self, PgServer};

const PASSWORD: &str = "right-horse-battery";
const WRONG: &str = "wrong-staple-battery";

/// `config` fails to connect: `{}` of the pool's `Error`, of a get and
/// of a pre-warm each carry `expect`, no message of either
/// chain repeats, and no password is shown. Returns the manager error.
async fn fails_with(config: Config, expect: &str) -> Arc<PgError> {
    let manager = PostgresManager::new(config).single();
    let pool = Pool::builder(manager.clone())
        .no_backoff()
        .build()
        .await
        .unwrap();
    let e = pool.get().await.unwrap_err();
    let shown = reads_well(&e, Some(expect));
    assert!(shown.starts_with("connect failed: "), "{shown}");
    let debug = format!("{e:?}");
    for secret in [PASSWORD, WRONG] {
        assert!(
            !shown.contains(secret) && !debug.contains(secret),
            "{debug}"
        );
    }
    let Some(ConnectError::Manager(pg)) = e.connect_error() else {
        panic!("{e:?}")
    };
    let pg = Arc::clone(pg);
    assert!(pg.source().is_none(), "the text is inlined: {pg:?}");
    pool.close().await;

    let e = Pool::builder(manager).initial(1).build().await.unwrap_err();
    let shown = reads_well(&e, Some(expect));
    assert!(shown.starts_with("connect failed: "), "{shown}");
    let debug = format!("{e:?}");
    for secret in [PASSWORD, WRONG] {
        assert!(
            !shown.contains(secret) && !debug.contains(secret),
            "{debug}"
        );
    }
    assert!(e.manager_error().is_some());
    pg
}

fn server() -> Option<Arc<PgServer>> {
    pg::kept()
}

#[tokio::test]
async fn unknown_database() {
    let Some(server) = server() else { return };
    let mut config = server.config();
    config.dbname("no_such_db");
    let pg = fails_with(
        config,
        "database \"no_such_db\" does not exist (SQLSTATE 3D000)",
    )
    .await;
    assert_eq!(pg.code(), Some(&SqlState::INVALID_CATALOG_NAME));
    assert!(pg.as_db_error().is_some());
    assert_eq!(pg.driver().unwrap().to_string(), "db error");
}

#[tokio::test]
async fn unknown_role() {
    let Some(server) = server() else { return };
    let mut config = server.config();
    config.user("no_such_role");
    let pg = fails_with(config, "role \"no_such_role\" does not exist").await;
    assert_eq!(
        pg.code(),
        Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
    );
}

/// A role that must give a password (a `pg_hba.conf` rule for it
/// alone, on a throwaway server: a dedicated one when the shared server
/// is `DATABASE_URL`'s), given the wrong one.
#[tokio::test]
async fn wrong_password() {
    let Some(shared) = server() else { return };
    let server = if shared.is_throwaway() {
        shared
    } else {
        let Some(own) = pg::dedicated() else {
            return;
        };
        own
    };
    let admin = server.client().await;
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pw_user') THEN
                 CREATE ROLE pw_user LOGIN;
               END IF;
             END $$;
             ALTER ROLE pw_user PASSWORD '{PASSWORD}';"
        ))
        .await
        .unwrap();
    server.require_password("pw_user");
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();

    let mut config = server.config();
    config.user("pw_user").password(WRONG);
    // The postmaster reloads `pg_hba.conf` asynchronously: wait until a
    // wrong password is refused (a trust rule would let it in).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match config.connect(tokio_postgres::NoTls).await {
            Err(e) if e.code() == Some(&SqlState::INVALID_PASSWORD) => break,
            other => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the password rule never took effect: {:?}",
                    other.map(|_| ())
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let pg = fails_with(
        config.clone(),
        "password authentication failed for user \"pw_user\" (SQLSTATE 28P01)",
    )
    .await;
    assert_eq!(pg.code(), Some(&SqlState::INVALID_PASSWORD));

    // The right password gets in: the rule asked for it.
    config.password(PASSWORD);
    let pool = Pool::builder(PostgresManager::new(config).single())
        .build()
        .await
        .unwrap();
    pool.get()
        .await
        .unwrap()
        .simple_query("SELECT 1")
        .await
        .unwrap();
    pool.close().await;
}

/// Nobody listens: the driver's context and the io error.
#[tokio::test]
async fn server_down() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .password(PASSWORD)
        .dbname("postgres");
    let pg = fails_with(config, "error connecting to server: Connection refused").await;
    assert!(pg.code().is_none() && pg.as_db_error().is_none());
    assert_eq!(
        pg.driver().unwrap().to_string(),
        "error connecting to server"
    );
}
