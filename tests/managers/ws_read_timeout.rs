//! A WebSocket read deadline on a lent connection: the manager's
//! `read_timeout` for every borrower, `WsConn::set_read_timeout` for one;
//! a server gone silent (muted: the socket open, nothing read or written)
//! fails the read at its deadline, the connection is retired, and the next
//! get is served by a new one.

use std::time::{Duration, Instant};

use connpool::Pool;
use connpool::managers::websocket::tungstenite::{self, Message};
use connpool::managers::websocket::{WsManager, WsUrl};
use futures_util::{SinkExt, StreamExt};
use tokio::time::timeout;

use crate::support::ws::WsServer;

const BOUND: Duration = Duration::from_secs(5);

/// Sends `text`, reads the next message: the echo, or the read's error.
async fn round_trip(
    conn: &mut connpool::Pooled<'_, WsManager>,
    text: &str,
) -> Result<String, tungstenite::Error> {
    conn.send(Message::text(text)).await?;
    let next = timeout(BOUND, conn.next())
        .await
        .expect("a read bounded by its timeout");
    Ok(next.expect("the stream is open")?.into_text()?.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_past_its_timeout_fails_and_the_connection_is_retired() {
    let server = WsServer::echo().await;
    let url: WsUrl = server.url("ws").parse().unwrap();
    let manager = WsManager::new().read_timeout(Some(Duration::from_millis(300)));
    let pool = Pool::builder(manager).build().await.unwrap();

    let mut conn = pool.get_for(&url).await.unwrap();
    assert_eq!(round_trip(&mut conn, "one").await.unwrap(), "one");
    server.mute_all();
    let start = Instant::now();
    let err = round_trip(&mut conn, "two").await.unwrap_err();
    let took = start.elapsed();
    match &err {
        tungstenite::Error::Io(io) => assert_eq!(io.kind(), std::io::ErrorKind::TimedOut),
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("within the read timeout of 300ms"),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(700),
        "{took:?}"
    );
    drop(conn);
    assert_eq!(
        pool.state().counters.closed_broken,
        1,
        "retired, not lent again"
    );

    // The next borrower is served by a new connection (the muted one's
    // server task still holds the old).
    let mut conn = pool.get_for(&url).await.unwrap();
    assert_eq!(round_trip(&mut conn, "three").await.unwrap(), "three");
    assert_eq!(server.handshakes(), 2);
    drop(conn);
    pool.close().await;
}

// A borrower's own read timeout holds until the connection comes back; the
// next borrower has the manager's (here none) again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_borrowers_own_read_timeout_ends_with_its_borrow() {
    let server = WsServer::echo().await;
    let url: WsUrl = server.url("ws").parse().unwrap();
    let pool = Pool::builder(WsManager::new()).build().await.unwrap();

    let mut conn = pool.get_for(&url).await.unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(100)));
    // Nothing sent: nothing comes; the read fails at its own deadline.
    let start = Instant::now();
    let got = timeout(BOUND, conn.next())
        .await
        .expect("bounded")
        .expect("open");
    assert!(got.is_err(), "{got:?}");
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    drop(conn);

    let mut conn = pool.get_for(&url).await.unwrap();
    assert_eq!(round_trip(&mut conn, "mine").await.unwrap(), "mine");
    // The manager's default (none): a silent read is still waiting.
    assert!(
        timeout(Duration::from_millis(300), conn.next())
            .await
            .is_err()
    );
    drop(conn);
    pool.close().await;
}
