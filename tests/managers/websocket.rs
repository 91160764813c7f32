//! The WebSocket manager against in-process tokio-tungstenite servers on
//! 127.0.0.1 (`support::ws`), plain and over TLS with certificates made at
//! test time: reuse, the heartbeat and its missed-reply counting (under a
//! paused clock moved by the test), what an idle connection does with a
//! server's Ping, Close or unsolicited message, headers, a refused
//! handshake, and TLS failures in rustls's words. (A restarted and a
//! frozen server: `ws_faults`.)

use std::time::Duration;

use connpool::managers::websocket::tungstenite::Message;
use connpool::managers::websocket::tungstenite::http::HeaderValue;
use connpool::managers::websocket::tungstenite::http::header::AUTHORIZATION;
use connpool::managers::websocket::{WsError, WsManager, WsUrl};
use connpool::{Manager, Pool, Pooled};
use futures_util::{SinkExt, StreamExt};

use crate::support::ws::{ManualClock, Options, Watch, WsServer, close_frame, until};
use crate::support::{Counts, ZERO, counts, settle};

const INTERVAL: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(10);
const MISSED: u32 = 3;
/// Past a deadline: tokio's timers have millisecond resolution.
const MS: Duration = Duration::from_millis(1);

/// The settings the module docs recommend (`keepalive_max_missed(3)`),
/// without jitter (exact
/// heartbeat times), idle timeout, lifetime or health check (only the
/// heartbeat closes connections).
fn builder(manager: WsManager) -> connpool::Builder<WsManager> {
    Pool::builder(manager)
        .keepalive_interval(INTERVAL)
        .ping_timeout(TIMEOUT)
        .keepalive_max_missed(MISSED)
        .jitter(0.0)
        .idle_timeout(None)
        .max_lifetime(None)
        .health_check(None)
}

fn url(server: &WsServer) -> WsUrl {
    WsUrl::parse(&server.url("ws")).unwrap()
}

/// An echo server, a pool with the default manager, and the server's URL.
pub(crate) async fn echo_pool() -> (WsServer, Pool<WsManager>, WsUrl) {
    let server = WsServer::echo().await;
    let pool = builder(WsManager::new()).build().await.unwrap();
    let url = url(&server);
    (server, pool, url)
}

/// Leaves a connection to `url` idle in `pool` after one request; returns
/// a watch on its socket.
pub(crate) async fn idle_after_a_request(pool: &Pool<WsManager>, url: &WsUrl) -> Watch {
    let mut conn = pool.get_for(url).await.unwrap();
    assert_eq!(echo(&mut conn, "hello").await, "hello");
    Watch::new(&conn)
}

/// Sends `text` and returns the next data message, as text.
pub(crate) async fn echo(conn: &mut Pooled<'_, WsManager>, text: &str) -> String {
    conn.send(Message::text(text)).await.unwrap();
    loop {
        match conn.next().await {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Twenty requests, one after another, over one connection: the server
/// sees one handshake.
#[tokio::test]
async fn one_handshake_serves_many_requests() {
    let (server, pool, url) = echo_pool().await;
    for i in 0..20 {
        let mut conn = pool.get_for(&url).await.unwrap();
        let text = format!("request {i}");
        assert_eq!(echo(&mut conn, &text).await, text);
    }
    assert_eq!(server.handshakes(), 1);
    assert_eq!(pool.state().counters.dials, 1);
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    pool.close().await;
}

/// Messages far larger than the default 8 KiB read buffer (64 KiB, 1 MiB)
/// come back whole, also after small ones on the same connection.
#[tokio::test]
async fn messages_larger_than_the_read_buffer() {
    let (_server, pool, url) = echo_pool().await;
    let mut conn = pool.get_for(&url).await.unwrap();
    for size in [64, 64 << 10, 1 << 20, 100] {
        let text: String = (0..size)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        assert_eq!(echo(&mut conn, &text).await, text, "{size} bytes");
    }
    drop(conn);
    pool.close().await;
}

/// A peer that stops answering without closing: each heartbeat is missed,
/// and the connection is closed at the third miss (`keepalive_max_missed`),
/// not before; the next get dials a new one.
#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_closed_after_the_last_allowed_miss() {
    let clock = ManualClock::start();
    let (server, pool, url) = echo_pool().await;
    let mut conn = pool.get_for(&url).await.unwrap();
    assert_eq!(echo(&mut conn, "hello").await, "hello");
    drop(conn);
    let stats = |pool: &Pool<WsManager>| {
        let c = pool.state().counters;
        (c.keepalive_pings, c.keepalive_failures)
    };

    // The first heartbeat, 30 s after the return, is answered.
    clock.advance(INTERVAL + MS).await;
    until("the first heartbeat answered", || stats(&pool) == (1, 0)).await;

    // Then the peer goes silent: each heartbeat (30 s after the last one
    // ended) is missed 10 s after it began.
    server.mute_all();
    settle().await;
    for missed in 1..=u64::from(MISSED) {
        clock.advance(INTERVAL + MS).await;
        assert_eq!(counts(&pool), Counts { open: 1, pinging: 1, ..ZERO });
        clock.advance(TIMEOUT - 2 * MS).await;
        assert_eq!(
            stats(&pool),
            (missed, missed - 1),
            "waiting for heartbeat {missed}"
        );
        clock.advance(3 * MS).await;
        until("the miss counted", || stats(&pool) == (missed + 1, missed)).await;
        if missed < u64::from(MISSED) {
            assert_eq!(
                counts(&pool),
                Counts { open: 1, idle: 1, ..ZERO },
                "kept after miss {missed}"
            );
            assert_eq!(pool.state().counters.closed_keepalive, 0);
        }
    }
    assert_eq!(counts(&pool), ZERO, "closed at the last allowed miss");
    assert_eq!(pool.state().counters.closed_keepalive, 1);

    let mut conn = pool.get_for(&url).await.unwrap();
    assert_eq!(echo(&mut conn, "again").await, "again");
    assert_eq!(server.handshakes(), 2);
    drop(conn);
    pool.close().await;
}

/// The text heartbeat: `"ping"` every interval, answered with `"pong"`,
/// which no borrower sees.
#[tokio::test(start_paused = true)]
async fn text_heartbeat() {
    let clock = ManualClock::start();
    let server =
        WsServer::start(Options { text_pong: Some(Duration::ZERO), ..Options::default() }).await;
    let manager = WsManager::new().text_heartbeat("ping", "pong");
    let pool = builder(manager).build().await.unwrap();
    let url = url(&server);
    drop(pool.get_for(&url).await.unwrap());

    for beat in 1..=3 {
        clock.advance(INTERVAL + MS).await;
        until("a heartbeat answered", || {
            let c = pool.state().counters;
            (c.keepalive_pings, c.keepalive_failures) == (beat, 0)
        })
        .await;
    }
    assert_eq!(server.text_pings(), 3);
    assert_eq!(server.pongs(), 0, "no Ping frame was sent");

    let mut conn = pool.get_for(&url).await.unwrap();
    assert_eq!(echo(&mut conn, "hello").await, "hello");
    assert_eq!(server.handshakes(), 1);
    assert_eq!(pool.manager().unsolicited_messages(), 0);
    drop(conn);
    pool.close().await;
}

/// A heartbeat reply that comes after the pool gave up on it (a miss) is
/// dropped, whether it arrives while the connection is idle or while it is
/// lent: the connection is kept, and no borrower reads it.
#[tokio::test(start_paused = true)]
async fn a_late_heartbeat_reply_reaches_nobody() {
    let clock = ManualClock::start();
    // The server answers "ping" 15 s late: 5 s after the 10 s timeout.
    let server = WsServer::start(Options {
        text_pong: Some(TIMEOUT + Duration::from_secs(5)),
        ..Options::default()
    })
    .await;
    let manager = WsManager::new().text_heartbeat("ping", "pong");
    let pool = builder(manager).build().await.unwrap();
    let url = url(&server);
    let conn = pool.get_for(&url).await.unwrap();
    let watch = Watch::new(&conn);
    drop(conn);
    let failures = |pool: &Pool<WsManager>| pool.state().counters.keepalive_failures;

    // A heartbeat, missed; its "pong" arrives while the connection is idle.
    clock.advance(INTERVAL + MS).await;
    until("the server has the ping", || server.text_pings() == 1).await;
    clock.advance(TIMEOUT + MS).await;
    until("the miss counted", || failures(&pool) == 1).await;
    clock.advance(Duration::from_secs(5)).await;
    watch.arrived().await;
    let mut conn = pool.get_for(&url).await.unwrap();
    assert_eq!(echo(&mut conn, "idle").await, "idle");
    drop(conn);

    // Another, missed; the connection is lent before its "pong" arrives.
    clock.advance(INTERVAL + MS).await;
    until("the server has the ping", || server.text_pings() == 2).await;
    clock.advance(TIMEOUT + MS).await;
    until("the miss counted", || failures(&pool) == 2).await;
    let mut conn = pool.get_for(&url).await.unwrap();
    let (reply, ()) = tokio::join!(
        echo(&mut conn, "lent"),
        clock.advance(Duration::from_secs(5))
    );
    assert_eq!(reply, "lent");
    drop(conn);

    assert_eq!(server.handshakes(), 1);
    assert_eq!(pool.manager().unsolicited_messages(), 0);
    assert_eq!(pool.state().counters.closed_broken, 0);
    pool.close().await;
}

/// A server's Ping to an idle connection is answered at the pool's next
/// look at it (here the checkout's `health`), before the borrower does
/// anything.
#[tokio::test]
async fn a_server_ping_is_answered_by_an_idle_look() {
    let (server, pool, url) = echo_pool().await;
    let watch = idle_after_a_request(&pool, &url).await;
    server.send_all(Message::Ping("server".into())).await;
    watch.arrived().await;
    let mut conn = pool.get_for(&url).await.unwrap();
    // The checkout looked; a frame that arrived in parts is read by the
    // next look (the same check, as a return or keepalive would make it).
    until("the server has the Pong", || {
        server.pongs() == 1 || !pool.manager().health(&mut conn).is_broken() && server.pongs() == 1
    })
    .await;
    assert_eq!(server.handshakes(), 1);
    drop(conn);
    pool.close().await;
}

/// A server's Close frame makes the connection broken: `ping` reports the
/// server's code and reason, the pool closes the connection, and the next
/// get dials anew.
#[tokio::test]
async fn a_server_close_retires_the_connection() {
    let (server, pool, url) = echo_pool().await;
    let mut conn = pool.get_for(&url).await.unwrap();
    assert_eq!(echo(&mut conn, "hello").await, "hello");

    let watch = Watch::new(&conn);
    server.send_all(close_frame(1001, "going away")).await;
    watch.arrived().await;
    let e = pool.manager().ping(&mut *conn).await.unwrap_err();
    assert!(matches!(e, WsError::Closed(Some(_))), "{e:?}");
    assert_eq!(
        e.to_string(),
        "the server closed the WebSocket (code 1001: \"going away\")"
    );
    drop(conn);
    // The server's Close ends it in the normal course: not broken.
    assert_eq!(pool.state().counters.closed_by_server, 1);
    assert_eq!(pool.state().counters.closed_broken, 0);

    // Closed while idle: found at the next checkout.
    let watch = idle_after_a_request(&pool, &url).await;
    server.send_all(close_frame(1000, "")).await;
    watch.arrived().await;
    let mut conn = pool.get_for(&url).await.unwrap();
    assert_eq!(echo(&mut conn, "third").await, "third");
    assert_eq!(server.handshakes(), 3);
    assert_eq!(pool.state().counters.closed_by_server, 2);
    assert_eq!(pool.manager().unsolicited_messages(), 0);
    drop(conn);
    pool.close().await;
}

/// A message the server pushes to an idle connection retires it: it is
/// counted and logged (without its content), and the next borrower gets a
/// new connection that never shows it.
#[tokio::test]
async fn a_push_while_idle_retires_the_connection() {
    let (log, _guard) = crate::support::log::capture();
    let (server, pool, url) = echo_pool().await;
    let watch = idle_after_a_request(&pool, &url).await;
    server.send_all(Message::text("breaking news")).await;
    watch.arrived().await;
    let mut conn = pool.get_for(&url).await.unwrap();
    assert_eq!(echo(&mut conn, "mine").await, "mine");
    assert_eq!(server.handshakes(), 2);
    assert_eq!(pool.manager().unsolicited_messages(), 1);
    assert_eq!(pool.state().counters.closed_broken, 1);

    let retired: Vec<_> = log
        .at(tracing::Level::DEBUG)
        .into_iter()
        .filter(|e| e.message == "WebSocket connection retired")
        .collect();
    assert_eq!(retired.len(), 1, "{retired:?}");
    let error = &retired[0].fields["error"];
    assert!(
        error.contains("a text message of 13 bytes arrived unasked"),
        "{error}"
    );
    assert!(!format!("{retired:?}").contains("breaking news"));
    drop(conn);
    pool.close().await;
}

/// The manager's headers reach the server, the subprotocol it chose is
/// known, and `Debug` shows the headers' names but not their values.
#[tokio::test]
async fn headers_reach_the_server_and_stay_out_of_debug() {
    let server = WsServer::start(Options { token: Some("s3cr3t"), ..Options::default() }).await;
    let manager = WsManager::new()
        .header(AUTHORIZATION, HeaderValue::from_static("Bearer s3cr3t"))
        .subprotocols(&["v2.chat", "v1.chat"])
        .unwrap();
    let shown = format!("{manager:?}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(shown.contains("authorization"), "{shown}");
    let pool = builder(manager).build().await.unwrap();
    let mut conn = pool.get_for(&url(&server)).await.unwrap();
    assert_eq!(conn.subprotocol(), Some("v2.chat"));
    assert_eq!(echo(&mut conn, "hi").await, "hi");
    let seen = server.seen.headers.lock().clone();
    assert_eq!(
        seen,
        [(
            Some("Bearer s3cr3t".to_owned()),
            Some("v2.chat, v1.chat".to_owned())
        )]
    );
    drop(conn);
    pool.close().await;
}

/// A refused handshake fails the dial with the server's status and body.
#[tokio::test]
async fn a_refused_handshake_shows_the_status_and_body() {
    let server = WsServer::start(Options { token: Some("s3cr3t"), ..Options::default() }).await;
    let pool = builder(WsManager::new()).build().await.unwrap();
    let url: WsUrl = format!("ws://{}/path?token=wrong", server.addr)
        .parse()
        .unwrap();
    let e = pool.get_for(&url).await.unwrap_err();
    let message = e.to_string();
    let expected = format!(
        "WebSocket handshake with ws://{}/path?… failed: the server answered 401 Unauthorized: \"bad token\"",
        server.addr
    );
    assert!(message.ends_with(&expected), "{message}");
    assert!(matches!(e.manager_error(), Some(WsError::Handshake { .. })));
    pool.close().await;
}

/// URLs: only ws and wss, with a host and no credentials; the key's
/// `Debug` leaves the query out.
#[test]
fn urls() {
    let url = WsUrl::parse("ws://127.0.0.1:9001/feed?key=secret").unwrap();
    assert_eq!(
        (url.host(), url.port(), url.is_tls()),
        ("127.0.0.1", 9001, false)
    );
    assert_eq!(format!("{url:?}"), "WsUrl(ws://127.0.0.1:9001/feed?…)");
    assert_eq!(WsUrl::parse("wss://[::1]/").unwrap().host(), "::1");
    // The scheme is part of the key: ws and wss never share a connection.
    let plain = WsUrl::parse("ws://example:8080/feed").unwrap();
    let secure = WsUrl::parse("wss://example:8080/feed").unwrap();
    assert!(secure.is_tls() && !plain.is_tls());
    assert_ne!(plain, secure);
    for (bad, why) in [
        ("https://example", "scheme \"https\""),
        ("example:80", "scheme"),
        ("ws://user:pw@example/", "credentials"),
        ("ws:///path", "invalid WebSocket URL"),
    ] {
        let e = WsUrl::parse(bad).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[cfg(feature = "tls")]
mod wss {
    use connpool::managers::tls::TlsConfig;

    use super::*;
    use crate::support::tls::{Ca, Leaf};

    async fn start(ca: &Ca, leaf: Leaf) -> WsServer {
        WsServer::start(Options { tls: Some(ca.server(leaf, &[], false)), ..Options::default() })
            .await
    }

    fn manager(trusts: &Ca) -> WsManager {
        WsManager::new().tls(TlsConfig::private_ca(&trusts.pem).unwrap())
    }

    /// `wss` with a CA made for the test: the chain and the host name
    /// verify, and one handshake serves every request.
    #[tokio::test]
    async fn wss_with_a_generated_ca() {
        let ca = Ca::new("test CA");
        let server = start(&ca, Leaf::Good).await;
        let pool = builder(manager(&ca)).build().await.unwrap();
        let url = WsUrl::parse(&server.url("wss")).unwrap();
        for i in 0..10 {
            let mut conn = pool.get_for(&url).await.unwrap();
            let text = format!("secret {i}");
            assert_eq!(echo(&mut conn, &text).await, text);
        }
        assert_eq!(server.handshakes(), 1);
        pool.close().await;
    }

    /// A certificate from a CA the client does not trust, and one for
    /// another host name, fail the dial in rustls's words.
    #[tokio::test]
    async fn unknown_ca_and_wrong_host_name_fail_the_dial() {
        let ca = Ca::new("test CA");
        let other = Ca::new("another CA");
        let pool = builder(manager(&other)).no_backoff().build().await.unwrap();
        let server = start(&ca, Leaf::Good).await;
        let e = pool
            .get_for(&WsUrl::parse(&server.url("wss")).unwrap())
            .await
            .unwrap_err();
        let message = e.to_string();
        assert!(
            message.contains("invalid peer certificate: UnknownIssuer"),
            "{message}"
        );
        assert!(
            matches!(e.manager_error(), Some(WsError::Connect(_))),
            "{e:?}"
        );

        let pool = builder(manager(&ca)).no_backoff().build().await.unwrap();
        let server = start(&ca, Leaf::OtherName).await;
        let e = pool
            .get_for(&WsUrl::parse(&server.url("wss")).unwrap())
            .await
            .unwrap_err();
        let message = e.to_string();
        assert!(
            message.contains("certificate not valid for name \"127.0.0.1\""),
            "{message}"
        );
        assert_eq!(server.handshakes(), 0);
    }
}
