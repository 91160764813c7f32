//! A WebSocket connection held for a subscription (read for a long time)
//! stays watched while lent: its heartbeat runs while the borrower waits
//! in `next()`, and a server that goes silent ends the borrower's stream
//! with an error that says the heartbeat was missed. Against the
//! in-process tungstenite server (`support::ws`), with a heartbeat every
//! 50 ms of silence so the test runs in real time.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::websocket::tungstenite::Message;
use connpool::managers::websocket::{WsManager, WsUrl};
use futures_util::{SinkExt, StreamExt};

use crate::support::ws::WsServer;

const EVERY: Duration = Duration::from_millis(50);

async fn pool() -> Pool<WsManager> {
    let manager = WsManager::new().heartbeat_while_lent(Some(EVERY));
    Pool::builder(manager)
        .health_check(None)
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_silent_server_ends_the_subscribers_stream_after_three_missed_heartbeats() {
    let server = WsServer::echo().await;
    let url = WsUrl::parse(&server.url("ws")).unwrap();
    let pool = pool().await;
    {
        let mut conn = pool.get_for(&url).await.unwrap();
        conn.send(Message::text("subscribe")).await.unwrap();
        assert_eq!(
            conn.next().await.unwrap().unwrap(),
            Message::text("subscribe")
        );
        // The server (or the path to it) goes silent; the borrower reads on.
        server.mute_all();
        let end = tokio::time::timeout(Duration::from_secs(10), conn.next())
            .await
            .expect("the stream must end by itself");
        let e = end.unwrap().unwrap_err();
        let message = e.to_string();
        assert!(message.contains("3 heartbeats in a row"), "{message}");
        assert!(conn.is_broken());
    }
    assert_eq!(pool.state().counters.closed_broken, 1);
    // Reconnecting is the next get: a fresh connection.
    let mut conn = pool.get_for(&url).await.unwrap();
    drop(server);
    assert!(conn.next().await.is_some());
}

#[tokio::test]
async fn a_live_server_answers_the_heartbeats_and_the_subscriber_reads_on() {
    let server = WsServer::echo().await;
    let url = WsUrl::parse(&server.url("ws")).unwrap();
    let pool = pool().await;
    let mut conn = pool.get_for(&url).await.unwrap();
    // Nothing to read for 20 heartbeat intervals: the heartbeats go out,
    // their Pongs come back unseen, and the stream stays open.
    let quiet = tokio::time::timeout(20 * EVERY, conn.next()).await;
    assert!(quiet.is_err(), "nothing but heartbeats arrived: {quiet:?}");
    let pings = server.seen.pings.load(std::sync::atomic::Ordering::SeqCst);
    assert!(pings >= 5, "{pings} heartbeats");
    assert!(!conn.is_broken());
    conn.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        conn.next().await.unwrap().unwrap(),
        Message::text("still here")
    );
}
