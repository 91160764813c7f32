//! The HTTP manager speaking HTTP/2 against a real in-process hyper HTTP/2 server on
//! 127.0.0.1 (and, for keepalive, behind `support::fault`'s proxy switched
//! into a black hole). Real I/O, real clock: every wait is bounded by a few seconds that only a
//! broken implementation runs into; conditions are polled every 1 ms; no
//! test sleeps to synchronize.

use std::time::{Duration, Instant};

use bytes::Bytes;
use connpool::managers::HttpError;
use connpool::managers::Origin;
use connpool::managers::http::{HttpConn, HttpManager};
use connpool::{ConnectError, Error, Health, Manager, Pool, Pooled};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use tokio::net::TcpListener;
use tokio::time::timeout;

use crate::support::fault::FaultProxy;
use crate::support::grpc::assert_keepalive_verdict;
use crate::support::grpc::raw::{self, GoawayOnConnect};
use crate::support::{BOUND, ZERO, counts, until};

mod server;

use server::{Cmd, H2Server};

/// One GET of `path` on `conn`: its body, as text (within [`BOUND`]).
async fn get(conn: &mut HttpConn, path: &'static str) -> String {
    let req = Request::get(path).body(Full::new(Bytes::new())).unwrap();
    let resp = timeout(BOUND, conn.send_request(req))
        .await
        .expect("response within 5 s")
        .unwrap();
    assert!(resp.status().is_success());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

fn pool_of(manager: HttpManager) -> connpool::Builder<HttpManager> {
    Pool::builder(manager).health_check(None)
}

// Requests round-trip through pooled connections; the server's stream limit
// is read from its SETTINGS and is the lending limit.
#[tokio::test]
async fn requests_round_trip_and_the_stream_limit_is_read() {
    let server = H2Server::start(Some(7)).await;
    let dest = Origin::from(server.addr);
    let pool = pool_of(HttpManager::http2()).build().await.unwrap();
    let mut conn = pool.get_for(&dest).await.unwrap();
    assert_eq!(get(&mut conn, "/").await, "hello");
    // An absolute URI is sent as is.
    let uri = format!("http://{}/", server.addr);
    let req = Request::get(uri).body(Full::new(Bytes::new())).unwrap();
    let resp = conn.send_request(req).await.unwrap();
    assert!(resp.status().is_success());
    assert_eq!(conn.peer_max_concurrent_streams(), Some(7));
    assert_eq!(pool.manager().lending(&conn).max_borrowers(), 7);
    assert!(!conn.is_draining() && !pool.manager().health(&mut conn).is_broken());
    assert_eq!(conn.peer_addr(), server.addr);
    let local = conn.local_addr();
    drop(conn);

    // The same connection again, from the idle list.
    let mut conn = pool.get_for(&dest).await.unwrap();
    assert_eq!(conn.local_addr(), local);
    assert_eq!(get(&mut conn, "/").await, "hello");
    pool.manager().ping(&mut conn).await.unwrap();
    assert_eq!(server.accepted(), 1);
    drop(conn);

    // A server without a stream limit: lent up to usize::MAX (the pool clamps).
    let unlimited = H2Server::start(None).await;
    let conn = pool.get_for(&Origin::from(unlimited.addr)).await.unwrap();
    assert_eq!(conn.peer_max_concurrent_streams(), None);
    assert_eq!(pool.manager().lending(&conn).max_borrowers(), usize::MAX);
    drop(conn);
    pool.close().await;
}

// A peer that does not speak HTTP/2 fails the dial with a clear error: one
// that stays silent (no SETTINGS within the timeout), one that answers like
// an HTTP/1 server and closes.
#[tokio::test]
async fn a_peer_that_sends_no_settings_fails_the_dial() {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let http1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http1_addr = http1.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = http1.accept().await {
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")
                .await;
        }
    });
    let manager = HttpManager::http2().settings_timeout(Duration::from_millis(300));
    let pool = pool_of(manager).no_backoff().build().await.unwrap();

    let started = Instant::now();
    let err = pool.get_for(&Origin::from(silent_addr)).await.unwrap_err();
    let waited = started.elapsed();
    match &err {
        Error::Connect(ConnectError::Manager(e)) => {
            assert!(matches!(**e, HttpError::NoSettings { .. }), "{e:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("SETTINGS"), "{err}");
    assert!(
        waited >= Duration::from_millis(300) && waited < BOUND,
        "{waited:?}"
    );
    println!("silent peer: {err} (after {waited:?})");

    let err = pool.get_for(&Origin::from(http1_addr)).await.unwrap_err();
    match &err {
        Error::Connect(ConnectError::Manager(e)) => {
            assert!(matches!(**e, HttpError::ClosedBeforeSettings), "{e:?}")
        }
        other => panic!("{other:?}"),
    }
    println!("HTTP/1 peer: {err}");
    assert_eq!(pool.state().open, 0);
    pool.close().await;
}

// The server closes the connection (no GOAWAY): health turns broken, the
// pool drops it and dials a new one.
#[tokio::test]
async fn a_connection_the_server_closed_is_broken_and_replaced() {
    let server = H2Server::start(Some(10)).await;
    let dest = Origin::from(server.addr);
    let pool = pool_of(HttpManager::http2()).build().await.unwrap();
    let mut conn = pool.get_for(&dest).await.unwrap();
    assert_eq!(get(&mut conn, "/").await, "hello");
    let old = conn.local_addr();
    let mut handle = (*conn).clone();
    drop(conn);

    server.each(|| Cmd::Close);
    let took = until("broken after the server closed", || {
        pool.manager().health(&mut handle).is_broken()
    })
    .await;
    println!("server close seen as broken after {took:?}");
    assert!(pool.manager().ping(&mut handle).await.is_err());

    let mut conn = pool.get_for(&dest).await.unwrap();
    assert_ne!(conn.local_addr(), old, "the dead connection was lent");
    assert_eq!(get(&mut conn, "/").await, "hello");
    assert_eq!(server.accepted(), 2);
    drop(conn);
    pool.close().await;
}

// The server sends GOAWAY (graceful shutdown) while a request is in flight:
// the connection is draining (health), the request in flight still
// completes, and the next getter gets a new connection.
#[tokio::test]
async fn goaway_drains_the_connection() {
    let server = H2Server::start(Some(10)).await;
    let dest = Origin::from(server.addr);
    let pool = pool_of(HttpManager::http2()).build().await.unwrap();
    let mut conn = pool.get_for(&dest).await.unwrap();
    let old = conn.local_addr();
    let mut slow = (*conn).clone();
    let in_flight = tokio::spawn(async move { get(&mut slow, "/slow").await });
    until("the slow request reached the server", || {
        server.in_flight() == 1
    })
    .await;

    server.each(|| Cmd::GoAway);
    until("GOAWAY seen", || conn.is_draining()).await;
    assert!(pool.manager().health(&mut conn).is_broken());
    assert_eq!(conn.goaway_error_code(), Some(0));
    assert_eq!(pool.manager().health(&mut conn), Health::ClosedByServer);
    let err = pool.manager().ping(&mut conn).await.unwrap_err();
    assert!(err.to_string().contains("GOAWAY"), "{err}");

    server.release();
    assert_eq!(
        in_flight.await.unwrap(),
        "slow",
        "in-flight request finished"
    );
    drop(conn);
    // A graceful GOAWAY: closed as the server said, not broken.
    let counters = pool.state().counters;
    assert_eq!((counters.closed_by_server, counters.closed_broken), (1, 0));
    let mut conn = pool.get_for(&dest).await.unwrap();
    assert_ne!(conn.local_addr(), old);
    assert_eq!(get(&mut conn, "/").await, "hello");
    drop(conn);
    pool.close().await;
}

// A server that answers a new connection with SETTINGS and GOAWAY in one
// write (shutting down, or at its connection limit): the connection is
// draining before it was ever used, so the dial fails with an error that
// names the GOAWAY, called directly and through a pool (which then holds
// nothing). (A GOAWAY that comes later, on a connection already handed out,
// is `health`: see `goaway_drains_the_connection`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_draining_on_arrival_fails_the_dial() {
    let server = GoawayOnConnect::start(0, b"shutting down").await;
    let dest = Origin::from(server.addr);
    let err = timeout(BOUND, HttpManager::http2().connect(&dest))
        .await
        .expect("dial within 5 s")
        .unwrap_err();
    match &err {
        HttpError::ClosedDuringSetup { goaway: Some(0), debug_data } => {
            assert_eq!(debug_data.as_deref(), Some("shutting down"))
        }
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    raw::assert_goaway_during_setup(&message);
    println!("{message}");

    let pool = pool_of(HttpManager::http2())
        .no_backoff()
        .build()
        .await
        .unwrap();
    let err = timeout(BOUND, pool.get_for(&dest))
        .await
        .expect("get within 5 s")
        .unwrap_err();
    match &err {
        Error::Connect(ConnectError::Manager(e)) => assert!(
            matches!(**e, HttpError::ClosedDuringSetup { goaway: Some(0), .. }),
            "{e:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("GOAWAY"), "{err}");
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(server.accepted(), 2);
    pool.close().await;
}

// HTTP/2 keepalive against a server that stops answering (a black-holed
// proxy: no FIN, no RST): hyper's PING, on the pool's keepalive schedule,
// goes unanswered and the connection is declared dead within interval +
// timeout.
#[tokio::test]
async fn keepalive_finds_a_blackholed_server() {
    let interval = Duration::from_millis(300);
    let ka_timeout = Duration::from_millis(300);
    let server = H2Server::start(Some(10)).await;
    let proxy = FaultProxy::start(server.addr).await;
    let manager = HttpManager::http2().http2_keep_alive_while_idle(true);
    let pool = pool_of(manager)
        .keepalive_interval(interval)
        .ping_timeout(ka_timeout)
        .build()
        .await
        .unwrap();
    let mut conn = pool.get_for(&Origin::from(proxy.addr)).await.unwrap();
    assert_eq!(get(&mut conn, "/").await, "hello");
    let mut handle = (*conn).clone();
    drop(conn); // idle in the pool: http2_keep_alive_while_idle covers it

    proxy.blackhole();
    let took = until("declared dead", || {
        pool.manager().health(&mut handle).is_broken()
    })
    .await;
    println!(
        "blackholed HTTP/2 server declared dead after {took:?} (interval {interval:?} + timeout {ka_timeout:?})"
    );
    assert_keepalive_verdict(took, interval, ka_timeout);
    pool.close().await;
}

/// Starts `k` tasks that each get a connection and hold it for one `/slow`
/// request; returns them.
fn slow_requests(
    pool: &Pool<HttpManager>,
    dest: &Origin,
    k: usize,
) -> tokio::task::JoinSet<String> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..k {
        let pool = pool.clone();
        let dest = dest.clone();
        tasks.spawn(async move {
            let mut conn = pool.get_for(&dest).await.unwrap();
            get(&mut conn, "/slow").await
        });
    }
    tasks
}

async fn finish(tasks: tokio::task::JoinSet<String>) {
    let all = timeout(BOUND, tasks.join_all())
        .await
        .expect("all done within 5 s");
    assert!(all.iter().all(|b| b == "slow"));
}

// Stream limit 1: each connection carries one request, so K concurrent slow
// requests open min(K, max_open_per_key) connections, and no more.
#[tokio::test]
async fn stream_limit_one_opens_a_connection_per_request_up_to_the_cap() {
    for (k, cap) in [(3, 5), (6, 4)] {
        let server = H2Server::start(Some(1)).await;
        let dest = Origin::from(server.addr);
        let pool = pool_of(HttpManager::http2())
            .max_open_per_key(cap)
            .build()
            .await
            .unwrap();
        let tasks = slow_requests(&pool, &dest, k);
        let busy = k.min(cap);
        until("requests in flight", || server.in_flight() == busy).await;
        // Settled: nothing more is dialing.
        until("no dial in flight", || pool.state().dialing == 0).await;
        assert_eq!(server.accepted(), busy, "k={k} cap={cap}");
        assert_eq!(pool.state().open, busy);
        server.release();
        finish(tasks).await;
        assert_eq!(server.accepted(), busy, "k={k} cap={cap}: no extra dial");
        println!(
            "stream limit 1, {k} requests, cap {cap}: {} connections",
            server.accepted()
        );
        pool.close().await;
    }
}

// Stream limit 8, 20 concurrent slow requests, up to 10 connections: shared
// lending puts 8 requests on each, so ceil(20 / 8) = 3 connections.
#[tokio::test]
async fn stream_limit_eight_twenty_requests_three_connections() {
    let server = H2Server::start(Some(8)).await;
    let dest = Origin::from(server.addr);
    let pool = pool_of(HttpManager::http2())
        .max_open_per_key(10)
        .build()
        .await
        .unwrap();
    let tasks = slow_requests(&pool, &dest, 20);
    until("20 requests in flight", || server.in_flight() == 20).await;
    until("no dial in flight", || pool.state().dialing == 0).await;
    println!(
        "stream limit 8, 20 requests: {} connections",
        server.accepted()
    );
    assert_eq!(server.accepted(), 3);
    assert_eq!(pool.state().open, 3);
    server.release();
    finish(tasks).await;
    assert_eq!(server.accepted(), 3);
    pool.close().await;
}

// Shared lending and GOAWAY: a connection lent to a borrower whose request
// is in flight receives GOAWAY; a new getter is not put on it (it is
// draining) but on a new connection, and the request in flight finishes.
#[tokio::test]
async fn a_draining_shared_connection_takes_no_new_borrower() {
    let server = H2Server::start(Some(10)).await;
    let dest = Origin::from(server.addr);
    let pool = pool_of(HttpManager::http2()).build().await.unwrap();
    let mut first = Pooled::into_owned(pool.get_for(&dest).await.unwrap());
    let old = first.local_addr();
    // Shared: a second borrower lands on the same connection.
    let second = pool.get_for(&dest).await.unwrap();
    assert_eq!(second.local_addr(), old, "not lent shared");
    drop(second);
    let watch_goaway = (*first).clone();
    let in_flight = tokio::spawn(async move {
        let body = get(&mut first, "/slow").await;
        (body, first)
    });
    until("the slow request reached the server", || {
        server.in_flight() == 1
    })
    .await;

    server.each(|| Cmd::GoAway);
    until("GOAWAY seen", || watch_goaway.is_draining()).await;
    let mut fresh = pool.get_for(&dest).await.unwrap();
    assert_ne!(fresh.local_addr(), old, "a draining connection was lent");
    assert_eq!(get(&mut fresh, "/").await, "hello");
    assert_eq!(server.accepted(), 2);

    server.release();
    let (body, first) = timeout(BOUND, in_flight).await.unwrap().unwrap();
    assert_eq!(body, "slow", "the request in flight finished");
    drop(first); // its last borrower gone: the draining connection closes
    drop(fresh);
    until("only the fresh connection left", || pool.state().open == 1).await;
    pool.close().await;
}

// The pool's close ends every connection it made, a clone of a checked-out
// handle that a borrower kept included: the server sees the connection
// end, and a request on the clone fails at once.
#[tokio::test]
async fn close_ends_a_connection_a_kept_clone_still_holds() {
    let server = H2Server::start(None).await;
    let dest = Origin::from(server.addr);
    let pool = pool_of(HttpManager::http2()).build().await.unwrap();
    let conn = pool.get_for(&dest).await.unwrap();
    let mut kept = (*conn).clone();
    drop(conn);
    assert_eq!(get(&mut kept, "/").await, "hello");
    assert_eq!(server.open(), 1);

    pool.close().await;
    until("the server saw the connection end", || server.open() == 0).await;
    let req = Request::get("/").body(Full::new(Bytes::new())).unwrap();
    let sent = timeout(BOUND, kept.send_request(req))
        .await
        .expect("at once");
    assert!(sent.is_err(), "a request on a closed pool's connection");
    assert!(!kept.is_reusable());
    assert_eq!(server.accepted(), 1);
}
