//! connpool, reqwest and tonic in one build, each dialing TLS to one
//! gRPC server (tonic's, over TLS with a certificate made here): rustls
//! holds one crypto provider (aws-lc-rs, the others' default), which
//! connpool takes rather than adding its own, and a plain
//! `rustls::ClientConfig::builder()` afterwards finds it.

use connpool::Pool;
use connpool::managers::grpc::GrpcManager;
use connpool::managers::service::HttpService;
use connpool::managers::tls::TlsConfig;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity, Server, ServerTlsConfig};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A CA's PEM, and a certificate for `localhost` it signed with its key.
fn certificates() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    (ca_cert.pem(), leaf.pem(), leaf_key.serialize_pem())
}

#[tokio::test]
async fn connpool_reqwest_and_tonic_dial_tls_in_one_build_without_a_panic() {
    let (ca, cert, key) = certificates();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let server = Server::builder()
        .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(&cert, &key)))
        .unwrap()
        .add_service(health)
        .serve_with_incoming(TcpListenerStream::new(listener));
    tokio::spawn(server);

    // connpool first: nothing is installed yet, so it takes the one
    // provider rustls was built with.
    let tls = TlsConfig::private_ca(&ca).unwrap();
    let pool = Pool::builder(GrpcManager::new().tls(tls))
        .build()
        .await
        .unwrap();
    let mut client = HealthClient::new(HttpService::new(pool.clone(), ("localhost", port)));
    let reply = client.check(HealthCheckRequest::default()).await.unwrap();
    assert_eq!(reply.get_ref().status(), ServingStatus::Serving);

    // tonic's own Channel, over its own TLS.
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&ca))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .unwrap();
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(reply.get_ref().status(), ServingStatus::Serving);

    // reqwest with its defaults: a TLS handshake and an HTTP/2 reply (a
    // GET is not a gRPC call; any status will do).
    let http = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    let response = http
        .get(format!("https://localhost:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);

    // A crate that builds a rustls client configuration the plain way
    // finds one provider, the same connpool used.
    let _ = rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    assert!(rustls::crypto::CryptoProvider::get_default().is_some());
}
