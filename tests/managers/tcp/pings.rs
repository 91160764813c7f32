//! Health checks and pings: a silent connection is not lent, and a ping
//! abandoned mid-exchange (or answered wrongly) leaves the connection
//! broken, never half-read.

use std::io;
use std::time::Duration;

use connpool::managers::tcp::{TcpConn, TcpManager};
use connpool::{Manager, Pool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tokio::time::timeout;

use crate::support::BOUND;
use crate::support::echo::EchoServer;

use super::{arrived, echo_server, local_port, pinging, round_trip, used_once, watcher};

// (5) Health check `Always` with the app ping: a connection whose server
// stopped answering pings (but did not close) is not lent; one that answers is.
#[tokio::test]
async fn health_check_does_not_lend_a_silent_connection() {
    let (server, dest) = echo_server().await;
    let pool = Pool::builder(pinging())
        .health_check(Duration::ZERO)
        .ping_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let first = used_once(&pool, &dest, b"one\n").await;

    // Answered: the same connection is lent.
    let mut conn = pool.get_for(&dest).await.unwrap();
    assert_eq!(local_port(&conn), first);
    assert_eq!(server.pings(), 1);
    round_trip(&mut conn, b"two\n").await;
    drop(conn);

    server.mute_all();
    let mut conn = pool.get_for(&dest).await.unwrap();
    assert_ne!(local_port(&conn), first, "the silent connection was lent");
    round_trip(&mut conn, b"three\n").await;
    let counters = pool.state().counters;
    assert_eq!(counters.health_checks, 2);
    assert_eq!(counters.health_check_failures, 1);
    assert_eq!(counters.closed_health_check, 1);
    assert_eq!(server.pings(), 2);
    assert_eq!(server.accepted(), 2);
    drop(conn);
    pool.close().await;
}

// (7) An abandoned health-check ping (the getter dropped mid-exchange, the
// pong not read yet) leaves nothing for the next user: that connection is
// closed and the next get dials a fresh one, whose first read is its own echo.
#[tokio::test]
async fn abandoned_health_check_leaves_no_half_read_data() {
    let (server, dest) = echo_server().await;
    let pool = Pool::builder(pinging())
        .health_check(Duration::ZERO)
        .ping_timeout(Duration::from_secs(10))
        .build()
        .await
        .unwrap();
    let first = used_once(&pool, &dest, b"before\n").await;

    server.hold_all();
    let getter = tokio::spawn({
        let pool = pool.clone();
        let dest = dest.clone();
        async move {
            let _ = pool.get_for(&dest).await;
        }
    });
    server.next_held_ping().await; // the ping is written, its pong held back
    getter.abort();
    assert!(getter.await.unwrap_err().is_cancelled());
    server.release_all(); // the pong goes out now

    let mut conn = pool.get_for(&dest).await.unwrap();
    assert_ne!(local_port(&conn), first, "the mid-ping connection was lent");
    round_trip(&mut conn, b"after\n").await; // not "pong\n"
    let counters = pool.state().counters;
    assert_eq!(counters.closed_health_check, 1);
    assert_eq!(server.accepted(), 2);
    drop(conn);
    pool.close().await;
}

// (7b) The same contract at the manager level: a ping dropped mid-exchange
// marks the connection broken for good (even once its pong has arrived); a
// completed ping leaves it healthy.
#[tokio::test]
async fn abandoned_ping_marks_the_connection_broken() {
    let server = EchoServer::start().await;
    let manager = pinging();
    let mut conn = manager.connect(&server.addr.into()).await.unwrap();
    round_trip(&mut conn, b"up\n").await;
    timeout(BOUND, manager.ping(&mut conn))
        .await
        .unwrap()
        .unwrap();
    assert!(!manager.health(&mut conn).is_broken());
    assert!(!conn.ping_abandoned());

    server.hold_all();
    let watch = watcher(&conn);
    let abandoned = timeout(Duration::from_millis(100), manager.ping(&mut conn)).await;
    assert!(abandoned.is_err(), "the held ping cannot have finished");
    assert!(conn.ping_abandoned());
    assert!(manager.health(&mut conn).is_broken());
    server.release_all();
    arrived(watch).await; // the late pong is in the socket now
    assert!(
        manager.health(&mut conn).is_broken(),
        "still broken with the pong readable"
    );
    // A ping on a broken connection fails at once, without I/O.
    let err = manager.ping(&mut conn).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
    assert_eq!(server.pings(), 1 + 1);
}

/// A ping with a wrong reply fails with `InvalidData`, and the connection
/// is then broken (its stream position is unknown).
#[tokio::test]
async fn wrong_ping_reply_fails() {
    // The user's own ping, through `with_ping`: its error is the ping's.
    let custom = TcpManager::new().with_ping(|conn: &mut TcpConn| {
        Box::pin(async move {
            conn.write_all(b"hello\n").await?;
            let mut reply = [0; 6];
            conn.read_exact(&mut reply).await?;
            match &reply {
                b"howdy\n" => Ok(()),
                _ => Err(io::Error::new(io::ErrorKind::InvalidData, "not howdy")),
            }
        })
    });
    let server = EchoServer::start().await;
    let line = TcpManager::new().line_ping("hello\n", "howdy\n");
    for manager in [custom, line] {
        let mut conn = manager.connect(&server.addr.into()).await.unwrap();
        let err = timeout(BOUND, manager.ping(&mut conn))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(manager.health(&mut conn).is_broken());
    }
}
