//! The TCP manager against real sockets on 127.0.0.1 (in-process servers
//! from `support::echo`, and the fault proxy of `support::fault`). Real I/O
//! rules out tokio's paused clock here: every wait on a network event is
//! bounded by a short real timeout (a few seconds) that only a broken
//! implementation runs into, and no test sleeps to synchronize. The polling
//! waits (`support::until`) watch a counter move, 1 ms at a time, under a
//! 5 s bound.

use connpool::Pool;
use connpool::managers::tcp::{Destination, TcpConn, TcpManager};
use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::support::BOUND;
use crate::support::echo::EchoServer;

mod concurrency;
mod destinations;
mod keepalive;
mod peer_closed;
mod pings;
mod restart;
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "freebsd"
))]
mod socket_options;

/// The in-process echo server, and the destination that reaches it.
async fn echo_server() -> (EchoServer, Destination) {
    let server = EchoServer::start().await;
    let dest = Destination::from(server.addr);
    (server, dest)
}

/// The TCP manager with the app-level line ping (`ping` → `pong`).
fn pinging() -> TcpManager {
    TcpManager::new().line_ping("ping\n", "pong\n")
}

/// One round trip of `msg` on a connection that then goes back idle;
/// returns its local port.
async fn used_once(pool: &Pool<TcpManager>, dest: &Destination, msg: &[u8]) -> u16 {
    let mut conn = pool.get_for(dest).await.unwrap();
    round_trip(&mut conn, msg).await;
    local_port(&conn)
}

/// Writes `msg` and checks the echo comes back.
async fn round_trip(conn: &mut TcpConn, msg: &[u8]) {
    timeout(BOUND, async {
        conn.write_all(msg).await.unwrap();
        let mut back = vec![0; msg.len()];
        conn.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg, "the echo of our own request");
    })
    .await
    .expect("round trip within 5 s");
}

/// A second descriptor on `conn`'s socket, registered with tokio, so the test
/// can wait for the peer's FIN/RST/bytes to reach the socket (readiness: it
/// consumes nothing) while the connection sits idle in the pool.
fn watcher(conn: &TcpConn) -> TcpStream {
    let dup = SockRef::from(conn.stream()).try_clone().unwrap();
    TcpStream::from_std(std::net::TcpStream::from(dup)).unwrap()
}

/// Waits until something (FIN, RST or bytes) reached the watched socket.
async fn arrived(watcher: TcpStream) {
    timeout(BOUND, watcher.readable())
        .await
        .expect("the peer's FIN/RST/bytes within 5 s")
        .unwrap();
}

fn local_port(conn: &TcpConn) -> u16 {
    conn.local_addr().port()
}
