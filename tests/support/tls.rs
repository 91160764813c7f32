//! Certificates made at test time (rcgen): a CA, leaf certificates it signs
//! (valid for localhost and 127.0.0.1, for another name, or expired), and
//! rustls client and server configurations from them. Nothing is checked in,
//! so nothing expires.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, date_time_ymd};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// What a leaf certificate is made for.
#[derive(Clone, Copy, Debug)]
pub enum Leaf {
    /// localhost and 127.0.0.1, valid now.
    Good,
    /// Another host name only.
    OtherName,
    /// localhost and 127.0.0.1, expired in 2001.
    Expired,
}

/// A certificate authority made for one test.
pub struct Ca {
    pub cert: CertificateDer<'static>,
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            cert: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn leaf_params(&self, leaf: Leaf) -> CertificateParams {
        let names: Vec<String> = match leaf {
            Leaf::Good | Leaf::Expired => vec!["localhost".into(), "127.0.0.1".into()],
            Leaf::OtherName => vec!["other.example".into()],
        };
        let mut params = CertificateParams::new(names).unwrap();
        if let Leaf::Expired = leaf {
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2001, 1, 1);
        }
        params
    }

    /// A leaf certificate (with its chain) and its key.
    pub fn leaf(&self, leaf: Leaf) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let params = self.leaf_params(leaf);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone(), self.cert.clone()], key)
    }

    /// A client that trusts this CA and presents no certificate.
    pub fn client(&self) -> Arc<ClientConfig> {
        Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(self.roots())
                .with_no_client_auth(),
        )
    }

    /// A client that trusts this CA and presents a certificate it signed.
    pub fn client_with_cert(&self) -> Arc<ClientConfig> {
        let (chain, key) = self.leaf(Leaf::Good);
        Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(self.roots())
                .with_client_auth_cert(chain, key)
                .unwrap(),
        )
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.clone()).unwrap();
        roots
    }

    /// A server presenting `leaf`, offering `alpn`; with `require_client`,
    /// it asks for a client certificate this CA signed.
    pub fn server(&self, leaf: Leaf, alpn: &[&[u8]], require_client: bool) -> Arc<ServerConfig> {
        let (chain, key) = self.leaf(leaf);
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(self.roots()),
                provider(),
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_single_cert(chain, key).unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A leaf's certificate and key in PEM, and the CA's certificate in
    /// PEM (for PostgreSQL's `ssl_cert_file` / `ssl_key_file` and a
    /// client's root).
    pub fn leaf_pem(&self, leaf: Leaf) -> (String, String) {
        let params = self.leaf_params(leaf);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A TLS echo server on 127.0.0.1 with `config`, serving until the runtime
/// ends; its port.
pub async fn echo_server(config: Arc<ServerConfig>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut buf = [0; 1024];
                while let Ok(n @ 1..) = tls.read(&mut buf).await {
                    if tls.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}
