//! The scheme is part of every HTTP key and decides TLS: an `https` URI is
//! never sent in plaintext, `http` never goes over TLS, and `http://h:p`
//! and `https://h:p` never share a connection. Against an in-process
//! plaintext hyper server that records what reached it, and the rustls
//! server of `http1_tls`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use connpool::Pool;
use connpool::managers::HttpError;
use connpool::managers::Origin;
use connpool::managers::http::HttpManager;
use connpool::managers::service::HttpService;
use connpool::managers::tls::TlsConfig;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpListener;

use super::http1::{call, get};
use crate::support::tls::Ca;

/// A plaintext HTTP/1.1 server: every connection it accepts and every
/// request path that reached it, in order.
struct Plain {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Plain {
    async fn start() -> Plain {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                log.lock().push("accepted".to_owned());
                let log = Arc::clone(&log);
                let service = service_fn(move |req: hyper::Request<Incoming>| {
                    log.lock().push(req.uri().path().to_owned());
                    async {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("plain"))))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service),
                );
            }
        });
        Plain { addr, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().clone()
    }
}

/// The pool's error under a service error: the manager's, from the dial.
fn dial_error(e: &HttpError) -> &HttpError {
    match e {
        HttpError::Pool(e) => e.manager_error().expect("a dial error"),
        other => panic!("not the pool's error: {other:?}"),
    }
}

/// The crate's reported bug: over a plaintext manager, an `https` URI went
/// out in plaintext and the plain server answered. It is refused before
/// any dial, with an error that says why; the server sees nothing of it.
#[tokio::test]
async fn an_https_uri_over_a_plaintext_manager_is_refused_before_any_byte() {
    let server = Plain::start().await;
    let pool = Pool::builder(HttpManager::http1()).build().await.unwrap();
    let mut by_authority = HttpService::by_authority(pool.clone());
    let port = server.addr.port();
    // Its name is the protocol's, whatever the version.
    assert!(
        format!("{by_authority:?}").starts_with("HttpService "),
        "{by_authority:?}"
    );

    let e = call(
        &mut by_authority,
        get(&format!("https://127.0.0.1:{port}/secret")),
    )
    .await
    .unwrap_err();
    let HttpError::NoTls { origin } = dial_error(&e) else {
        panic!("{e:?}");
    };
    assert_eq!(*origin, format!("https://127.0.0.1:{port}"));
    let message = e.to_string();
    assert!(message.contains("never sent in plaintext"), "{message}");

    // A fixed route does not make an https request plaintext either.
    let mut fixed = HttpService::new(pool.clone(), server.addr);
    let e = call(
        &mut fixed,
        get(&format!("https://127.0.0.1:{port}/also-secret")),
    )
    .await
    .unwrap_err();
    assert!(matches!(dial_error(&e), HttpError::NoTls { .. }), "{e:?}");

    // The same server over http: served, and the first thing it ever saw.
    let body = call(
        &mut by_authority,
        get(&format!("http://127.0.0.1:{port}/plain")),
    )
    .await
    .unwrap();
    assert_eq!(body, "plain");
    assert_eq!(server.seen(), ["accepted", "/plain"]);
}

/// A manager with TLS: `https` over TLS, `http` in plaintext (Go's rule),
/// an origin without a scheme over TLS; and `http://h:p` never borrows the
/// connection of `https://h:p`.
#[tokio::test]
async fn with_tls_configured_the_scheme_still_decides() {
    let ca = Ca::new("scheme test CA");
    let secure = super::http1_tls::start(&ca, &[b"http/1.1"]).await;
    let plain = Plain::start().await;
    let manager = HttpManager::http1().tls(TlsConfig::private_ca(&ca.pem).unwrap());
    let pool = Pool::builder(manager).build().await.unwrap();
    let mut svc = HttpService::by_authority(pool.clone());

    let body = call(&mut svc, get(&format!("{secure}/"))).await.unwrap();
    assert_eq!(body, "http/1.1 HTTP/1.1");
    let plain_uri = format!("http://127.0.0.1:{}/plain", plain.addr.port());
    assert_eq!(call(&mut svc, get(&plain_uri)).await.unwrap(), "plain");
    assert_eq!(plain.seen(), ["accepted", "/plain"]);

    // `http` to the TLS server's own host and port: its own key, dialed in
    // plaintext, so the TLS server cannot make sense of it; the https
    // connection idle beside it is not lent to it.
    let https_key = secure.clone();
    let http_key = Origin::http(secure.destination().clone());
    assert!(call(&mut svc, get(&format!("{http_key}/"))).await.is_err());
    assert_eq!(pool.key_state(&https_key).unwrap().open, 1);
    assert_eq!(pool.key_state(&https_key).unwrap().idle, 1);
    assert_eq!(pool.state().counters.dials, 3);

    // No scheme: as configured, over TLS.
    let bare = Origin::from(secure.destination().clone());
    let mut conn = pool.get_for(&bare).await.unwrap();
    assert!(conn.is_tls());
    let response = conn.send_request(get("/")).await.unwrap();
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "http/1.1 HTTP/1.1"
    );
}

/// Every HTTP manager refuses an `https` origin without a TLS
/// configuration, in its own typed error.
#[tokio::test]
async fn every_http_manager_refuses_https_without_tls() {
    let server = Plain::start().await;
    let https = Origin::https(server.addr);

    let auto = Pool::builder(HttpManager::new()).build().await.unwrap();
    let e = auto.get_for(&https).await.unwrap_err();
    assert!(
        matches!(e.manager_error(), Some(HttpError::NoTls { .. })),
        "{e:?}"
    );

    let h2 = Pool::builder(connpool::managers::http::HttpManager::new())
        .build()
        .await
        .unwrap();
    let e = h2.get_for(&https).await.unwrap_err();
    assert!(
        matches!(
            e.manager_error(),
            Some(connpool::managers::HttpError::NoTls { .. })
        ),
        "{e:?}"
    );

    #[cfg(feature = "grpc")]
    {
        let grpc = Pool::builder(connpool::managers::grpc::GrpcManager::new())
            .build()
            .await
            .unwrap();
        let e = grpc.get_for(&https).await.unwrap_err();
        assert!(
            matches!(
                e.manager_error(),
                Some(connpool::managers::HttpError::NoTls { .. })
            ),
            "{e:?}"
        );
    }
    assert!(server.seen().is_empty(), "{:?}", server.seen());
}
