//! The HTTP manager over TLS, HTTP/1.1 alone or either version by ALPN, against in-process rustls servers with
//! certificates made at test time (`support::tls`): ALPN choosing
//! `http/1.1`, a server that speaks only `h2`, and `HttpManager` following
//! the server's choice.

use std::convert::Infallible;

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
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::{Service, ServiceExt};

use crate::support::tls::{Ca, Leaf};

/// A TLS server offering `alpn`, answering with the protocol it
/// negotiated and the request's HTTP version; its `https` origin.
pub(super) async fn start(ca: &Ca, alpn: &[&[u8]]) -> Origin {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::from(ca.server(Leaf::Good, alpn, false));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(socket).await else {
                    return;
                };
                let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                let said = String::from_utf8_lossy(alpn.as_deref().unwrap_or(b"none")).into_owned();
                let service = service_fn(move |req: hyper::Request<Incoming>| {
                    let body = format!("{said} {:?}", req.version());
                    async move {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
                    }
                });
                let io = TokioIo::new(tls);
                if alpn.as_deref() == Some(b"h2") {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, service)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                }
            });
        }
    });
    Origin::https(("localhost", port))
}

#[tokio::test]
async fn alpn_picks_http11_where_the_server_offers_both() {
    let ca = Ca::new("http1 test CA");
    let dest = start(&ca, &[b"h2", b"http/1.1"]).await;
    let manager = HttpManager::http1().tls(TlsConfig::private_ca(&ca.pem).unwrap());
    let pool = Pool::builder(manager).build().await.unwrap();
    for _ in 0..2 {
        let mut conn = pool.get_for(&dest).await.unwrap();
        assert!(conn.is_tls());
        let request = http::Request::get("/")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let body = conn.send_request(request).await.unwrap().into_body();
        let body = body.collect().await.unwrap().to_bytes();
        assert_eq!(body, "http/1.1 HTTP/1.1");
    }
    assert_eq!(pool.state().counters.dials, 1, "kept alive over TLS");
}

#[tokio::test]
async fn a_server_speaking_only_h2_fails_the_dial_clearly() {
    let ca = Ca::new("http1 test CA");
    let dest = start(&ca, &[b"h2"]).await;
    let manager = HttpManager::http1().tls(TlsConfig::private_ca(&ca.pem).unwrap());
    let pool = Pool::builder(manager).build().await.unwrap();
    let e = pool.get_for(&dest).await.unwrap_err();
    assert!(
        matches!(e.manager_error(), Some(HttpError::Alpn { chose: None, .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("only HTTP/2"), "{e}");
}

/// One pool, one service, two servers: ALPN gives HTTP/2 with one and
/// HTTP/1.1 with the other, each lent as its version allows.
#[tokio::test]
async fn one_client_over_both_versions_as_alpn_picks() {
    let ca = Ca::new("auto test CA");
    let both = start(&ca, &[b"h2", b"http/1.1"]).await;
    let only_h1 = start(&ca, &[b"http/1.1"]).await;
    let manager = HttpManager::new().tls(TlsConfig::private_ca(&ca.pem).unwrap());
    let pool = Pool::builder(manager).build().await.unwrap();
    let svc = HttpService::by_authority(pool.clone());
    let call = |dest: &Origin| {
        let mut svc = svc.clone();
        let uri = format!("{dest}/");
        async move {
            let request = http::Request::get(uri)
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = svc.ready().await.unwrap().call(request).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            String::from_utf8_lossy(&body).into_owned()
        }
    };
    // Two at once on each (after a first call has opened the HTTP/2
    // connection: until a dial ends, nobody knows it will be shared):
    // the HTTP/2 connection is shared, HTTP/1.1 needs two connections.
    assert_eq!(call(&both).await, "h2 HTTP/2.0");
    let (a, b, c, d) = tokio::join!(call(&both), call(&both), call(&only_h1), call(&only_h1));
    assert_eq!([a, b], ["h2 HTTP/2.0", "h2 HTTP/2.0"]);
    assert_eq!([c, d], ["http/1.1 HTTP/1.1", "http/1.1 HTTP/1.1"]);
    let h2_conns = pool.key_state(&both).unwrap().open;
    let h1_conns = pool.key_state(&only_h1).unwrap().open;
    assert_eq!((h2_conns, h1_conns), (1, 2));
    // Kept alive: the next calls dial nothing.
    let dials = pool.state().counters.dials;
    call(&both).await;
    call(&only_h1).await;
    assert_eq!(pool.state().counters.dials, dials);
    let conn = pool.get_for(&both).await.unwrap();
    assert_eq!(conn.version(), http::Version::HTTP_2);
    assert!(conn.is_tls());
}
