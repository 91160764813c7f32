//! The HTTP manager speaking HTTP/1.1, and the service's stale-connection retry: against a
//! real nginx (`support::nginx`, started per test) for keep-alive reuse,
//! `keepalive_requests` and the `keepalive_timeout` race; against scripted
//! in-process servers on 127.0.0.1 (raw HTTP/1.1 written by hand, so each
//! test says exactly what the server does) for the rest. Real I/O; no test
//! sleeps to synchronize (the race test's pauses are its workload). Over
//! TLS: `http1_tls`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use connpool::Pool;
use connpool::managers::HttpError;
use connpool::managers::Origin;
use connpool::managers::http::{HttpConn, HttpManager};
use connpool::managers::service::HttpService;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

use crate::support::nginx::Nginx;
use scripted::{Reply, Scripted, ok};

mod restart;
mod retry;
pub(crate) mod scripted;

pub(super) type Svc = HttpService<HttpManager>;

async fn pool() -> Pool<HttpManager> {
    Pool::builder(HttpManager::http1())
        .max_open_per_key(64)
        .max_idle_per_key(64)
        .build()
        .await
        .unwrap()
}

pub(super) fn get(path: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(path)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn post(path: &str) -> http::Request<Full<Bytes>> {
    http::Request::post(path)
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap()
}

/// One request through the service, its body read to the end.
pub(super) async fn call(
    svc: &mut Svc,
    request: http::Request<Full<Bytes>>,
) -> Result<String, HttpError> {
    let response = svc.ready().await?.call(request).await?;
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await?;
    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
}

/// One request on a pooled connection, its body read to the end.
async fn exchange(conn: &mut HttpConn) -> String {
    let response = conn.send_request(get("/")).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

// ---- nginx ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_keep_alive_reuses_connections() {
    let Some(nginx) = Nginx::start("keepalive_timeout 60s;") else {
        return;
    };
    let pool = pool().await;
    let svc = Svc::new(pool.clone(), nginx.addr);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let mut svc = svc.clone();
        tasks.spawn(async move {
            for _ in 0..50 {
                assert_eq!(call(&mut svc, get("/")).await.unwrap(), "ok\n");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    // 200 requests on a handful of connections: 4, and maybe a few more
    // that a waiting getter dialed before a returned one reached it (the
    // pool's race of an idle connection against a dial, as Go's).
    let dials = pool.state().counters.dials;
    assert!((1..=8).contains(&dials), "{dials} connections for 4 tasks");
    assert_eq!(
        nginx.accepted(),
        dials,
        "nginx saw every connection the pool opened, no other"
    );
    assert_eq!(svc.retries(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_keepalive_requests_closes_after_three_without_a_failure() {
    let Some(nginx) = Nginx::start("keepalive_requests 3;") else {
        return;
    };
    let pool = pool().await;
    let mut svc = Svc::new(pool.clone(), nginx.addr);
    for _ in 0..30 {
        assert_eq!(call(&mut svc, get("/")).await.unwrap(), "ok\n");
    }
    // nginx says `Connection: close` on each third response: 10 connections,
    // each closed by the client after that response, none found stale.
    assert_eq!(nginx.accepted(), 10);
    assert_eq!(pool.state().counters.dials, 10);
    assert_eq!(pool.state().counters.closed_by_server, 10);
    assert_eq!(pool.state().counters.closed_broken, 0);
    assert_eq!(svc.retries(), 0);
}

/// Idle connections racing nginx's `keepalive_timeout`: each task pauses
/// 150–260 ms between requests against a 200 ms timeout, so about half of
/// its connections are closed by nginx while idle, some just as a request
/// is written. Not one idempotent request may fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_keepalive_timeout_race_fails_no_idempotent_request() {
    let Some(nginx) = Nginx::start("keepalive_timeout 200ms;") else {
        return;
    };
    const TASKS: usize = 64;
    const REQUESTS: usize = 32;
    let failures = Arc::new(AtomicUsize::new(0));
    let mut services = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        // One pool per task (one client per task): its connection's idle
        // time is the task's pause.
        let mut svc = Svc::new(pool().await, nginx.addr);
        services.push(svc.clone());
        let failures = Arc::clone(&failures);
        tasks.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(t as u64);
            for _ in 0..REQUESTS {
                if let Err(e) = call(&mut svc, get("/")).await {
                    eprintln!("failed: {e}");
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(rng.u64(150..=260))).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let retries: u64 = services.iter().map(|s| s.retries()).sum();
    let accepted = nginx.accepted();
    eprintln!(
        "{} requests, {accepted} connections, {retries} retried",
        TASKS * REQUESTS
    );
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    // The race really ran: nginx closed many idle connections.
    assert!(
        accepted as usize > TASKS * REQUESTS / 4,
        "{accepted} connections"
    );
    assert!(retries as usize <= TASKS * REQUESTS);
}

// ---- scripted servers: keep-alive ----

#[tokio::test]
async fn connection_close_and_http10_retire_the_connection() {
    for reply in [
        "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
        "HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok",
    ] {
        static REPLY: parking_lot::Mutex<&str> = parking_lot::Mutex::new("");
        *REPLY.lock() = reply;
        // The server keeps the connection: only the header says to close.
        let server = Scripted::start(|_, _| Reply::Send(REPLY.lock().to_string())).await;
        let pool = pool().await;
        let mut svc = Svc::new(pool.clone(), server.addr);
        for _ in 0..3 {
            assert_eq!(call(&mut svc, get("/")).await.unwrap(), "ok");
        }
        assert_eq!(server.accepted(), 3, "{reply:?}");
        // Closed as the server said: not broken.
        let counters = pool.state().counters;
        assert_eq!(counters.closed_by_server, 3, "{reply:?}");
        assert_eq!(counters.closed_broken, 0, "{reply:?}");
        assert_eq!(svc.retries(), 0);
    }
}

/// A request that says `Connection: close` ends its connection (hyper
/// closes it after the response): the connection is never lent again, so
/// the next request never meets a connection hyper is closing.
#[tokio::test]
async fn a_request_saying_close_retires_its_connection() {
    // The server keeps every connection: only the request says to close.
    let server = Scripted::start(|_, _| Reply::Send(ok("", "ok"))).await;
    let pool = pool().await;
    let dest = Origin::from(server.addr);
    for version in [http::Version::HTTP_11, http::Version::HTTP_10] {
        let mut conn = pool.get_for(&dest).await.unwrap();
        let mut request = get("/");
        if version == http::Version::HTTP_11 {
            request.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        *request.version_mut() = version;
        let response = conn.send_request(request).await.unwrap();
        response.into_body().collect().await.unwrap();
        assert!(!conn.is_reusable(), "{version:?}");
    }
    assert_eq!(pool.state().counters.closed_broken, 2);
    assert_eq!(pool.state().idle, 0);

    // Through the service, many in a row: each on a connection of its own,
    // none failing.
    let mut svc = Svc::new(pool.clone(), server.addr);
    for _ in 0..50 {
        let mut request = get("/");
        request.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
        assert_eq!(call(&mut svc, request).await.unwrap(), "ok");
    }
    assert_eq!(server.accepted(), 52);
    assert_eq!(svc.retries(), 0);
}

#[tokio::test]
async fn a_server_closing_without_saying_so_costs_no_failure() {
    let server = Scripted::start(|_, _| Reply::SendAndClose(ok("", "ok"))).await;
    let mut svc = Svc::new(pool().await, server.addr);
    for _ in 0..3 {
        assert_eq!(call(&mut svc, get("/")).await.unwrap(), "ok");
    }
    assert_eq!(server.accepted(), 3);
    // Either the close was seen before the checkout (no retry), or the
    // request met it and went again: never an error.
    assert!(svc.retries() <= 2);
}

#[tokio::test]
async fn keep_alive_timeout_and_max_are_obeyed() {
    // Counts down as Apache does: `max` is the requests left after this one.
    fn counting_down(_: usize, req: usize) -> Reply {
        let headers = format!("keep-alive: timeout=5, max={}\r\n", 3 - req.min(3));
        Reply::Send(ok(&headers, "ok"))
    }
    let server = Scripted::start(counting_down).await;
    let pool = pool().await;
    let dest = Origin::from(server.addr);
    let mut conn = pool.get_for(&dest).await.unwrap();
    let first = conn.local_addr();
    assert_eq!(exchange(&mut conn).await, "ok");
    assert_eq!(conn.keep_alive_idle_limit(), Some(Duration::from_secs(4)));
    assert_eq!(conn.keep_alive_remaining(), Some(3));
    drop(conn);

    // Idle 3.9 s of the 4 s it may: still reused.
    tokio::time::pause();
    tokio::time::advance(Duration::from_millis(3900)).await;
    tokio::time::resume();
    let mut conn = pool.get_for(&dest).await.unwrap();
    assert_eq!(conn.local_addr(), first, "the same connection");
    assert_eq!(exchange(&mut conn).await, "ok");
    assert_eq!(conn.keep_alive_remaining(), Some(2));
    drop(conn);

    // Idle 4 s: closed at checkout, a new one dialed.
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(4)).await;
    tokio::time::resume();
    let mut conn = pool.get_for(&dest).await.unwrap();
    let second = conn.local_addr();
    assert_ne!(second, first, "a new connection");
    assert_eq!(server.accepted(), 2);
    // max=3: three more requests after the first, then it is retired.
    for left in [3, 2, 1, 0] {
        assert_eq!(exchange(&mut conn).await, "ok");
        assert_eq!(conn.keep_alive_remaining(), Some(left));
    }
    assert!(!conn.is_reusable());
    drop(conn);
    let conn = pool.get_for(&dest).await.unwrap();
    assert_ne!(conn.local_addr(), second, "a new connection");
    assert_eq!(server.accepted(), 3);
}

#[tokio::test]
async fn a_half_read_body_is_never_lent_again() {
    fn big(_: usize, _: usize) -> Reply {
        Reply::Send(ok("", &"x".repeat(1 << 20)))
    }
    let server = Scripted::start(big).await;
    let pool = pool().await;
    let dest = Origin::from(server.addr);

    // Directly: one frame read, the body dropped, the connection given back.
    let mut conn = pool.get_for(&dest).await.unwrap();
    let mut body = conn.send_request(get("/")).await.unwrap().into_body();
    body.frame().await.unwrap().unwrap();
    drop(body);
    drop(conn);
    assert_eq!(pool.state().counters.closed_broken, 1);

    // Through the service: the response dropped half-read.
    let mut svc = Svc::new(pool.clone(), dest.clone());
    let mut body = svc
        .ready()
        .await
        .unwrap()
        .call(get("/"))
        .await
        .unwrap()
        .into_body();
    body.frame().await.unwrap().unwrap();
    drop(body);
    assert_eq!(pool.state().counters.closed_broken, 2);

    // A body read to its end leaves a reusable connection.
    assert_eq!(call(&mut svc, get("/")).await.unwrap().len(), 1 << 20);
    assert_eq!(call(&mut svc, get("/")).await.unwrap().len(), 1 << 20);
    assert_eq!(server.accepted(), 3);
    assert_eq!(svc.retries(), 0);
}

#[tokio::test]
async fn in_plaintext_new_speaks_http11_and_http2_speaks_h2c() {
    use connpool::Pooled;
    use connpool::managers::http::HttpManager;

    let server = Scripted::start(|_, _| Reply::Send(ok("", "ok"))).await;
    let pool = Pool::builder(HttpManager::new()).build().await.unwrap();
    let mut conn = pool.get_for(&Origin::from(server.addr)).await.unwrap();
    assert_eq!(conn.version(), http::Version::HTTP_11);
    assert!(!Pooled::is_shared(&conn));
    // A clone of an HTTP/1.1 connection (the pool makes none) carries
    // nothing but its addresses: it fails, and the connection itself is
    // untouched.
    let mut clone = (*conn).clone();
    assert_eq!(clone.local_addr(), conn.local_addr());
    assert!(!clone.is_reusable());
    let e = clone.send_request(get("/")).await.unwrap_err();
    assert!(e.is_canceled(), "{e}");
    let response = conn.send_request(get("/")).await.unwrap();
    assert_eq!(response.status(), 200);
    // Read to its end, the body gives the connection back reusable.
    response.into_body().collect().await.unwrap();
    assert!(conn.is_reusable());

    // h2c: an in-process hyper HTTP/2 server, spoken to with prior knowledge.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        Bytes::from_static(b"h2c"),
                    )))
                });
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                        .await;
            });
        }
    });
    let manager = HttpManager::http2();
    let pool = Pool::builder(manager).build().await.unwrap();
    let mut conn = pool.get_for(&Origin::from(addr)).await.unwrap();
    assert_eq!(conn.version(), http::Version::HTTP_2);
    assert!(
        Pooled::is_shared(&conn),
        "an HTTP/2 connection is lent shared"
    );
    let body = conn.send_request(get("/")).await.unwrap().into_body();
    assert_eq!(body.collect().await.unwrap().to_bytes(), "h2c");
}

/// A checked-out HTTP/1.1 connection used as a `tower::Service` keeps the
/// same keep-alive rules: reusable once a response body was read to its
/// end, not while it is unread, and never after the server said
/// `Connection: close`.
#[tokio::test]
async fn a_connection_as_a_tower_service_follows_keep_alive() {
    fn close_on_second(_: usize, req: usize) -> Reply {
        match req {
            0 => Reply::Send(ok("", "first")),
            _ => Reply::Send(ok("connection: close\r\n", "second")),
        }
    }
    let server = Scripted::start(close_on_second).await;
    let pool = pool().await;
    let mut conn = pool.get_for(&Origin::from(server.addr)).await.unwrap();
    let svc: &mut HttpConn = &mut conn;

    let response = svc.ready().await.unwrap().call(get("/")).await.unwrap();
    assert!(!svc.is_reusable(), "its body is unread");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "first");
    assert!(svc.is_reusable(), "the body was read to its end");

    let response = svc.ready().await.unwrap().call(get("/")).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "second");
    assert!(
        svc.is_draining() && !svc.is_reusable(),
        "the server said close"
    );
    drop(conn);
    let counters = pool.state().counters;
    assert_eq!((counters.closed_by_server, counters.closed_broken), (1, 0));
}
