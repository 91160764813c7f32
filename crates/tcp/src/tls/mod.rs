//! TLS for every manager that dials TCP (HTTP/1.1, HTTP/2, gRPC,
//! WebSocket, Redis, and [`TcpManager::tls`](crate::TcpManager::tls)
//! for any protocol of your own; PostgreSQL's connector is made from it by
//! `connpool-postgres`), with rustls (and
//! its `ring` provider): [`TlsConfig`], what to trust and what to present.
//! Every manager dials through one path: TCP with the
//! [`TcpManager`](crate::TcpManager)'s socket setup, then this
//! handshake.
//!
//! Verification is always on: the server's certificate chain must lead to a
//! trusted root, and the certificate must name the host dialed (the
//! [`Destination`]'s host name, or its IP address),
//! unless [`server_name`](TlsConfig::server_name) says which name to expect
//! instead. A failed handshake fails the dial with an error that says why,
//! in rustls's words (`invalid peer certificate: UnknownIssuer`,
//! `certificate not valid for name "…"`, `certificate expired`…).
//!
//! | constructor | trusts | presents |
//! |---|---|---|
//! | [`TlsConfig::webpki_roots`] (the default) | Mozilla's roots ([`webpki-roots`](https://docs.rs/webpki-roots)) | nothing |
//! | [`TlsConfig::private_ca`] | the CA certificates in your PEM (a private CA), and nothing else | nothing |
//! | [`TlsConfig::from_client_config`] | what your `rustls::ClientConfig` trusts | what it presents (a client certificate: mutual TLS) |
//!
//! ALPN is set by the manager that dials: `h2` for HTTP/2 and gRPC,
//! `http/1.1` for HTTP/1.1 and WebSocket, both for `AutoManager`, what you
//! choose for [`TcpManager`](crate::TcpManager::alpn).
//!
//! A private CA, in one line (the same [`TlsConfig`] serves every
//! manager: `.tls(tls)`, or `with_tls(tls_connector(&tls))` for PostgreSQL):
//!
//! ```no_run
//! use connpool_tcp::tls::TlsConfig;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tls = TlsConfig::private_ca(std::fs::read("ca.pem")?)?;
//! # let _ = tls;
//! # Ok(())
//! # }
//! ```
//!
//! Mutual TLS (a client certificate) takes a rustls configuration of your
//! own:
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use connpool_tcp::tls::TlsConfig;
//! use rustls::pki_types::pem::PemObject;
//! use rustls::pki_types::{CertificateDer, PrivateKeyDer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut roots = rustls::RootCertStore::empty();
//! for ca in CertificateDer::pem_file_iter("ca.pem")? {
//!     roots.add(ca?)?;
//! }
//! let chain = CertificateDer::pem_file_iter("client.pem")?.collect::<Result<Vec<_>, _>>()?;
//! let key = PrivateKeyDer::from_pem_file("client.key")?;
//! let config = rustls::ClientConfig::builder_with_provider(Arc::new(
//!     rustls::crypto::ring::default_provider(),
//! ))
//! .with_safe_default_protocol_versions()?
//! .with_root_certificates(roots)
//! .with_client_auth_cert(chain, key)?;
//! let tls = TlsConfig::from_client_config(Arc::new(config));
//! # let _ = tls;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::Destination;

/// What a TLS client trusts and presents, and which name it expects: a
/// rustls `ClientConfig` behind an `Arc` (cheap to clone). See the
/// [module docs](self).
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config's Debug would list its key material's types only, but
        // nothing of it is needed here.
        f.debug_struct("TlsConfig")
            .field("alpn", &self.config.alpn_protocols.len())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self::webpki_roots()
    }
}

impl TlsConfig {
    /// Trusts Mozilla's roots (`webpki-roots`), presents no certificate.
    pub fn webpki_roots() -> Self {
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Self::from_client_config(Arc::new(client_config(roots)))
    }

    /// Trusts the CA certificates in `pem` (PEM text with one or more
    /// `CERTIFICATE` blocks, as `ca.pem` or a bundle has them), and no
    /// others; presents no certificate. Verification is as with every
    /// configuration: the chain must lead to one of these CAs, and the
    /// certificate must name the host dialed. An error names what was
    /// wrong: PEM that does not parse, no certificate in it, or a
    /// certificate that is not a usable CA.
    pub fn private_ca(pem: impl AsRef<[u8]>) -> io::Result<Self> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem.as_ref()) {
            let cert = cert.map_err(|e| invalid(format!("TlsConfig::private_ca: bad PEM: {e}")))?;
            roots.add(cert).map_err(|e| {
                invalid(format!(
                    "TlsConfig::private_ca: not a usable CA certificate: {e}"
                ))
            })?;
        }
        if roots.is_empty() {
            return Err(invalid(
                "TlsConfig::private_ca: no CERTIFICATE block in the PEM given".into(),
            ));
        }
        Ok(Self::from_client_config(Arc::new(client_config(roots))))
    }

    /// Your own rustls configuration: private roots, client certificates
    /// (mutual TLS), protocol versions. Its ALPN list is replaced by the
    /// manager's.
    pub fn from_client_config(config: Arc<ClientConfig>) -> Self {
        Self {
            config,
            server_name: None,
        }
    }

    /// The name the server's certificate must carry, instead of the
    /// destination's host (for a destination given as an address whose
    /// certificate names a host).
    pub fn server_name(mut self, name: &str) -> io::Result<Self> {
        let name = ServerName::try_from(name.to_owned()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TLS server name {name:?}: {e}"),
            )
        })?;
        self.server_name = Some(name);
        Ok(self)
    }

    /// The same, offering `protocols` in ALPN.
    pub(crate) fn with_alpn(&self, protocols: &[&[u8]]) -> Self {
        let mut config = (*self.config).clone();
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        Self {
            config: Arc::new(config),
            server_name: self.server_name.clone(),
        }
    }

    /// The rustls configuration.
    pub fn client_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The TLS handshake over `tcp`, to `dest`. An error says what failed,
    /// for which destination, in rustls's words.
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        dest: &Destination,
    ) -> io::Result<TlsStream<TcpStream>> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => {
                let host = dest.host().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("no host in {dest}"))
                })?;
                ServerName::try_from(host).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("TLS to {dest}: not a server name: {e}"),
                    )
                })?
            }
        };
        TlsConnector::from(Arc::clone(&self.config))
            .connect(name, tcp)
            .await
            .map_err(|e| {
                // A server that shares none of the ALPN protocols offered
                // refuses the handshake with this alert: `Unsupported` lets
                // the manager that asked for a protocol say so.
                let refused_alpn = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>())
                    == Some(&rustls::Error::AlertReceived(
                        rustls::AlertDescription::NoApplicationProtocol,
                    ));
                let kind = if refused_alpn {
                    io::ErrorKind::Unsupported
                } else {
                    e.kind()
                };
                io::Error::new(kind, format!("TLS handshake with {dest} failed: {e}"))
            })
    }
}

/// rustls with the `ring` provider and its safe default protocol versions,
/// trusting `roots`, presenting nothing.
fn client_config(roots: rustls::RootCertStore) -> ClientConfig {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}
