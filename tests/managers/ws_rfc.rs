//! WebSocket by RFC 6455 and the heartbeat convention, against the
//! in-process tungstenite server (`support::ws`): a server's Close is
//! answered with a Close before the socket goes (§5.5.1); a server's own
//! text heartbeat is answered, idle or lent, and keeps the connection.

use connpool::Pool;
use connpool::managers::websocket::tungstenite::Message;
use connpool::managers::websocket::{WsManager, WsUrl};
use futures_util::{SinkExt, StreamExt};

use crate::support::ws::{Watch, WsServer, close_frame, until};

async fn pool(manager: WsManager) -> Pool<WsManager> {
    Pool::builder(manager)
        .health_check(None)
        .build()
        .await
        .unwrap()
}

fn url(server: &WsServer) -> WsUrl {
    WsUrl::parse(&server.url("ws")).unwrap()
}

async fn echo(pool: &Pool<WsManager>, url: &WsUrl, text: &str) -> Message {
    let mut conn = pool.get_for(url).await.unwrap();
    conn.send(Message::text(text)).await.unwrap();
    conn.next().await.unwrap().unwrap()
}

#[tokio::test]
async fn a_servers_close_on_an_idle_connection_is_answered_with_a_close() {
    let server = WsServer::echo().await;
    let pool = pool(WsManager::new()).await;
    let url = url(&server);
    let watch = {
        let mut conn = pool.get_for(&url).await.unwrap();
        conn.send(Message::text("hi")).await.unwrap();
        conn.next().await.unwrap().unwrap();
        Watch::new(&conn)
    };
    server.send_all(close_frame(1001, "going away")).await;
    watch.arrived().await;
    // The pool's next look reads the Close: the connection is closed, and
    // the server gets its Close back.
    assert_eq!(echo(&pool, &url, "again").await, Message::text("again"));
    assert_eq!(pool.state().counters.closed_by_server, 1);
    until("the server's Close answered", || {
        server.seen.closes.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
}

#[tokio::test]
async fn a_servers_text_ping_is_answered_idle_or_lent_and_keeps_the_connection() {
    let server = WsServer::echo().await;
    let pool = pool(WsManager::new().text_heartbeat("ping", "pong")).await;
    let url = url(&server);
    assert_eq!(echo(&pool, &url, "one").await, Message::text("one"));

    // Idle: the pool's next look answers it.
    let watch = Watch::new(&pool.get_for(&url).await.unwrap());
    server.send_all(Message::text("ping")).await;
    watch.arrived().await;
    assert_eq!(echo(&pool, &url, "two").await, Message::text("two"));
    let pongs = || {
        server
            .seen
            .text_pongs
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    until("the idle connection's pong", || pongs() == 1).await;

    // Lent, while the borrower reads: answered, and not shown to it.
    let mut conn = pool.get_for(&url).await.unwrap();
    server.send_all(Message::text("ping")).await;
    conn.send(Message::text("three")).await.unwrap();
    assert_eq!(conn.next().await.unwrap().unwrap(), Message::text("three"));
    until("the lent connection's pong", || pongs() == 2).await;
    drop(conn);

    assert_eq!(server.handshakes(), 1, "one connection throughout");
    assert_eq!(pool.state().counters.closed_broken, 0);
}
