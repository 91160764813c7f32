//! Silent partitions under an idle connection, for every manager, in a
//! network namespace of each test's own (`support::netns`): the pool must
//! close the connection within what its liveness settings promise (the
//! pool's keepalive ping where the manager's ping is a round trip; the
//! kernel's TCP keepalive or HTTP/2 PINGs where it is local), so that no
//! getter is lent it, and its socket is closed (no task left driving it);
//! after the heal, the next get dials a new connection at once. Each test prints its figures (`-- --nocapture`).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use connpool::{Builder, Manager, Pool};

use crate::support::alone;
use crate::support::netns::Netns;

/// Slack over a bound for the scheduler and the loopback.
const SLACK: Duration = Duration::from_millis(400);

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The pool's keepalive here: an idle connection pinged every 200 ms, 200
/// ms to answer, closed at the first miss. Found dead within about 600 ms
/// (an interval, jitter, a timeout) where the ping is a round trip.
fn watched<M: Manager>(manager: M) -> Builder<M> {
    Pool::builder(manager)
        .keepalive_interval(ms(200))
        .ping_timeout(ms(200))
        .keepalive_max_missed(1)
        .connect_timeout(ms(500))
}

/// Kernel TCP keepalive for the managers whose ping is local: the first
/// probe after 1 s idle, one more 1 s later, dead after it (about 2 s).
#[cfg(any(feature = "tls", feature = "http"))]
fn kernel_keepalive() -> connpool::managers::tcp::TcpManager {
    connpool::managers::tcp::TcpManager::new()
        .tcp_keepalive(Some(Duration::from_secs(1)))
        .tcp_keepalive_interval(Duration::from_secs(1))
        .tcp_keepalive_retries(1)
}

/// One connection of `key` dialed and left idle; `port` partitioned: the
/// pool must close it within `within`; healed: the next get must be
/// served by a new connection within 500 ms.
async fn found_dead<M: Manager>(
    ns: &Netns,
    what: &str,
    pool: Pool<M>,
    key: &M::Key,
    port: u16,
    within: Duration,
) where
    M::Error: Debug,
{
    drop(pool.get_for(key).await.unwrap());
    assert_eq!(pool.state().idle, 1, "{what}: {:?}", pool.state());
    ns.partition(port);
    let start = Instant::now();
    let closed = |pool: &Pool<M>| {
        let c = pool.state().counters;
        c.closed_keepalive + c.closed_broken
    };
    while closed(&pool) == 0 {
        let waited = start.elapsed();
        assert!(
            waited < within + SLACK,
            "{what}: the idle connection still open after {waited:?}"
        );
        // The load's pace, not a synchronisation: the pool acts by itself.
        tokio::time::sleep(ms(10)).await;
    }
    let found = start.elapsed();
    // Closed means closed here too, within a second: its socket is no
    // longer an open connection (the task that drove it ended, or was
    // ended), though the peer cannot hear of it until the heal.
    let closing = Instant::now();
    while established_to(port) > 0 {
        let waited = closing.elapsed();
        assert!(
            waited < Duration::from_secs(1),
            "{what}: a socket to port {port} still open {waited:?} after the close"
        );
        tokio::time::sleep(ms(10)).await;
    }
    let gone = closing.elapsed();
    ns.heal();
    let healed = Instant::now();
    let conn = pool.get_for(key).await;
    let first = healed.elapsed();
    assert!(conn.is_ok(), "{what}: {:?}", conn.err());
    assert!(first < ms(500), "{what}: {first:?} after the heal");
    let c = pool.state().counters;
    assert_eq!(c.dials, 2, "{what}: a new connection after the heal: {c:?}");
    eprintln!(
        "{what}, idle in a partition: closed after {found:?} (bound {within:?}, keepalive {}, broken {}), its socket {gone:?} later; served {first:?} after the heal",
        c.closed_keepalive, c.closed_broken
    );
}

/// Client sockets in this network namespace connected to `port` (`ss`).
fn established_to(port: u16) -> usize {
    let out = std::process::Command::new("ss")
        .args([
            "-Htn",
            "state",
            "established",
            &format!("( dport = :{port} )"),
        ])
        .output()
        .expect("ss (iproute2)");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// Runs `test` in a network namespace of its own, alone in the process.
fn in_netns<F: Future<Output = ()>>(test: impl FnOnce(Arc<Netns>) -> F) {
    let _alone = alone();
    let Some(ns) = Netns::new() else { return };
    ns.run(test(Arc::clone(&ns)));
}

#[cfg(feature = "tcp")]
#[test]
fn tcp_with_a_line_ping() {
    use connpool::managers::tcp::TcpManager;

    use crate::support::echo::EchoServer;

    in_netns(async |ns| {
        let server = EchoServer::start().await;
        let manager = TcpManager::new().line_ping("PING\n", "PING\n");
        let pool = watched(manager).build().await.unwrap();
        let key = server.addr.into();
        found_dead(&ns, "TCP", pool, &key, server.addr.port(), ms(600)).await;
    });
}

#[cfg(feature = "tls")]
#[test]
fn tls_with_a_line_ping() {
    use connpool::managers::tcp::{Destination, TcpManager};
    use connpool::managers::tls::TlsConfig;

    use crate::support::tls::{Ca, Leaf, echo_server};

    in_netns(async |ns| {
        let ca = Ca::new("idle");
        let port = echo_server(ca.server(Leaf::Good, &[], false)).await;
        let config = TlsConfig::from_client_config(ca.client());
        // The ping goes over TLS: in plaintext it would break the session.
        let manager = TcpManager::new().line_ping("PING\n", "PING\n").tls(config);
        let pool = watched(manager).build().await.unwrap();
        let key = Destination::from(("localhost", port));
        found_dead(&ns, "TLS", pool, &key, port, ms(600)).await;
    });
}

#[cfg(feature = "tls")]
#[test]
fn tls_by_the_kernels_keepalive() {
    use connpool::managers::tcp::Destination;
    use connpool::managers::tls::TlsConfig;

    use crate::support::tls::{Ca, Leaf, echo_server};

    in_netns(async |ns| {
        let ca = Ca::new("idle");
        let port = echo_server(ca.server(Leaf::Good, &[], false)).await;
        let config = TlsConfig::from_client_config(ca.client());
        let pool = watched(kernel_keepalive().tls(config))
            .build()
            .await
            .unwrap();
        let key = Destination::from(("localhost", port));
        found_dead(&ns, "TLS", pool, &key, port, ms(2600)).await;
    });
}

#[cfg(feature = "http")]
#[test]
fn http1_by_the_kernels_keepalive() {
    use connpool::managers::http::HttpManager;

    in_netns(async |ns| {
        let addr = super::partition::ok_server(false).await;
        let manager = HttpManager::http1().with_tcp(kernel_keepalive());
        let pool = watched(manager).build().await.unwrap();
        found_dead(&ns, "HTTP/1.1", pool, &addr.into(), addr.port(), ms(2600)).await;
    });
}

#[cfg(feature = "http")]
#[test]
fn http2_by_its_pings() {
    use connpool::managers::http::HttpManager;

    in_netns(async |ns| {
        let addr = super::partition::ok_server(true).await;
        // hyper's PINGs on the pool's schedule: 200 ms, 200 ms.
        let pool = watched(HttpManager::http2()).build().await.unwrap();
        // A PING due, its timeout, the pool's next look.
        found_dead(&ns, "HTTP/2", pool, &addr.into(), addr.port(), ms(800)).await;
    });
}

#[cfg(feature = "grpc")]
#[test]
fn grpc_by_the_pools_health_check() {
    use connpool::managers::grpc::GrpcManager;

    use crate::support::grpc::GrpcServer;

    in_netns(async |ns| {
        let server = GrpcServer::start(None).await;
        let pool = watched(GrpcManager::new()).build().await.unwrap();
        let key = server.addr.into();
        found_dead(&ns, "gRPC", pool, &key, server.addr.port(), ms(600)).await;
    });
}

#[cfg(feature = "websocket")]
#[test]
fn websocket_by_the_pools_ping_frame() {
    use connpool::managers::websocket::{WsManager, WsUrl};

    use crate::support::ws::WsServer;

    in_netns(async |ns| {
        let server = WsServer::echo().await;
        let url = WsUrl::parse(&server.url("ws")).unwrap();
        let pool = watched(WsManager::new()).build().await.unwrap();
        found_dead(&ns, "WebSocket", pool, &url, server.addr.port(), ms(600)).await;
    });
}

#[cfg(feature = "redis")]
#[test]
fn redis_by_the_pools_ping() {
    use connpool::managers::redis::RedisManager;

    use crate::support::redis::RedisServer;

    in_netns(async |ns| {
        // Started from a thread in the namespace: the server is in it too.
        let Some(server) = RedisServer::new() else {
            return;
        };
        let manager = RedisManager::from_url(&server.url("")).unwrap();
        let key = manager.key();
        let pool = watched(manager).build().await.unwrap();
        found_dead(&ns, "Redis", pool, &key, server.port(), ms(600)).await;
    });
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_by_the_pools_ping() {
    use connpool::managers::postgres::PostgresManager;

    use crate::support::pg;

    in_netns(async |ns| {
        // Started from a thread in the namespace: the server is in it too.
        let Some(server) = pg::dedicated() else {
            return;
        };
        let mut config = server.config();
        config.connect_timeout(ms(500));
        let port = config.get_ports()[0];
        let pool = watched(PostgresManager::new(config).single())
            .build()
            .await
            .unwrap();
        found_dead(&ns, "PostgreSQL", pool, &(), port, ms(600)).await;
    });
}
