//! The service's retry of a request that met a stale connection (Go's
//! `shouldRetryRequest`, `isReplayable` and its `roundTrip` loop), against
//! scripted servers.

use connpool::managers::HttpError;
use connpool::managers::Origin;

use super::scripted::{Reply, Scripted, ok};
use super::{Svc, call, exchange, get, pool, post};

/// Answers the first request of each connection with its connection's
/// number, drops every later one: each reused connection is stale.
fn stale_after_one(conn: usize, req: usize) -> Reply {
    match req {
        0 => Reply::Send(ok("", &format!("conn {conn}"))),
        _ => Reply::Drop,
    }
}

#[tokio::test]
async fn a_get_on_a_stale_connection_is_sent_again_on_another() {
    let server = Scripted::start(stale_after_one).await;
    let mut svc = Svc::new(pool().await, server.addr);
    assert_eq!(call(&mut svc, get("/")).await.unwrap(), "conn 0");
    // Connection 0 is reused, the server drops the request: sent again on a
    // new connection.
    assert_eq!(call(&mut svc, get("/")).await.unwrap(), "conn 1");
    assert_eq!(svc.retries(), 1);
    assert_eq!(
        svc.pool().state().counters.retries,
        1,
        "in the pool's counters too"
    );
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn a_post_on_a_stale_connection_fails_clearly_and_is_not_sent_again() {
    let server = Scripted::start(stale_after_one).await;
    let mut svc = Svc::new(pool().await, server.addr);
    assert_eq!(call(&mut svc, post("/")).await.unwrap(), "conn 0");
    let e = call(&mut svc, post("/")).await.unwrap_err();
    assert!(matches!(e, HttpError::NotRetried { .. }), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains("reused connection the server had closed")
            && message.contains("no Idempotency-Key"),
        "{message}"
    );
    assert_eq!(svc.retries(), 0);
    assert_eq!(server.accepted(), 1, "no second connection: not sent again");
    // With either idempotency header it is (Go's `isReplayable`): each
    // keyed POST meets the stale connection the last one left idle.
    assert_eq!(call(&mut svc, post("/")).await.unwrap(), "conn 1");
    for (header, fresh) in [
        ("idempotency-key", "conn 2"),
        ("x-idempotency-key", "conn 3"),
    ] {
        let mut keyed = post("/");
        keyed
            .headers_mut()
            .insert(header, http::HeaderValue::from_static("k1"));
        assert_eq!(call(&mut svc, keyed).await.unwrap(), fresh, "{header}");
    }
    assert_eq!(svc.retries(), 2);
}

/// PUT and DELETE are idempotent by RFC 9110, but Go does not send them
/// again unasked, and neither does the service.
#[tokio::test]
async fn put_and_delete_are_sent_again_only_with_a_key() {
    let server = Scripted::start(stale_after_one).await;
    let mut svc = Svc::new(pool().await, server.addr);
    for method in [http::Method::PUT, http::Method::DELETE] {
        let mut request = get("/");
        *request.method_mut() = method.clone();
        call(&mut svc, request).await.unwrap();
        let mut request = get("/");
        *request.method_mut() = method.clone();
        let e = call(&mut svc, request).await.unwrap_err();
        assert!(matches!(e, HttpError::NotRetried { .. }), "{method}: {e:?}");
    }
    assert_eq!(svc.retries(), 0);
}

/// Every idle connection went stale together (a load balancer restarted):
/// the request tries each, retiring it, and ends on a fresh dial, as Go's
/// `roundTrip` loop does.
#[tokio::test]
async fn a_request_meeting_only_stale_connections_ends_on_a_fresh_one() {
    let server = Scripted::start(stale_after_one).await;
    let pool = pool().await;
    let dest = Origin::from(server.addr);
    // Three idle connections, each used once: all stale.
    let (mut a, mut b, mut c) = (
        pool.get_for(&dest).await.unwrap(),
        pool.get_for(&dest).await.unwrap(),
        pool.get_for(&dest).await.unwrap(),
    );
    exchange(&mut a).await;
    exchange(&mut b).await;
    exchange(&mut c).await;
    drop((a, b, c));
    let mut svc = Svc::new(pool.clone(), dest);
    assert_eq!(call(&mut svc, get("/")).await.unwrap(), "conn 3");
    assert_eq!(svc.retries(), 3);
    assert_eq!(
        server.accepted(),
        4,
        "each stale one tried, then a fresh dial"
    );
    assert_eq!(pool.state().open, 1, "the stale ones retired");
}

#[tokio::test]
async fn a_failure_on_a_fresh_connection_is_not_retried() {
    let server = Scripted::start(|_, _| Reply::Drop).await;
    let mut svc = Svc::new(pool().await, server.addr);
    let e = call(&mut svc, get("/")).await.unwrap_err();
    assert!(matches!(e, HttpError::Request(_)), "{e:?}");
    assert_eq!(svc.retries(), 0);
    assert_eq!(server.accepted(), 1);
}
