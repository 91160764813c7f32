//! The socket options (`TCP_NODELAY`, TCP keepalive) read back from the
//! sockets the pool lends.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::tcp::{
    DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_KEEPALIVE_RETRIES, DEFAULT_KEEPALIVE_TIME, Ping,
    TcpKeepaliveConfig, TcpManager,
};
use socket2::SockRef;

use super::echo_server;

/// The socket options of a connection the pool lends.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "freebsd"
))]
async fn options_of<P: Ping>(manager: TcpManager<P>) -> (bool, bool, Option<(u64, u64, u32)>) {
    let (_server, dest) = echo_server().await;
    let pool = Pool::builder(manager).build().await.unwrap();
    let conn = pool.get_for(&dest).await.unwrap();
    let sock = SockRef::from(conn.stream());
    let nodelay = sock.tcp_nodelay().unwrap();
    let keepalive = sock.keepalive().unwrap();
    let params = keepalive.then(|| {
        (
            sock.tcp_keepalive_time().unwrap().as_secs(),
            sock.tcp_keepalive_interval().unwrap().as_secs(),
            sock.tcp_keepalive_retries().unwrap(),
        )
    });
    drop(conn);
    pool.close().await;
    (nodelay, keepalive, params)
}

// (3) The options are really set: read back from the socket.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "freebsd"
))]
#[tokio::test]
async fn socket_options_read_back() {
    assert_eq!(
        (
            DEFAULT_KEEPALIVE_TIME,
            DEFAULT_KEEPALIVE_INTERVAL,
            DEFAULT_KEEPALIVE_RETRIES
        ),
        (Duration::from_secs(60), Duration::from_secs(10), 3)
    );
    assert_eq!(
        options_of(TcpManager::new()).await,
        (true, true, Some((60, 10, 3))),
        "defaults"
    );

    let custom = TcpManager::new()
        .nodelay(false)
        .keepalive(TcpKeepaliveConfig {
            time: Duration::from_secs(7),
            interval: Duration::from_secs(3),
            retries: 5,
        });
    assert_eq!(
        options_of(custom).await,
        (false, true, Some((7, 3, 5))),
        "custom"
    );

    // Sub-second values are raised to the kernel's 1 s minimum, not refused.
    let tiny = TcpManager::new().keepalive(TcpKeepaliveConfig {
        time: Duration::from_millis(10),
        interval: Duration::ZERO,
        retries: 0,
    });
    assert_eq!(
        options_of(tiny).await,
        (true, true, Some((1, 1, 1))),
        "clamped"
    );

    let off = TcpManager::new().keepalive(None);
    assert_eq!(options_of(off).await, (true, false, None), "keepalive off");
}
