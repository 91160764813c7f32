//! A WebSocket connection held for a subscription (read for a long time)
//! stays watched while lent: its heartbeat runs while the borrower waits
//! in `next()`, and a server that goes silent ends the borrower's stream
//! with an error that says the heartbeat was missed. Against the
//! in-process tungstenite server (`support::ws`), with the pool's
//! keepalive every 50 ms of silence so the test runs in real time.

use std::time::{Duration, Instant};

use connpool::managers::websocket::tungstenite::{self, Message};
use connpool::managers::websocket::{WsManager, WsUrl};
use connpool::{Pool, Pooled};
use futures_util::{SinkExt, StreamExt};

use crate::support::ws::WsServer;

const EVERY: Duration = Duration::from_millis(50);

async fn pool() -> Pool<WsManager> {
    Pool::builder(WsManager::new())
        .keepalive_interval(EVERY)
        .keepalive_max_missed(3)
        .health_check(None)
        .build()
        .await
        .unwrap()
}

/// Subscribes on a connection of `pool`, then silences the server (or the
/// path to it) while the borrower reads on: the connection, the error that
/// ended the stream, and how long after the silence it came.
async fn silenced_under_a_reader<'p>(
    pool: &'p Pool<WsManager>,
    server: &WsServer,
    url: &WsUrl,
) -> (Pooled<'p, WsManager>, tungstenite::Error, Duration) {
    let mut conn = pool.get_for(url).await.unwrap();
    conn.send(Message::text("subscribe")).await.unwrap();
    assert_eq!(
        conn.next().await.unwrap().unwrap(),
        Message::text("subscribe")
    );
    server.mute_all();
    let start = Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(10), conn.next())
        .await
        .expect("the stream must end by itself");
    let took = start.elapsed();
    (conn, end.unwrap().unwrap_err(), took)
}

#[tokio::test]
async fn a_silent_server_ends_the_subscribers_stream_after_three_missed_heartbeats() {
    let server = WsServer::echo().await;
    let url = WsUrl::parse(&server.url("ws")).unwrap();
    let pool = pool().await;
    {
        let (conn, e, _) = silenced_under_a_reader(&pool, &server, &url).await;
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

/// The heartbeat while lent follows the pool's `keepalive_interval` and
/// `keepalive_max_missed`: with 200 ms and 2, a silent server ends the
/// reader's stream after 3 × 200 ms of silence (2 heartbeats unanswered,
/// then one more interval), not before.
#[tokio::test]
async fn the_lent_heartbeat_follows_the_pools_keepalive_settings() {
    const INTERVAL: Duration = Duration::from_millis(200);
    let server = WsServer::echo().await;
    let url = WsUrl::parse(&server.url("ws")).unwrap();
    let pool = Pool::builder(WsManager::new())
        .keepalive_interval(INTERVAL)
        .keepalive_max_missed(2)
        .build()
        .await
        .unwrap();
    let (_conn, e, took) = silenced_under_a_reader(&pool, &server, &url).await;
    assert!(e.to_string().contains("2 heartbeats in a row"), "{e}");
    assert!(took >= 3 * INTERVAL, "{took:?}");
    assert!(took < 3 * INTERVAL + Duration::from_millis(100), "{took:?}");
    eprintln!("a silent server ended the lent reader's stream after {took:?} (200 ms, 2 missed)");
}

/// A pool without keepalive sends no heartbeat while lent either.
#[tokio::test]
async fn no_keepalive_no_heartbeat_while_lent() {
    let server = WsServer::echo().await;
    let url = WsUrl::parse(&server.url("ws")).unwrap();
    let pool = Pool::builder(WsManager::new())
        .keepalive_interval(None)
        .health_check(None)
        .build()
        .await
        .unwrap();
    let mut conn = pool.get_for(&url).await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(300), conn.next()).await;
    assert!(quiet.is_err(), "{quiet:?}");
    let pings = server.seen.pings.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(pings, 0);
}
