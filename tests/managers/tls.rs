//! The managers over TLS against real rustls servers on 127.0.0.1, with
//! certificates made at test time (`support::tls`): TCP (`TcpManager::tls`),
//! HTTP/2 and gRPC (ALPN `h2`), and PostgreSQL with `ssl = on`. A handshake
//! is made once and the connection reused; an unknown CA, a wrong host
//! name, an expired certificate and a server without `h2` each fail the
//! dial with an error that says which; a server that requires a client
//! certificate gets one from a caller-given rustls configuration; a TLS
//! server that restarts is served again, over new handshakes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connpool::managers::tcp::{Destination, TcpManager};
use connpool::managers::tls::TlsConfig;
use connpool::{Error, Pool};
use parking_lot::Mutex;
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::support::fault::{Fault, FaultProxy};
use crate::support::outage::{behind, echo_own};
use crate::support::tls::{Ca, Leaf};

/// A TLS server on 127.0.0.1: an echo server, or an HTTP/2 server answering
/// `hello` (and recording each request's scheme). Counts handshakes.
struct TlsServer {
    port: u16,
    handshakes: Arc<AtomicUsize>,
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    schemes: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone, Copy)]
enum Serve {
    Echo,
    #[cfg(feature = "http")]
    Http2,
}

impl TlsServer {
    async fn start(config: Arc<ServerConfig>, serve: Serve) -> TlsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = TlsAcceptor::from(config);
        let handshakes = Arc::new(AtomicUsize::new(0));
        let schemes: Arc<Mutex<Vec<String>>> = Arc::default();
        let (count, seen) = (handshakes.clone(), schemes.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                #[cfg_attr(not(feature = "http"), allow(unused_variables))]
                let (acceptor, count, seen) = (acceptor.clone(), count.clone(), seen.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    match serve {
                        Serve::Echo => {
                            let mut buf = [0; 1024];
                            while let Ok(n @ 1..) = tls.read(&mut buf).await {
                                if tls.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                        #[cfg(feature = "http")]
                        Serve::Http2 => http2::serve(tls, seen).await,
                    }
                });
            }
        });
        TlsServer { port, handshakes, schemes }
    }

    fn localhost(&self) -> Destination {
        Destination::from(("localhost", self.port))
    }

    fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

async fn echo(conn: &mut (impl AsyncReadExt + AsyncWriteExt + Unpin)) -> std::io::Result<Vec<u8>> {
    conn.write_all(b"hello\n").await?;
    let mut reply = vec![0; 6];
    conn.read_exact(&mut reply).await?;
    Ok(reply)
}

fn tcp_tls(config: Arc<rustls::ClientConfig>) -> TcpManager {
    TcpManager::new().tls(TlsConfig::from_client_config(config))
}

#[tokio::test]
async fn tcp_over_tls_handshakes_once_and_reuses_the_connection() {
    let ca = Ca::new("test CA");
    let server = TlsServer::start(ca.server(Leaf::Good, &[], false), Serve::Echo).await;
    let pool = Pool::builder(tcp_tls(ca.client())).build().await.unwrap();
    for _ in 0..3 {
        let mut conn = pool.get_for(&server.localhost()).await.unwrap();
        assert_eq!(
            echo(&mut conn).await.unwrap(),
            b"hello\n",
            "through the guard"
        );
    }
    assert_eq!(pool.state().counters.dials, 1);
    assert_eq!(server.handshakes(), 1);

    // An address destination is checked against the certificate's IP.
    let addr: SocketAddr = ([127, 0, 0, 1], server.port).into();
    let mut conn = pool.get_for(&addr.into()).await.unwrap();
    assert_eq!(echo(&mut conn).await.unwrap(), b"hello\n");
}

/// The ALPN protocols `alpn` names are offered whether it is called
/// before or after `tls`, and the server's choice is on the connection.
#[tokio::test]
async fn alpn_is_offered_set_before_or_after_tls() {
    let ca = Ca::new("test CA");
    let server = TlsServer::start(ca.server(Leaf::Good, &[b"echo/1"], false), Serve::Echo).await;
    let config = || TlsConfig::private_ca(&ca.pem).unwrap();
    for manager in [
        TcpManager::new().alpn(&[b"echo/1"]).tls(config()),
        TcpManager::new().tls(config()).alpn(&[b"echo/1"]),
    ] {
        let pool = Pool::builder(manager).build().await.unwrap();
        let mut conn = pool.get_for(&server.localhost()).await.unwrap();
        assert_eq!(conn.alpn_protocol(), Some(&b"echo/1"[..]));
        assert_eq!(echo(&mut conn).await.unwrap(), b"hello\n");
    }
    let pool = Pool::builder(tcp_tls(ca.client())).build().await.unwrap();
    let conn = pool.get_for(&server.localhost()).await.unwrap();
    assert_eq!(conn.alpn_protocol(), None, "none offered, none chosen");
}

/// The manager's ping goes over TLS, as the borrowers' bytes do: every
/// checkout pings the idle connection (an echo of `PING`), and the
/// session still echoes after each (a ping written in plaintext would
/// have broken it).
#[tokio::test]
async fn a_line_ping_goes_over_tls() {
    let ca = Ca::new("test CA");
    let server = TlsServer::start(ca.server(Leaf::Good, &[], false), Serve::Echo).await;
    let manager = tcp_tls(ca.client()).line_ping("PING\n", "PING\n");
    let pool = Pool::builder(manager)
        .health_check(std::time::Duration::ZERO)
        .build()
        .await
        .unwrap();
    for _ in 0..3 {
        let mut conn = pool.get_for(&server.localhost()).await.unwrap();
        assert!(conn.is_tls());
        assert_eq!(echo(&mut conn).await.unwrap(), b"hello\n");
    }
    let k = pool.state().counters;
    assert_eq!(
        (k.dials, k.health_checks, k.health_check_failures),
        (1, 2, 0),
        "{k:?}"
    );
    assert_eq!(server.handshakes(), 1);
}

/// A reply its borrower never read (it wrote, then gave the connection
/// back before reading) does not reach the next borrower over TLS either:
/// bytes waiting on a TLS socket may be the server's session tickets, so
/// TLS reads them, and a connection whose bytes carry data is broken.
#[tokio::test]
async fn an_unread_reply_over_tls_does_not_reach_the_next_borrower() {
    let ca = Ca::new("test CA");
    let server = TlsServer::start(ca.server(Leaf::Good, &[], false), Serve::Echo).await;
    let pool = Pool::builder(tcp_tls(ca.client())).build().await.unwrap();
    let mut conn = pool.get_for(&server.localhost()).await.unwrap();
    assert_eq!(echo(&mut conn).await.unwrap(), b"hello\n");
    conn.write_all(b"stale\n").await.unwrap();
    // Its echo is on the socket, unread, when the connection goes back.
    conn.stream().readable().await.unwrap();
    drop(conn);

    let mut conn = pool.get_for(&server.localhost()).await.unwrap();
    assert_eq!(echo(&mut conn).await.unwrap(), b"hello\n", "its own echo");
    let k = pool.state().counters;
    assert_eq!((k.dials, k.closed_broken), (2, 1), "{k:?}");

    // Bytes that are only TLS's own (a new session's tickets, which TLS
    // 1.3 servers send after the handshake, unread) do not.
    let pool = Pool::builder(tcp_tls(ca.client())).build().await.unwrap();
    let conn = pool.get_for(&server.localhost()).await.unwrap();
    conn.stream().readable().await.unwrap();
    drop(conn);
    let mut conn = pool.get_for(&server.localhost()).await.unwrap();
    assert_eq!(echo(&mut conn).await.unwrap(), b"hello\n");
    assert_eq!(pool.state().counters.dials, 1, "the same connection");
}

/// An outage of a TLS echo server behind a `FaultProxy` (`fault` while
/// down), each call an `echo_own` under `deadline` (`TcpConn` watches its
/// reads: a late echo reaches nobody); after a restart, the calls go over
/// new handshakes.
async fn through(what: &str, fault: Fault, deadline: Duration) {
    let ca = Ca::new("test CA");
    let server = TlsServer::start(ca.server(Leaf::Good, &[], false), Serve::Echo).await;
    let proxy = FaultProxy::start(([127, 0, 0, 1], server.port).into()).await;
    let dest = Destination::from(("localhost", proxy.addr.port()));
    let pool = Pool::builder(tcp_tls(ca.client()))
        .checkout_timeout(deadline)
        .build()
        .await
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.get_for(&dest).await.unwrap());
    }
    drop(held);
    let before = server.handshakes();
    behind(what, deadline, &proxy, fault, || {
        echo_own(&pool, &dest, deadline)
    })
    .await;
    if fault == Fault::Reset {
        assert!(
            server.handshakes() > before,
            "new handshakes after the restart"
        );
    }
    pool.close().await;
}

/// A TLS server killed and started again on its port, as a client sees it
/// (every connection reset, and every new one while it is down), each echo
/// under a 2 s deadline, through `support::outage` (what it asserts is
/// there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_server_killed_and_restarted() {
    through("TLS", Fault::Reset, Duration::from_secs(2)).await;
}

/// A TLS server frozen (the proxy reads nothing: the kernel accepts and
/// acknowledges, nothing answers) and thawed, each echo under a 300 ms
/// deadline: the late echoes, which come at the thaw, reach nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_server_frozen_and_thawed() {
    through("TLS frozen", Fault::Freeze, Duration::from_millis(300)).await;
}

/// What the dial to a server presenting `leaf` says, for a client that
/// trusts `trusted`.
async fn tcp_dial_error(leaf: Leaf, trusted: &Ca, signer: &Ca) -> String {
    tcp_dial_error_with(
        TlsConfig::from_client_config(trusted.client()),
        leaf,
        signer,
    )
    .await
}

async fn tcp_dial_error_with(tls: TlsConfig, leaf: Leaf, signer: &Ca) -> String {
    let server = TlsServer::start(signer.server(leaf, &[], false), Serve::Echo).await;
    let pool = Pool::builder(TcpManager::new().tls(tls))
        .no_backoff()
        .build()
        .await
        .unwrap();
    match pool.get_for(&server.localhost()).await {
        Ok(_) => panic!("{leaf:?}: the dial succeeded"),
        Err(e @ Error::Connect(_)) => {
            crate::errors::reads_well(&e, Some("TLS handshake with localhost:"));
            e.to_string()
        }
        Err(e) => panic!("{leaf:?}: {e}"),
    }
}

#[tokio::test]
async fn an_unknown_ca_a_wrong_name_and_an_expired_certificate_fail_the_dial_saying_which() {
    let ca = Ca::new("test CA");
    let stranger = Ca::new("some other CA");
    let unknown = tcp_dial_error(Leaf::Good, &ca, &stranger).await;
    assert!(unknown.contains("UnknownIssuer"), "{unknown}");
    let name = tcp_dial_error(Leaf::OtherName, &ca, &ca).await;
    assert!(name.contains("not valid for name \"localhost\""), "{name}");
    let expired = tcp_dial_error(Leaf::Expired, &ca, &ca).await;
    assert!(expired.contains("certificate expired"), "{expired}");
}

/// A private CA from PEM: a bundle of two CAs trusts both; PEM without a
/// certificate, or that does not parse, is refused with an error that
/// says which.
#[tokio::test]
async fn a_private_ca_from_pem_in_one_line() {
    let (first, second) = (Ca::new("first CA"), Ca::new("second CA"));
    let bundle = format!("{}{}", first.pem, second.pem);
    let tls = TlsConfig::private_ca(&bundle).unwrap();
    for ca in [&first, &second] {
        let server = TlsServer::start(ca.server(Leaf::Good, &[], false), Serve::Echo).await;
        let pool = Pool::builder(TcpManager::new().tls(tls.clone()))
            .build()
            .await
            .unwrap();
        let mut conn = pool.get_for(&server.localhost()).await.unwrap();
        assert_eq!(echo(&mut conn).await.unwrap(), b"hello\n");
    }
    // Only these: Mozilla's roots are not added.
    let other = Ca::new("other CA");
    let err = tcp_dial_error_with(
        TlsConfig::private_ca(&first.pem).unwrap(),
        Leaf::Good,
        &other,
    )
    .await;
    assert!(err.contains("UnknownIssuer"), "{err}");

    let (_, key) = first.leaf_pem(Leaf::Good);
    let none = TlsConfig::private_ca(&key).unwrap_err().to_string();
    assert!(none.contains("no CERTIFICATE block"), "{none}");
    let bad = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
    let bad = TlsConfig::private_ca(bad).unwrap_err().to_string();
    assert!(bad.contains("TlsConfig::private_ca"), "{bad}");
    assert!(
        !none.contains("PRIVATE KEY") && !none.contains(&key[40..80]),
        "no key material in {none}"
    );
}

#[tokio::test]
async fn a_client_certificate_from_a_caller_given_config_passes_mutual_tls() {
    let ca = Ca::new("test CA");
    let server = TlsServer::start(ca.server(Leaf::Good, &[], true), Serve::Echo).await;

    let pool = Pool::builder(tcp_tls(ca.client_with_cert()))
        .build()
        .await
        .unwrap();
    let mut conn = pool.get_for(&server.localhost()).await.unwrap();
    assert_eq!(echo(&mut conn).await.unwrap(), b"hello\n");

    // Without a certificate the server refuses: in TLS 1.3 the client's
    // handshake completes first, and the refusal comes with the first read.
    let pool = Pool::builder(tcp_tls(ca.client()))
        .no_backoff()
        .build()
        .await
        .unwrap();
    let refused = match pool.get_for(&server.localhost()).await {
        Err(e) => e.to_string(),
        Ok(mut conn) => echo(&mut conn).await.unwrap_err().to_string(),
    };
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
}

#[cfg(feature = "http")]
mod http2 {
    use std::convert::Infallible;
    use std::sync::Arc;

    use bytes::Bytes;
    use connpool::Pool;
    use connpool::managers::HttpError;
    use connpool::managers::Origin;
    use connpool::managers::http::HttpManager;
    use connpool::managers::tls::TlsConfig;
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use parking_lot::Mutex;
    use tokio::net::TcpStream;
    use tokio_rustls::server::TlsStream;

    use super::{Serve, TlsServer};
    use crate::support::tls::{Ca, Leaf};

    /// Serves HTTP/2 on `tls`: `hello` to every request, whose scheme goes
    /// into `seen`.
    pub(super) async fn serve(tls: TlsStream<TcpStream>, seen: Arc<Mutex<Vec<String>>>) {
        let service = service_fn(move |req: hyper::Request<Incoming>| {
            seen.lock()
                .push(req.uri().scheme_str().unwrap_or("").to_owned());
            async {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                    b"hello",
                ))))
            }
        });
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(tls), service)
            .await;
    }

    #[tokio::test]
    async fn http2_over_tls_speaks_h2_with_the_https_scheme() {
        let ca = Ca::new("test CA");
        let server = TlsServer::start(ca.server(Leaf::Good, &[b"h2"], false), Serve::Http2).await;
        let manager = HttpManager::http2().tls(TlsConfig::private_ca(&ca.pem).unwrap());
        let pool = Pool::builder(manager).build().await.unwrap();
        for _ in 0..3 {
            let mut conn = pool
                .get_for(&Origin::https(server.localhost()))
                .await
                .unwrap();
            let request = http::Request::get("/").body(Full::default()).unwrap();
            let body = conn.send_request(request).await.unwrap().into_body();
            assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
        }
        assert_eq!((pool.state().counters.dials, server.handshakes()), (1, 1));
        assert_eq!(*server.schemes.lock(), ["https", "https", "https"]);
    }

    #[tokio::test]
    async fn a_tls_server_without_h2_in_alpn_fails_the_http2_dial() {
        let ca = Ca::new("test CA");
        // One that offers only HTTP/1.1 (rustls refuses the handshake), one
        // that does no ALPN at all (the handshake completes, with no protocol).
        for offers in [&[&b"http/1.1"[..]][..], &[]] {
            let server = TlsServer::start(ca.server(Leaf::Good, offers, false), Serve::Http2).await;
            let manager = HttpManager::http2().tls(TlsConfig::private_ca(&ca.pem).unwrap());
            let pool = Pool::builder(manager).no_backoff().build().await.unwrap();
            let e = pool.get_for(&server.localhost().into()).await.unwrap_err();
            assert!(
                matches!(e.manager_error(), Some(HttpError::Alpn { chose: None, .. })),
                "{e:?}"
            );
            let message = crate::errors::reads_well(&e, None);
            assert!(message.contains("refused h2 in ALPN"), "{message}");
        }
    }
}

#[cfg(feature = "grpc")]
mod grpc {
    use connpool::Pool;
    use connpool::managers::grpc::GrpcManager;
    use connpool::managers::service::HttpService;
    use connpool::managers::tls::TlsConfig;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    use crate::support::tls::{Ca, Leaf};

    #[tokio::test]
    async fn grpc_over_tls_calls_through_the_pooled_service() {
        let ca = Ca::new("test CA");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = TlsAcceptor::from(ca.server(Leaf::Good, &[b"h2"], false));
        let (_reporter, health) = tonic_health::server::health_reporter();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (acceptor, health) = (acceptor.clone(), health.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(health))
                        .await;
                });
            }
        });

        let manager = GrpcManager::new().tls(TlsConfig::private_ca(&ca.pem).unwrap());
        let pool = Pool::builder(manager).build().await.unwrap();
        let mut client = HealthClient::new(HttpService::new(pool.clone(), ("localhost", port)));
        for _ in 0..3 {
            let reply = client.check(HealthCheckRequest::default()).await.unwrap();
            assert_eq!(reply.get_ref().status(), ServingStatus::Serving);
        }
        assert_eq!(pool.state().counters.dials, 1);
    }
}

#[cfg(feature = "postgres")]
mod postgres;

/// The operating system's store (`TlsConfig::native_roots`), read from the
/// file `SSL_CERT_FILE` names: a test binary of its own, started with that
/// variable, since the environment is the process's.
#[cfg(feature = "native-roots")]
mod native_roots {
    use super::*;

    const STORE: &str = "CONNPOOL_TEST_NATIVE_STORE";

    #[test]
    fn a_ca_in_the_operating_system_s_store_is_trusted_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("ca-bundle.pem");
        let run = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tls::native_roots::inner",
                "--ignored",
                "--nocapture",
            ])
            .env("SSL_CERT_FILE", &store)
            .env("SSL_CERT_DIR", dir.path().join("none"))
            .env(STORE, &store)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success() && out.contains("1 passed"),
            "{out}{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }

    /// Run by the test above, in its own process.
    #[tokio::test]
    #[ignore = "run by a_ca_in_the_operating_system_s_store_is_trusted_and_no_other"]
    async fn inner() {
        let store = std::env::var(STORE).expect("started by the test above");
        // An empty store: an error that says so.
        std::fs::write(&store, "").unwrap();
        let empty = TlsConfig::native_roots().unwrap_err().to_string();
        assert!(
            empty.contains("no root certificate from the operating system"),
            "{empty}"
        );

        let ca = Ca::new("the system's CA");
        std::fs::write(&store, &ca.pem).unwrap();
        let tls = TlsConfig::native_roots().unwrap();
        let server = TlsServer::start(ca.server(Leaf::Good, &[], false), Serve::Echo).await;
        let pool = Pool::builder(TcpManager::new().tls(tls.clone()))
            .build()
            .await
            .unwrap();
        let mut conn = pool.get_for(&server.localhost()).await.unwrap();
        assert_eq!(echo(&mut conn).await.unwrap(), b"hello\n");

        let other = Ca::new("a CA the store does not hold");
        let err = tcp_dial_error_with(tls, Leaf::Good, &other).await;
        assert!(err.contains("UnknownIssuer"), "{err}");
    }
}
