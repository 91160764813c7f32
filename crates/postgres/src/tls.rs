//! PostgreSQL over the [`TlsConfig`] every connpool crate shares.

use connpool_tcp::tls::TlsConfig;

/// A TLS connector for [`PostgresManager::with_tls`](crate::PostgresManager::with_tls)
/// with `tls`'s roots and certificates. The server's certificate must name
/// the host of the connection string (with `sslmode=require`, the only mode
/// besides `disable` that tokio-postgres knows, TLS is then required and
/// verified as `verify-full` would).
pub fn tls_connector(tls: &TlsConfig) -> tokio_postgres_rustls::MakeRustlsConnect {
    tokio_postgres_rustls::MakeRustlsConnect::new((**tls.client_config()).clone())
}
