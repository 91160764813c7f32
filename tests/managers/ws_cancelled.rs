//! A WebSocket exchange cut short never leaves its reply for the next
//! borrower: a read dropped by its timeout, a message queued and not
//! flushed. Against the in-process tungstenite server (`support::ws`),
//! which answers the text `ping` with `pong` only after a long delay.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::websocket::tungstenite::Message;
use connpool::managers::websocket::{WsManager, WsUrl};
use futures_util::{SinkExt, StreamExt};

use crate::support::ws::{Options, WsServer};

/// A server whose reply to `ping` comes long after any test ends: only a
/// cut-short read can end a wait for it.
async fn slow_server() -> (WsServer, WsUrl) {
    let options = Options { text_pong: Some(Duration::from_secs(3600)), ..Options::default() };
    let server = WsServer::start(options).await;
    let url = WsUrl::parse(&format!("ws://{}/", server.addr)).unwrap();
    (server, url)
}

async fn pool() -> Pool<WsManager> {
    // No check before lending: the look at each return must suffice.
    Pool::builder(WsManager::new())
        .health_check(None)
        .build()
        .await
        .unwrap()
}

/// The echo of `text` on the next connection lent. On a connection lent
/// with another's exchange still open, the server answers that first (in
/// an hour): the bound turns that hang into a failure.
async fn echo(pool: &Pool<WsManager>, url: &WsUrl, text: &str) -> Message {
    let mut conn = pool.get_for(url).await.unwrap();
    conn.send(Message::text(text)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), conn.next())
        .await
        .expect("the answer waits behind another borrower's exchange")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_read_cut_short_by_its_timeout_retires_the_connection() {
    let (server, url) = slow_server().await;
    let pool = pool().await;
    {
        let mut conn = pool.get_for(&url).await.unwrap();
        conn.send(Message::text("ping")).await.unwrap();
        let read = tokio::time::timeout(Duration::from_millis(100), conn.next()).await;
        assert!(read.is_err(), "the reply is an hour away");
    }
    // The next borrower's request gets its own answer, on a connection of
    // its own: the first one was closed, its `pong` never read by anyone.
    assert_eq!(echo(&pool, &url, "hello").await, Message::text("hello"));
    assert_eq!(pool.state().counters.closed_broken, 1);
    assert_eq!(server.handshakes(), 2);
}

#[tokio::test]
async fn a_message_queued_and_not_flushed_retires_the_connection() {
    let (server, url) = slow_server().await;
    let pool = pool().await;
    {
        let mut conn = pool.get_for(&url).await.unwrap();
        // `feed` queues without flushing: it would go out with the next
        // borrower's first write, and its reply reach that borrower.
        conn.feed(Message::text("ping")).await.unwrap();
    }
    assert_eq!(echo(&pool, &url, "hello").await, Message::text("hello"));
    assert_eq!(pool.state().counters.closed_broken, 1);
    assert_eq!(server.handshakes(), 2);
}

#[tokio::test]
async fn a_finished_exchange_keeps_the_connection() {
    let (server, url) = slow_server().await;
    let pool = pool().await;
    for _ in 0..3 {
        assert_eq!(echo(&pool, &url, "hello").await, Message::text("hello"));
    }
    assert_eq!(pool.state().counters.closed_broken, 0);
    assert_eq!(server.handshakes(), 1);
}
