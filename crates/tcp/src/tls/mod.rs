//! TLS for every manager that dials TCP (HTTP/1.1, HTTP/2, gRPC,
//! WebSocket, Redis, and [`TcpManager::tls`](crate::TcpManager::tls)
//! for any protocol of your own; PostgreSQL's connector is made from it by
//! `connpool-postgres`), with rustls: [`TlsConfig`], what to trust and
//! what to present.
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
//! | [`TlsConfig::native_roots`] (`native-roots` feature) | the operating system's store | nothing |
//! | [`TlsConfig::private_ca`] | the CA certificates in your PEM (a private CA), and nothing else | nothing |
//! | [`TlsConfig::from_client_config`] | what your `rustls::ClientConfig` trusts | what it presents (a client certificate: mutual TLS) |
//!
//! # The crypto provider
//!
//! No provider is forced into your build. A [`TlsConfig`] uses, in order:
//!
//! 1. the process default, if one is installed
//!    (`CryptoProvider::install_default`): your application's choice;
//! 2. the provider this crate's feature names: `aws-lc-rs` or `ring`;
//! 3. the one provider rustls was built with, by another crate's choice
//!    (reqwest's and tonic's defaults bring `aws-lc-rs`), which rustls then
//!    installs as the process default.
//!
//! With none of the three (rustls built with no provider, or with two and
//! none installed), making a [`TlsConfig`] panics with rustls's message
//! naming `CryptoProvider::install_default`. Beside reqwest or tonic, the
//! `tls` feature alone is enough and adds no second provider; a build of
//! its own names one (`ring` or `aws-lc-rs`).
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
use rustls::crypto::CryptoProvider;
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

    /// Trusts the operating system's store of root certificates (read with
    /// `rustls-native-certs`: the system bundle on Linux, the keychain on
    /// macOS, the certificate store on Windows), presents no certificate.
    /// An error says why no root could be read; certificates the store
    /// holds that rustls cannot use are left out, as browsers do.
    #[cfg(feature = "native-roots")]
    #[cfg_attr(docsrs, doc(cfg(feature = "native-roots")))]
    pub fn native_roots() -> io::Result<Self> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        let (_added, _unusable) = roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            let why = match found.errors.first() {
                Some(e) => e.to_string(),
                None => "the store holds no usable certificate".to_owned(),
            };
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "TlsConfig::native_roots: no root certificate from the operating system: {why}"
                ),
            ));
        }
        Ok(Self::from_client_config(Arc::new(client_config(roots))))
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

/// rustls with [`provider`]'s crypto and its safe default protocol
/// versions, trusting `roots`, presenting nothing.
fn client_config(roots: rustls::RootCertStore) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("rustls's providers support its default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The crypto provider: the process default when one is installed (the
/// application's choice wins), else the one this crate's `aws-lc-rs` or
/// `ring` feature names, else the one rustls was built with (another
/// crate's choice, such as reqwest's or tonic's), which rustls then
/// installs as the process default. Never a provider of its own beside
/// the application's.
fn provider() -> Arc<CryptoProvider> {
    if let Some(installed) = CryptoProvider::get_default() {
        return Arc::clone(installed);
    }
    #[cfg(feature = "aws-lc-rs")]
    return Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    return Arc::new(rustls::crypto::ring::default_provider());
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    {
        // Panics, in rustls's words, when rustls was built with no
        // provider or with two and none is installed (see the module docs).
        let builder = ClientConfig::builder();
        Arc::clone(builder.crypto_provider())
    }
}
