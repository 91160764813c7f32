//! TLS for the examples: a certificate authority and a certificate for
//! localhost and 127.0.0.1 made at start-up (rcgen), the client
//! configuration that trusts it, and TLS servers on 127.0.0.1: an echo
//! server, an HTTP/2 server answering `hello`, a gRPC server with the
//! standard health service (both ALPN `h2`).
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{Accepted, BoxError};

/// A CA and one certificate it signed for localhost and 127.0.0.1.
pub struct Pki {
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
    ca: CertificateDer<'static>,
    /// The certificate and key in PEM, for PostgreSQL.
    pub cert_pem: String,
    pub key_pem: String,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Pki {
    pub fn new() -> Result<Pki, BoxError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate()?;
        let ca = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate()?;
        let leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?
            .signed_by(&leaf_key, &issuer)?;
        Ok(Pki {
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
            ca: ca.der().clone(),
            cert_pem: leaf.pem(),
            key_pem: leaf_key.serialize_pem(),
        })
    }

    /// A client that trusts the CA.
    pub fn client(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).expect("a CA certificate");
        Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("TLS 1.2 and 1.3")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    /// A TLS acceptor presenting the certificate, offering `alpn`.
    pub fn acceptor(&self, alpn: &[&[u8]]) -> Result<TlsAcceptor, BoxError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                self.chain.clone(),
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// A TLS echo server.
    pub async fn echo_server(&self) -> Result<(SocketAddr, Accepted), BoxError> {
        let acceptor = self.acceptor(&[])?;
        serve(acceptor, |mut tls| async move {
            let mut buf = [0; 1024];
            while let Ok(n @ 1..) = tls.read(&mut buf).await {
                if tls.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        })
        .await
    }

    /// An HTTP/2 server over TLS answering every request with `hello`.
    pub async fn http2_server(&self) -> Result<(SocketAddr, Accepted), BoxError> {
        let acceptor = self.acceptor(&[b"h2"])?;
        serve(acceptor, |tls| async move {
            let hello = service_fn(|_: hyper::Request<Incoming>| async {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                    b"hello",
                ))))
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), hello)
                .await;
        })
        .await
    }

    /// An HTTP/1.1 server over TLS (ALPN `http/1.1`) answering every
    /// request with `hello`, keeping connections alive.
    #[cfg(feature = "http")]
    pub async fn http1_server(&self) -> Result<(SocketAddr, Accepted), BoxError> {
        let acceptor = self.acceptor(&[b"http/1.1"])?;
        serve(acceptor, |tls| async move {
            let hello = service_fn(|_: hyper::Request<Incoming>| async {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                    b"hello",
                ))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), hello)
                .await;
        })
        .await
    }

    /// A gRPC server over TLS with the standard health service.
    pub async fn grpc_server(&self) -> Result<(SocketAddr, Accepted), BoxError> {
        let acceptor = self.acceptor(&[b"h2"])?;
        let (reporter, health) = tonic_health::server::health_reporter();
        serve(acceptor, move |tls| {
            let (_reporter, health) = (reporter.clone(), health.clone());
            async move {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(health))
                    .await;
            }
        })
        .await
    }
}

type TlsStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// Accepts on 127.0.0.1, counts connections, serves each TLS stream with
/// `conn` in a task of its own.
async fn serve<F, Fut>(acceptor: TlsAcceptor, conn: F) -> Result<(SocketAddr, Accepted), BoxError>
where
    F: Fn(TlsStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accepted = Accepted::default();
    let counter = accepted.clone();
    let conn = Arc::new(conn);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.add();
            let _ = socket.set_nodelay(true);
            let (acceptor, conn) = (acceptor.clone(), Arc::clone(&conn));
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(socket).await {
                    conn(tls).await;
                }
            });
        }
    });
    Ok((addr, accepted))
}
