//! Real network faults under requests in flight, in a network namespace of
//! each test's own (`support::netns`): a silent partition (every packet to
//! or from the server's port dropped, no RST, no FIN) while a connection
//! is in use, then the heal. Every call must end by its deadline with an
//! error that says why, the connection caught in the partition must not
//! be lent again, and the first call after the heal must succeed at once.
//! Each test prints its figures (`-- --nocapture`).

use std::time::{Duration, Instant};

use crate::support::alone;
use crate::support::netns::Netns;

/// Slack over a deadline for the scheduler and the loopback (a 2-core
/// machine running other tests' builds).
const SLACK: Duration = Duration::from_millis(400);

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "websocket")]
mod websocket;

/// How long after `from` `call` first succeeds, trying every 10 ms (the
/// client's retry loop) for at most 5 s; and how many tries it took.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn first_success<F, Fut, T, E>(from: Instant, mut call: F) -> (Duration, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Debug,
{
    let mut tries = 0;
    loop {
        tries += 1;
        let got = call().await;
        if got.is_ok() {
            return (from.elapsed(), tries);
        }
        assert!(from.elapsed() < Duration::from_secs(5), "{:?}", got.err());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A pool of `$manager` (connect timeout 500 ms) and an `HttpService`
/// over it to `$addr` with the request deadline `$deadline`.
#[cfg(feature = "http")]
macro_rules! http_client {
    ($manager:expr, $addr:expr, $deadline:expr) => {{
        let pool = connpool::Pool::builder($manager)
            .connect_timeout(Duration::from_millis(500))
            .build()
            .await
            .unwrap();
        let svc = connpool::managers::service::HttpService::new(pool.clone(), $addr);
        (pool, svc.timeout($deadline))
    }};
}

/// One `GET /` through the service `$svc`, its body read.
#[cfg(feature = "http")]
macro_rules! get_ok {
    ($svc:expr) => {
        async {
            use http_body_util::BodyExt;
            use tower::{Service, ServiceExt};
            let get = http::Request::get("/").body(http_body_util::Full::new(bytes::Bytes::new()));
            let response = $svc.ready().await?.call(get.unwrap()).await?;
            response.into_body().collect().await.map(|b| b.to_bytes())
        }
    };
}

/// An in-process hyper server on the namespace's loopback answering every
/// request `ok`, over HTTP/2 (h2c) if `h2`, else HTTP/1.1.
#[cfg(feature = "http")]
pub(super) async fn ok_server(h2: bool) -> std::net::SocketAddr {
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::rt::TokioIo;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let service = hyper::service::service_fn(|_| async {
                Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(
                    "ok",
                ))))
            });
            let io = TokioIo::new(socket);
            #[cfg(feature = "http")]
            if h2 {
                let builder =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
                tokio::spawn(builder.serve_connection(io, service));
                continue;
            }
            assert!(!h2, "HTTP/2 needs the `http` feature");
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    addr
}

#[cfg(feature = "http")]
#[test]
fn http1_a_request_in_flight_ends_at_its_deadline_and_the_next_one_succeeds() {
    use connpool::managers::HttpError;
    use connpool::managers::http::HttpManager;

    let _alone = alone();
    let Some(ns) = Netns::new() else { return };
    ns.run(async {
        let addr = ok_server(false).await;
        const DEADLINE: Duration = Duration::from_millis(500);
        let (pool, mut svc) = http_client!(HttpManager::http1(), addr, DEADLINE);
        assert_eq!(get_ok!(svc).await.unwrap(), "ok");

        ns.partition(addr.port());
        let start = Instant::now();
        let e = get_ok!(svc).await.unwrap_err();
        let took = start.elapsed();
        assert!(matches!(e, HttpError::TimedOut { .. }), "{e:?}");
        assert!(took < DEADLINE + SLACK, "{took:?}");

        ns.heal();
        let healed = Instant::now();
        assert_eq!(get_ok!(svc).await.unwrap(), "ok");
        let first = healed.elapsed();
        assert!(first < Duration::from_millis(500), "{first:?}");
        let broken = pool.state().counters.closed_broken;
        assert_eq!(broken, 1, "the connection caught in the partition closed");
        eprintln!(
            "HTTP/1.1 partition: the call in flight ended after {took:?} (deadline {DEADLINE:?}); first success {first:?} after the heal"
        );
    });
}

/// HTTP/2, one connection shared by every call: a call caught in the
/// partition ends at its deadline (its stream reset, the connection kept:
/// a slow call is not a dead connection), and three in a row without an
/// answer retire the connection, so the first call after the heal goes
/// out on a new one instead of waiting for TCP to resend on the old.
#[cfg(feature = "http")]
#[test]
fn http2_calls_in_flight_end_at_their_deadline_and_a_silent_connection_is_retired() {
    use connpool::managers::HttpError;
    use connpool::managers::http::HttpManager;

    let _alone = alone();
    let Some(ns) = Netns::new() else { return };
    ns.run(async {
        let addr = ok_server(true).await;
        const DEADLINE: Duration = Duration::from_millis(300);
        let (pool, mut svc) = http_client!(HttpManager::http2(), addr, DEADLINE);
        assert_eq!(get_ok!(svc).await.unwrap(), "ok");

        ns.partition(addr.port());
        let mut longest = Duration::ZERO;
        for _ in 0..3 {
            let start = Instant::now();
            let e = get_ok!(svc).await.unwrap_err();
            let took = start.elapsed();
            assert!(matches!(e, HttpError::TimedOut { .. }), "{e:?}");
            assert!(took < DEADLINE + SLACK, "{took:?}");
            longest = longest.max(took);
        }
        ns.heal();
        let healed = Instant::now();
        assert_eq!(get_ok!(svc).await.unwrap(), "ok");
        let first = healed.elapsed();
        assert!(first < Duration::from_millis(500), "{first:?}");
        let k = pool.state().counters;
        assert_eq!(k.dials, 2, "a new connection after the silent one: {k:?}");
        assert_eq!(k.closed_broken, 1, "the silent one: {k:?}");
        eprintln!(
            "HTTP/2 partition: 3 calls ended after at most {longest:?} (deadline {DEADLINE:?}); first success {first:?} after the heal, on a new connection"
        );
    });
}

#[cfg(feature = "grpc")]
#[test]
fn grpc_a_call_in_flight_ends_deadline_exceeded_at_its_grpc_timeout() {
    use connpool::Pool;
    use connpool::managers::grpc::GrpcManager;
    use connpool::managers::service::HttpService;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    use crate::support::grpc::GrpcServer;

    let _alone = alone();
    let Some(ns) = Netns::new() else { return };
    ns.run(async {
        let server = GrpcServer::start(None).await;
        let pool = Pool::builder(GrpcManager::new()).build().await.unwrap();
        let mut client = HealthClient::new(HttpService::new(pool, server.addr));
        client.check(HealthCheckRequest::default()).await.unwrap();

        ns.partition(server.addr.port());
        const DEADLINE: Duration = Duration::from_millis(500);
        let mut request = tonic::Request::new(HealthCheckRequest::default());
        request.set_timeout(DEADLINE);
        let start = Instant::now();
        let status = client.check(request).await.unwrap_err();
        let took = start.elapsed();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        assert!(took < DEADLINE + SLACK, "{took:?}");
        ns.heal();
        eprintln!("gRPC partition: the call ended DEADLINE_EXCEEDED after {took:?} (grpc-timeout {DEADLINE:?})");
    });
}

#[cfg(feature = "tcp")]
#[test]
fn tcp_a_write_into_a_partition_fails_within_the_user_timeout() {
    use connpool::Pool;
    use connpool::managers::tcp::TcpManager;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::support::echo::EchoServer;

    let _alone = alone();
    let Some(ns) = Netns::new() else { return };
    ns.run(async {
        let server = EchoServer::start().await;
        // Probes after 1 s, then 1 s apart, 1 of them: a user timeout of 2 s.
        let manager = TcpManager::new()
            .tcp_keepalive(Some(Duration::from_secs(1)))
            .tcp_keepalive_interval(Duration::from_secs(1))
            .tcp_keepalive_retries(1);
        let pool = Pool::builder(manager).build().await.unwrap();
        let mut conn = pool.get_for(&server.addr.into()).await.unwrap();
        conn.write_all(b"ping\n").await.unwrap();
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).await.unwrap();

        ns.partition(server.addr.port());
        let start = Instant::now();
        let stuck = async {
            conn.write_all(b"into the void\n").await?;
            conn.read(&mut buf).await
        };
        let ended = tokio::time::timeout(Duration::from_secs(30), stuck)
            .await
            .expect("the kernel must give up on the write");
        let took = start.elapsed();
        assert!(ended.is_err(), "{ended:?}");
        // The user timeout, and the retransmission that finds it passed.
        assert!(took < Duration::from_secs(5) + SLACK, "{took:?}");
        eprintln!(
            "TCP partition: the write in flight failed after {took:?} (TCP_USER_TIMEOUT 2 s): {}",
            ended.unwrap_err()
        );
    });
}

/// TLS over TCP: a read caught in the partition is cut by the borrower's
/// deadline, and the connection it leaves (a read waited: a late record
/// would reach the next borrower) is never lent again; after the heal the
/// next borrower gets a new connection that echoes its own bytes.
#[cfg(feature = "tls")]
#[test]
fn tls_a_read_cut_by_its_deadline_in_a_partition_is_not_lent_again() {
    use connpool::Pool;
    use connpool::managers::tcp::{Destination, TcpManager};
    use connpool::managers::tls::TlsConfig;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::support::tls::{Ca, Leaf, echo_server};

    let _alone = alone();
    let Some(ns) = Netns::new() else { return };
    ns.run(async {
        let ca = Ca::new("partition");
        let port = echo_server(ca.server(Leaf::Good, &[], false)).await;
        let manager = TcpManager::new().tls(TlsConfig::from_client_config(ca.client()));
        let pool = Pool::builder(manager).build().await.unwrap();
        let dest = Destination::from(("localhost", port));
        let echo = async |conn: &mut connpool::Pooled<'_, TcpManager>, what: &[u8]| {
            conn.write_all(what).await?;
            let mut reply = vec![0; what.len()];
            conn.read_exact(&mut reply).await?;
            Ok::<_, std::io::Error>(reply)
        };
        let mut conn = pool.get_for(&dest).await.unwrap();
        assert_eq!(echo(&mut conn, b"before\n").await.unwrap(), b"before\n");
        drop(conn);

        ns.partition(port);
        const DEADLINE: Duration = Duration::from_millis(300);
        let mut conn = pool.get_for(&dest).await.unwrap();
        let start = Instant::now();
        let cut = tokio::time::timeout(DEADLINE, echo(&mut conn, b"lost\n")).await;
        let took = start.elapsed();
        assert!(cut.is_err(), "{cut:?}");
        assert!(took < DEADLINE + SLACK, "{took:?}");
        drop(conn);
        ns.heal();

        let healed = Instant::now();
        let mut conn = pool.get_for(&dest).await.unwrap();
        assert_eq!(echo(&mut conn, b"after\n").await.unwrap(), b"after\n", "its own echo");
        let first = healed.elapsed();
        assert!(first < Duration::from_millis(500), "{first:?}");
        let k = pool.state().counters;
        assert_eq!((k.dials, k.closed_broken), (2, 1), "{k:?}");
        eprintln!(
            "TLS partition: the read ended at its {DEADLINE:?} deadline after {took:?}; first echo {first:?} after the heal, on a new connection"
        );
    });
}

/// A dial that began during a partition connects within 500 ms of the
/// heal: the kernel sends a lost SYN again only a second or more after
/// the last (every 1 s for the first few with Linux's
/// `tcp_syn_linear_timeouts`, then 2, 4, 8… s apart: here 0.95 s after
/// the heal, at 2 s), and the dial starts a fresh attempt every 500 ms
/// while none is answered.
#[cfg(feature = "tcp")]
#[test]
fn tcp_a_dial_begun_in_a_partition_connects_soon_after_the_heal() {
    use connpool::Pool;
    use connpool::managers::tcp::TcpManager;

    use crate::support::echo::EchoServer;

    let _alone = alone();
    let Some(ns) = Netns::new() else { return };
    ns.run(async {
        let server = EchoServer::start().await;
        let pool = Pool::builder(TcpManager::new())
            .connect_timeout(Duration::from_secs(10))
            .build()
            .await
            .unwrap();
        ns.partition(server.addr.port());
        let dest = server.addr.into();
        let dial = pool.get_for(&dest);
        let heal = async {
            tokio::time::sleep(Duration::from_millis(1050)).await;
            let ns = ns.clone();
            tokio::task::spawn_blocking(move || ns.heal())
                .await
                .unwrap();
            Instant::now()
        };
        let (conn, healed) = tokio::join!(dial, heal);
        let after = healed.elapsed();
        assert!(conn.is_ok(), "{:?}", conn.err());
        // Half of `SLACK`: the kernel's own retry would come 950 ms after.
        assert!(
            after < Duration::from_millis(500) + SLACK / 2,
            "connected {after:?} after the heal"
        );
        eprintln!("TCP partition: a dial begun in it connected {after:?} after the heal");
    });
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_a_query_in_flight_fails_within_the_tcp_user_timeout_and_the_next_get_is_served() {
    use connpool::Pool;
    use connpool::managers::postgres::PostgresManager;

    use crate::support::pg;

    let _alone = alone();
    let Some(ns) = Netns::new() else { return };
    ns.run(async {
        // Started from a thread in the namespace: the server is in it too.
        let Some(server) = pg::dedicated() else {
            return;
        };
        let mut config = server.config();
        config
            .keepalives_idle(Duration::from_secs(1))
            .keepalives_interval(Duration::from_secs(1))
            .keepalives_retries(1)
            .tcp_user_timeout(Duration::from_secs(2))
            .connect_timeout(Duration::from_millis(500));
        let port = config.get_ports()[0];
        let pool = Pool::builder(PostgresManager::new(config).single())
            .connect_timeout(Duration::from_millis(800))
            .build()
            .await
            .unwrap();
        let conn = pool.get().await.unwrap();
        conn.simple_query("SELECT 1").await.unwrap();

        ns.partition(port);
        let start = Instant::now();
        let stuck = tokio::time::timeout(Duration::from_secs(30), conn.simple_query("SELECT 2"))
            .await
            .expect("the query must fail by itself");
        let took = start.elapsed();
        assert!(stuck.is_err());
        assert!(took < Duration::from_secs(5) + SLACK, "{took:?}");
        drop(conn);

        ns.heal();
        let (first, _) = first_success(Instant::now(), async || {
            let conn = pool.get().await.map_err(|e| e.to_string())?;
            conn.simple_query("SELECT 3").await.map_err(|e| e.to_string())
        })
        .await;
        assert!(first < Duration::from_millis(500), "{first:?} after the heal");
        eprintln!(
            "PostgreSQL partition: the query in flight failed after {took:?} (tcp_user_timeout 2 s); first success {first:?} after the heal"
        );
    });
}

/// PostgreSQL through `PgService`, the pool's and the configuration's
/// defaults and one 800 ms deadline: calls into a partition end by it
/// (the one in flight and the ones that need a connection), and the first
/// after the heal is served soon.
#[cfg(feature = "postgres")]
#[test]
fn postgres_through_the_service_a_partition_ends_each_call_by_its_one_deadline() {
    use connpool::Pool;
    use connpool::managers::postgres::{PgService, PostgresManager};

    use crate::support::pg;

    const DEADLINE: Duration = Duration::from_millis(800);
    let _alone = alone();
    let Some(ns) = Netns::new() else { return };
    ns.run(async {
        let Some(server) = pg::dedicated() else {
            return;
        };
        let config = server.config();
        let port = config.get_ports()[0];
        let pool = Pool::builder(PostgresManager::new(config).single())
            .build()
            .await
            .unwrap();
        let db = PgService::new(pool.clone(), ()).timeout(DEADLINE);
        db.simple_query("SELECT 1").await.unwrap();

        ns.partition(port);
        let mut longest = Duration::ZERO;
        for _ in 0..4 {
            let start = Instant::now();
            let err = db.simple_query("SELECT 2").await.unwrap_err();
            assert!(err.is_timeout(), "{err}");
            longest = longest.max(start.elapsed());
        }
        assert!(longest < DEADLINE + SLACK, "{longest:?}");

        ns.heal();
        let (first, _) = first_success(Instant::now(), async || db.simple_query("SELECT 3").await).await;
        assert!(first < Duration::from_millis(1500), "{first:?} after the heal");
        eprintln!(
            "PostgreSQL partition through PgService (deadline {DEADLINE:?}): calls failed within {longest:?}; first success {first:?} after the heal"
        );
    });
}
