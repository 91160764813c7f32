use connpool::Pool;
use connpool::managers::postgres::{PostgresManager, tls_connector};
use connpool::managers::tls::TlsConfig;
use tokio_postgres::config::SslMode;

use crate::support::pg;
use crate::support::tls::{Ca, Leaf};

#[tokio::test]
async fn postgres_over_verified_tls_and_a_wrong_ca_reads_well() {
    let Some(server) = pg::dedicated() else {
        return;
    };
    let ca = Ca::new("test CA");
    let (cert, key) = ca.leaf_pem(Leaf::Good);
    server.enable_ssl(&cert, &key).await;

    let mut config = server.config();
    config.host("localhost").ssl_mode(SslMode::Require);
    let tls = tls_connector(&TlsConfig::private_ca(&ca.pem).unwrap());
    let pool = Pool::builder(PostgresManager::with_tls(config.clone(), tls).single())
        .build()
        .await
        .unwrap();
    let conn = pool.get().await.unwrap();
    let row = conn
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the session is encrypted");
    drop(conn);

    let stranger = Ca::new("some other CA");
    let tls = tls_connector(&TlsConfig::private_ca(&stranger.pem).unwrap());
    let e = Pool::builder(PostgresManager::with_tls(config, tls).single())
        .initial(1)
        .build()
        .await
        .unwrap_err();
    let message = e.to_string();
    assert!(message.contains("UnknownIssuer"), "{message}");
}

/// `sslmode=require` means what it says: against a server without TLS
/// the dial fails, with or without a TLS connector; no session goes on
/// in plaintext.
#[tokio::test]
async fn sslmode_require_never_goes_on_in_plaintext() {
    let Some(server) = pg::shared() else {
        return;
    };
    let mut config = server.config();
    config.ssl_mode(SslMode::Require);
    let ca = Ca::new("test CA");
    let tls = tls_connector(&TlsConfig::private_ca(&ca.pem).unwrap());
    let with_tls = Pool::builder(PostgresManager::with_tls(config.clone(), tls).single())
        .build()
        .await
        .unwrap();
    let e = with_tls.get().await.unwrap_err();
    assert!(e.to_string().contains("TLS"), "{e}");

    let without = Pool::builder(PostgresManager::new(config).single())
        .build()
        .await
        .unwrap();
    let e = without.get().await.unwrap_err();
    assert!(e.to_string().contains("TLS"), "{e}");
}

/// A session over TLS is tracked as a plaintext one is (its protocol
/// read above TLS): a clean workload runs no reset, a `SET` is reset
/// before the next borrower, and the statement cache survives.
#[tokio::test]
async fn postgres_over_tls_resets_only_a_changed_session() {
    let Some(server) = pg::dedicated() else {
        return;
    };
    let ca = Ca::new("test CA");
    let (cert, key) = ca.leaf_pem(Leaf::Good);
    server.enable_ssl(&cert, &key).await;
    let mut config = server.config();
    config.host("localhost").ssl_mode(SslMode::Require);
    let tls = tls_connector(&TlsConfig::private_ca(&ca.pem).unwrap());
    let pool = Pool::builder(PostgresManager::with_tls(config, tls).single())
        .max_open(1)
        .build()
        .await
        .unwrap();
    for _ in 0..5 {
        let conn = pool.get().await.unwrap();
        let one = conn.prepare_cached("SELECT 1::int").await.unwrap();
        let row = conn.query_one(&one, &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 1);
    }
    pool.settled().await;
    assert_eq!(
        pool.state().counters.recycles,
        0,
        "a clean session is not reset"
    );

    {
        let conn = pool.get().await.unwrap();
        conn.batch_execute("SET search_path = changed")
            .await
            .unwrap();
    }
    pool.settled().await;
    assert_eq!(
        pool.state().counters.recycles,
        1,
        "a changed session is reset"
    );
    let conn = pool.get().await.unwrap();
    let row = conn
        .query_one("SELECT current_setting('search_path')", &[])
        .await
        .unwrap();
    assert_ne!(row.get::<_, String>(0), "changed");
    assert_eq!(conn.cached_statements(), 1, "the cache survived the reset");
    let row = conn
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the session is encrypted");
    drop(conn);
    pool.close().await;
}
