//! The TCP manager against real sockets on 127.0.0.1 (in-process servers
//! from `support::echo`, and the fault proxy of `support::fault`). Real I/O
//! rules out tokio's paused clock here: every wait on a network event is
//! bounded by a short real timeout (a few seconds) that only a broken
//! implementation runs into, and no test sleeps to synchronize. The polling
//! waits (`support::until`) watch a counter move, 1 ms at a time, under a
//! 5 s bound.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use connpool::managers::tcp::{
    DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_KEEPALIVE_RETRIES, DEFAULT_KEEPALIVE_TIME, Destination,
    LinePing, Ping, TcpConn, TcpKeepaliveConfig, TcpManager,
};
use connpool::{CloseReason, ConnectError, Error, HealthCheck, Manager, Pool, async_trait};
use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::support::echo::EchoServer;
use crate::support::fault::FaultProxy;
use crate::support::{BOUND, until};

/// The in-process echo server, and the destination that reaches it.
async fn echo_server() -> (EchoServer, Destination) {
    let server = EchoServer::start().await;
    let dest = Destination::from(server.addr);
    (server, dest)
}

/// The TCP manager with the app-level line ping (`ping` → `pong`).
fn pinging() -> TcpManager<LinePing> {
    TcpManager::new().with_ping(LinePing::default())
}

/// One round trip of `msg` on a connection that then goes back idle;
/// returns its local port.
async fn used_once<P: Ping>(pool: &Pool<TcpManager<P>>, dest: &Destination, msg: &[u8]) -> u16 {
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
    conn.local_addr().unwrap().port()
}

// (1) A peer that closed (FIN) or reset (RST) an idle connection: `is_broken`
// sees it at checkout, the connection is never lent, the pool dials anew.
#[tokio::test]
async fn closed_or_reset_idle_connection_is_never_lent() {
    for reset in [false, true] {
        let (server, dest) = echo_server().await;
        let pool = Pool::builder(TcpManager::new())
            .health_check(HealthCheck::Never) // is_broken alone
            .build()
            .await
            .unwrap();

        let mut conn = pool.get_for(&dest).await.unwrap();
        round_trip(&mut conn, b"hello\n").await;
        let old = local_port(&conn);
        let watch = watcher(&conn);
        drop(conn);
        assert_eq!(pool.state().idle, 1);

        if reset {
            server.reset_all();
        } else {
            server.close_all();
        }
        arrived(watch).await;

        let mut conn = pool.get_for(&dest).await.unwrap();
        assert_ne!(
            local_port(&conn),
            old,
            "reset={reset}: the dead one was lent"
        );
        round_trip(&mut conn, b"fresh\n").await;
        let counters = pool.state().counters;
        assert_eq!(counters.closed(CloseReason::Broken), 1, "reset={reset}");
        assert_eq!(counters.dials, 2);
        assert_eq!(server.accepted(), 2);

        // And on return: the peer closes a lent connection; it is not kept.
        let watch = watcher(&conn);
        if reset {
            server.reset_all();
        } else {
            server.close_all();
        }
        arrived(watch).await;
        assert!(pool.manager().is_broken(&mut conn));
        drop(conn);
        let state = pool.state();
        assert_eq!(state.idle, 0);
        assert_eq!(state.counters.closed(CloseReason::Broken), 2);
        pool.close().await;
    }
}

// (1b) Bytes nobody asked for on an idle connection (a late reply): the
// stream is out of step, so it is not lent; with `unread_data_is_broken(false)`
// it is, and the borrower reads them.
#[tokio::test]
async fn unsolicited_bytes_on_an_idle_connection() {
    for strict in [true, false] {
        let (server, dest) = echo_server().await;
        let manager = TcpManager::new().unread_data_is_broken(strict);
        let pool = Pool::builder(manager)
            .health_check(HealthCheck::Never)
            .build()
            .await
            .unwrap();
        let mut conn = pool.get_for(&dest).await.unwrap();
        round_trip(&mut conn, b"hello\n").await;
        let old = local_port(&conn);
        let watch = watcher(&conn);
        drop(conn);
        server.send_all(b"late reply\n");
        arrived(watch).await;

        let mut conn = pool.get_for(&dest).await.unwrap();
        if strict {
            assert_ne!(local_port(&conn), old);
            assert_eq!(pool.state().counters.closed(CloseReason::Broken), 1);
        } else {
            assert_eq!(local_port(&conn), old);
            let mut late = [0; 11];
            timeout(BOUND, conn.read_exact(&mut late))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&late, b"late reply\n");
        }
        round_trip(&mut conn, b"next\n").await;
        drop(conn);
        pool.close().await;
    }
}

// (2) 64 tasks × 25 round trips with `max_open_per_key(4)`: the server never
// sees more than 4 connections, and every request gets its own reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tasks_share_at_most_four_connections() {
    const TASKS: usize = 64;
    const ROUNDS: usize = 25;
    let (server, dest) = echo_server().await;
    let pool = Pool::builder(pinging())
        .max_open_per_key(4)
        .build()
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let pool = pool.clone();
        let dest = dest.clone();
        tasks.spawn(async move {
            for r in 0..ROUNDS {
                let mut conn = pool.get_for(&dest).await.unwrap();
                round_trip(&mut conn, format!("task {t} round {r}\n").as_bytes()).await;
            }
        });
    }
    let all = timeout(Duration::from_secs(20), async {
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    });
    all.await.expect("all round trips within 20 s");
    let state = pool.state();
    assert_eq!(state.counters.gets, (TASKS * ROUNDS) as u64);
    assert!(server.max_concurrent() <= 4, "{}", server.max_concurrent());
    assert!(server.accepted() <= 4, "{}", server.accepted());
    assert!(state.open <= 4);
    pool.close().await;
}

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

// (4) A half-open peer (a black hole: no reply, no FIN, no RST) is declared
// dead by the pool's background keepalive with the app-level ping, within
// keepalive_interval + keepalive_timeout of going idle.
#[tokio::test]
async fn keepalive_declares_a_blackholed_peer_dead() {
    const INTERVAL: Duration = Duration::from_millis(200);
    const TIMEOUT: Duration = Duration::from_millis(200);
    let server = EchoServer::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let dest = Destination::from(proxy.addr);
    let pool = Pool::builder(pinging())
        .keepalive_interval(INTERVAL)
        .keepalive_timeout(TIMEOUT)
        .jitter(0.0)
        .build()
        .await
        .unwrap();
    let mut conn = pool.get_for(&dest).await.unwrap();
    round_trip(&mut conn, b"through the proxy\n").await;
    proxy.blackhole();

    let idle_since = Instant::now();
    drop(conn);
    until("declared dead", || {
        pool.state().counters.closed(CloseReason::Keepalive) > 0
    })
    .await;
    let elapsed = idle_since.elapsed();
    println!(
        "blackholed peer declared dead {elapsed:?} after going idle \
         (keepalive_interval {INTERVAL:?} + keepalive_timeout {TIMEOUT:?})"
    );
    // On a running clock the pool stamps a return with the coarse clock,
    // which may be one kernel tick (4 ms at 250 Hz, 10 ms at 100 Hz) behind:
    // the ping may start that much before a full interval (src/clock.rs).
    const ONE_TICK: Duration = Duration::from_millis(10);
    assert!(
        elapsed + ONE_TICK >= INTERVAL + TIMEOUT,
        "{elapsed:?}: before the ping could time out"
    );
    // A second keepalive round would end at 2 × (interval + timeout): the
    // bound fails an implementation that needed it, not a slow machine.
    assert!(elapsed < 2 * (INTERVAL + TIMEOUT), "{elapsed:?}: late");
    let state = pool.state();
    assert_eq!(state.open, 0);
    assert_eq!(state.counters.keepalive_pings, 1);
    assert_eq!(state.counters.keepalive_failures, 1);
    // The proxy never let the ping through.
    assert_eq!(server.pings(), 0);
    pool.close().await;
}

// (4b) The abandoned-ping contract in keepalive: with keepalive_max_missed(3)
// a ping that timed out is *not* just a miss: its reply may still come, so
// `is_broken` says so and the connection is closed after the first one.
#[tokio::test]
async fn a_timed_out_keepalive_ping_closes_even_below_max_missed() {
    let (server, dest) = echo_server().await;
    let pool = Pool::builder(pinging())
        .keepalive_interval(Duration::from_millis(100))
        .keepalive_timeout(Duration::from_millis(100))
        .keepalive_max_missed(3)
        .jitter(0.0)
        .build()
        .await
        .unwrap();
    let mut conn = pool.get_for(&dest).await.unwrap();
    round_trip(&mut conn, b"hi\n").await;
    server.hold_all();
    drop(conn);
    server.next_held_ping().await;
    until("closed", || {
        pool.state().counters.closed(CloseReason::Keepalive) > 0
    })
    .await;
    let counters = pool.state().counters;
    assert_eq!(counters.keepalive_pings, 1, "one missed ping was enough");
    assert_eq!(server.pings(), 1);
    server.release_all();
    let mut conn = pool.get_for(&dest).await.unwrap();
    round_trip(&mut conn, b"no stale pong\n").await;
    assert_eq!(server.accepted(), 2);
    drop(conn);
    pool.close().await;
}

// (5) Health check `Always` with the app ping: a connection whose server
// stopped answering pings (but did not close) is not lent; one that answers is.
#[tokio::test]
async fn health_check_does_not_lend_a_silent_connection() {
    let (server, dest) = echo_server().await;
    let pool = Pool::builder(pinging())
        .health_check(HealthCheck::Always)
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
    assert_eq!(counters.closed(CloseReason::HealthCheck), 1);
    assert_eq!(server.pings(), 2);
    assert_eq!(server.accepted(), 2);
    drop(conn);
    pool.close().await;
}

// (6) "localhost:port" resolves; malformed destinations fail the get with
// `Error::Connect` carrying an `InvalidInput` io error that names the string
// and what is wrong with it. No DNS traffic: each is refused before any
// lookup.
#[tokio::test]
async fn destination_resolution() {
    let server = EchoServer::start().await;
    let port = server.addr.port();
    let pool = Pool::builder(TcpManager::new())
        .connect_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();

    let localhost = Destination::from(format!("localhost:{port}"));
    assert_eq!(localhost.socket_addr(), None);
    let mut conn = pool.get_for(&localhost).await.unwrap();
    assert!(conn.peer().ip().is_loopback());
    assert_eq!(conn.peer().port(), port);
    round_trip(&mut conn, b"by name\n").await;
    drop(conn);

    let long_label = "a".repeat(70);
    let bad = [
        (format!("{long_label}.invalid:{port}"), "63"),
        ("localhost:notaport".to_string(), "not a number"),
        ("localhost".to_string(), "no port"),
        ("localhost:".to_string(), "no port"),
        ("[::1".to_string(), "unclosed '['"),
        ("[::1]".to_string(), "no port"),
        ("[nope]:80".to_string(), "not an IPv6 address"),
        (":80".to_string(), "no host"),
        (" 127.0.0.1:80".to_string(), "' '"),
        ("host:99999".to_string(), "out of range"),
        ("::1:80".to_string(), "brackets"),
        ("a..b:80".to_string(), "empty label"),
    ];
    for (name, what) in bad {
        let dest = Destination::from(name.as_str());
        match pool.get_for(&dest).await {
            Err(Error::Connect(ConnectError::Manager(e))) => {
                assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{name}: {e}");
                let msg = e.to_string();
                assert!(msg.contains(&format!("{name:?}")), "{name}: {msg}");
                assert!(msg.contains(what), "{name}: {msg} should say {what:?}");
            }
            other => panic!("{name}: {:?}", other.map(|_| ())),
        }
    }

    // Resolved but nobody listens: the connect error, with the address tried.
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dest = Destination::from(("127.0.0.1", closed_port));
    match pool.get_for(&dest).await {
        Err(Error::Connect(ConnectError::Manager(e))) => {
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("connecting to 127.0.0.1:{closed_port}:")),
                "{msg}"
            );
            assert_eq!(
                msg.matches(&format!("127.0.0.1:{closed_port}")).count(),
                1,
                "an address is said once: {msg}"
            );
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    pool.close().await;
}

#[test]
fn destination_keys() {
    use std::collections::HashSet;
    let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let v6: SocketAddr = "[::1]:80".parse().unwrap();
    assert_eq!(Destination::from("127.0.0.1:80"), Destination::from(addr));
    assert_eq!(
        Destination::from(String::from("[::1]:80")),
        Destination::from(v6)
    );
    assert_eq!(Destination::from(("::1", 80)), Destination::from(v6));
    assert_eq!(Destination::from(("[::1]", 80)), Destination::from(v6));
    assert_eq!(Destination::from((addr.ip(), 80)), Destination::from(addr));
    assert_eq!(
        Destination::from(("db", 5432)),
        Destination::from("db:5432")
    );
    assert_ne!(Destination::from("db:5432"), Destination::from("db:5433"));
    assert_eq!(Destination::from(addr).socket_addr(), Some(addr));
    assert_eq!(Destination::from("db:5432").to_string(), "db:5432");
    assert_eq!(Destination::from(v6).to_string(), "[::1]:80");
    assert_eq!(
        format!("{:?}", Destination::from("db:5432")),
        "Destination(db:5432)"
    );
    let set: HashSet<Destination> = ["db:1", "db:1", "127.0.0.1:80"]
        .into_iter()
        .map(Destination::from)
        .chain([Destination::from(addr)])
        .collect();
    assert_eq!(set.len(), 2);
}

// (7) An abandoned health-check ping (the getter dropped mid-exchange, the
// pong not read yet) leaves nothing for the next user: that connection is
// closed and the next get dials a fresh one, whose first read is its own echo.
#[tokio::test]
async fn abandoned_health_check_leaves_no_half_read_data() {
    let (server, dest) = echo_server().await;
    let pool = Pool::builder(pinging())
        .health_check(HealthCheck::Always)
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
    assert_eq!(counters.closed(CloseReason::HealthCheck), 1);
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
    assert!(!manager.is_broken(&mut conn));
    assert!(!conn.ping_abandoned());

    server.hold_all();
    let watch = watcher(&conn);
    let abandoned = timeout(Duration::from_millis(100), manager.ping(&mut conn)).await;
    assert!(abandoned.is_err(), "the held ping cannot have finished");
    assert!(conn.ping_abandoned());
    assert!(manager.is_broken(&mut conn));
    server.release_all();
    arrived(watch).await; // the late pong is in the socket now
    assert!(
        manager.is_broken(&mut conn),
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
    struct Custom;
    #[async_trait]
    impl Ping for Custom {
        async fn ping(&self, stream: &mut TcpStream) -> io::Result<()> {
            LinePing::new("hello\n", "howdy\n").ping(stream).await
        }
    }
    let server = EchoServer::start().await;
    let manager = TcpManager::new().with_ping(Custom);
    let mut conn = manager.connect(&server.addr.into()).await.unwrap();
    let err = timeout(BOUND, manager.ping(&mut conn))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(manager.is_broken(&mut conn));
}
