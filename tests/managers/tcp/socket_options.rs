//! The socket options (`TCP_NODELAY`, TCP keepalive) read back from the
//! sockets the pool lends.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::tcp::{
    TCP_KEEPALIVE_INTERVAL, TCP_KEEPALIVE_RETRIES, TCP_KEEPALIVE_TIME, TcpManager,
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
async fn options_of(manager: TcpManager) -> (bool, bool, Option<(u64, u64, u32)>) {
    options_and_user_timeout(manager).await.0
}

/// The socket options, and `TCP_USER_TIMEOUT` where the system has it.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "freebsd"
))]
async fn options_and_user_timeout(
    manager: TcpManager,
) -> ((bool, bool, Option<(u64, u64, u32)>), Option<Duration>) {
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
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let user_timeout = sock.tcp_user_timeout().unwrap();
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let user_timeout = None;
    drop(conn);
    pool.close().await;
    ((nodelay, keepalive, params), user_timeout)
}

/// A write to a vanished peer fails when the keepalive probes would have
/// declared it dead, not after TCP's own minutes of retransmission.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[tokio::test]
async fn tcp_user_timeout_follows_the_keepalive_settings() {
    let (_, defaults) = options_and_user_timeout(TcpManager::new()).await;
    assert_eq!(defaults, Some(Duration::from_secs(90)), "60 s + 3 × 10 s");
    let custom = TcpManager::new()
        .tcp_keepalive(Some(Duration::from_secs(2)))
        .tcp_keepalive_interval(Duration::from_millis(500))
        .tcp_keepalive_retries(2);
    let (_, custom) = options_and_user_timeout(custom).await;
    assert_eq!(
        custom,
        Some(Duration::from_secs(4)),
        "2 s + 2 × 1 s (raised)"
    );
    let (_, off) = options_and_user_timeout(TcpManager::new().tcp_keepalive(None)).await;
    assert_eq!(off, None, "keepalive off: the system's");
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
            TCP_KEEPALIVE_TIME,
            TCP_KEEPALIVE_INTERVAL,
            TCP_KEEPALIVE_RETRIES
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
        .tcp_keepalive(Some(Duration::from_secs(7)))
        .tcp_keepalive_interval(Duration::from_secs(3))
        .tcp_keepalive_retries(5);
    assert_eq!(
        options_of(custom).await,
        (false, true, Some((7, 3, 5))),
        "custom"
    );

    // Sub-second values are raised to the kernel's 1 s minimum, not refused.
    let tiny = TcpManager::new()
        .tcp_keepalive(Some(Duration::from_millis(10)))
        .tcp_keepalive_interval(Duration::ZERO)
        .tcp_keepalive_retries(0);
    assert_eq!(
        options_of(tiny).await,
        (true, true, Some((1, 1, 1))),
        "clamped"
    );

    let off = TcpManager::new().tcp_keepalive(None);
    assert_eq!(options_of(off).await, (true, false, None), "keepalive off");
}
