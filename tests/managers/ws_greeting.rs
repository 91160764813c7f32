//! A WebSocket server that speaks first (a `Hello` right after the
//! handshake, as chat gateways and feeds send): the greeting reaches the
//! borrower, and never makes a new connection broken on arrival.

use std::time::Duration;

use connpool::managers::websocket::tungstenite::Message;
use connpool::managers::websocket::{WsManager, WsUrl};
use connpool::{Pool, Pooled};
use futures_util::{SinkExt, StreamExt};
use tokio::time::timeout;

use crate::support::ws::{Options, WsServer};

const HELLO: &str = r#"{"op":"hello"}"#;

async fn next_text(conn: &mut Pooled<'_, WsManager>) -> String {
    let msg = timeout(Duration::from_secs(5), conn.next())
        .await
        .expect("a message within 5 s")
        .expect("the stream is open")
        .expect("a message");
    msg.into_text().expect("text").to_string()
}

// 1,000 dials, each checked on arrival as the pool does (the greeting
// arrives before, during or after that look): none broken, each
// borrower reads the greeting first, then its own echo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_greeting_is_delivered_and_never_breaks_a_new_connection() {
    let server = WsServer::start(Options { greeting: Some(HELLO), ..Options::default() }).await;
    let url: WsUrl = server.url("ws").parse().unwrap();
    let pool = Pool::builder(WsManager::new()).build().await.unwrap();
    for i in 0..1_000 {
        let mut conn = pool.get_for(&url).await.unwrap();
        assert_eq!(next_text(&mut conn).await, HELLO, "dial {i}");
        conn.send(Message::text("mine")).await.unwrap();
        assert_eq!(next_text(&mut conn).await, "mine", "dial {i}");
        // Closed by the borrower: the next get dials.
        conn.close().await.unwrap();
    }
    let state = pool.state();
    assert_eq!(state.counters.dials, 1_000, "{state:?}");
    assert_eq!(state.counters.dial_failures, 0, "{state:?}");
    assert_eq!(server.handshakes(), 1_000);
    assert_eq!(pool.manager().unsolicited_messages(), 0);
    pool.close().await;
}

// The greeting kept while the connection idles in the pool (looked at by
// the keepalive and the health check before lending) reaches the first
// borrower; a message that arrives after a borrower has sent something
// and left it unread still retires the connection.
#[tokio::test]
async fn a_greeting_waits_in_the_pool_for_the_first_borrower() {
    let server = WsServer::start(Options { greeting: Some(HELLO), ..Options::default() }).await;
    let url: WsUrl = server.url("ws").parse().unwrap();
    let pool = Pool::builder(WsManager::new())
        .health_check(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let conn = pool.get_for(&url).await.unwrap();
    drop(conn);
    // Checked before lending: a ping (its heartbeat round trip reads past
    // the greeting, which stays kept).
    let mut conn = pool.get_for(&url).await.unwrap();
    assert_eq!(next_text(&mut conn).await, HELLO);
    conn.send(Message::text("mine")).await.unwrap();
    assert_eq!(next_text(&mut conn).await, "mine");
    drop(conn);
    let state = pool.state();
    assert_eq!(state.counters.dials, 1, "{state:?}");
    assert_eq!(state.counters.health_check_failures, 0, "{state:?}");

    // Now a push to the idle connection is no greeting: it retires it.
    server.send_all(Message::text("late")).await;
    let mut conn = pool.get_for(&url).await.unwrap();
    assert_eq!(next_text(&mut conn).await, HELLO, "a new connection's own");
    conn.send(Message::text("again")).await.unwrap();
    assert_eq!(next_text(&mut conn).await, "again");
    drop(conn);
    assert_eq!(pool.manager().unsolicited_messages(), 1);
    assert_eq!(server.handshakes(), 2);
    pool.close().await;
}

// What a server sends first is kept up to 1 MiB: 600 KiB reaches the
// borrower; 600 KiB more, then another 600 KiB, while the connection
// idles, is past the bound, retiring it (a feed nobody reads is not
// buffered without end).
#[tokio::test]
async fn a_greeting_past_a_mebibyte_retires_the_connection() {
    let server = WsServer::start(Options::default()).await;
    let url: WsUrl = server.url("ws").parse().unwrap();
    let pool = Pool::builder(WsManager::new())
        .health_check(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let block = || Message::binary(vec![7u8; 600 << 10]);
    drop(pool.get_for(&url).await.unwrap());
    server.send_all(block()).await;
    // The health check's ping reads past the block, which is kept.
    let mut conn = pool.get_for(&url).await.unwrap();
    let msg = timeout(Duration::from_secs(5), conn.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(msg.len(), 600 << 10);
    drop(conn);
    assert_eq!(pool.manager().unsolicited_messages(), 0);

    server.send_all(block()).await;
    server.send_all(block()).await;
    let mut conn = pool.get_for(&url).await.unwrap();
    conn.send(Message::text("mine")).await.unwrap();
    let reply = next_text(&mut conn).await;
    assert!(
        reply == "mine",
        "a new connection's reply, not {} bytes kept",
        reply.len()
    );
    drop(conn);
    assert_eq!(pool.manager().unsolicited_messages(), 1);
    assert_eq!(server.handshakes(), 2);
    pool.close().await;
}
