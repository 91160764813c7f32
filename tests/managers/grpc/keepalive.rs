//! HTTP/2 keepalive: a black-holed server found idle and under an active
//! call, and gRPC's PING policy against a server that polices PINGs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use connpool::managers::Origin;
use connpool::managers::grpc::GrpcManager;
use connpool::{Manager, Pool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as Status;
use tonic_health::pb::health_client::HealthClient;

use crate::support::fault::FaultProxy;
use crate::support::grpc::raw;
use crate::support::grpc::{GrpcServer, assert_keepalive_verdict};
use crate::support::{BOUND, until};

use super::check;

// HTTP/2 keepalive against a server that stops answering (black-holed
// proxy): the PING goes unanswered, the connection is closed, and
// health says so within interval + timeout.
#[tokio::test]
async fn keepalive_finds_a_blackholed_server() {
    let interval = Duration::from_millis(300);
    let ka_timeout = Duration::from_millis(300);
    let server = GrpcServer::start(None).await;
    let proxy = FaultProxy::start(server.addr).await;
    let manager = GrpcManager::new()
        .http2_keep_alive_interval(interval)
        .http2_keep_alive_timeout(ka_timeout)
        .http2_keep_alive_while_idle(true); // tonic servers allow it
    let pool = Pool::builder(manager)
        .health_check(None)
        .build()
        .await
        .unwrap();
    let conn = pool.get_for(&Origin::from(proxy.addr)).await.unwrap();
    assert_eq!(check(&conn, "").await.unwrap(), Status::Serving);
    let mut handle = (*conn).clone();
    drop(conn);

    proxy.blackhole();
    let took = until("declared dead", || {
        pool.manager().health(&mut handle).is_broken()
    })
    .await;
    println!(
        "blackholed gRPC server declared dead after {took:?} (interval {interval:?} + timeout {ka_timeout:?})"
    );
    assert_keepalive_verdict(took, interval, ka_timeout);
    pool.close().await;
    server.abort();
}

// The default PING policy (PINGs only while calls are active, as servers
// require): a connection with a call in flight (a health `Watch` stream
// waiting for its next message) behind a black hole is closed by the missed
// PING: the call fails and health says so within interval + timeout,
// though the caller set no timeout of its own.
#[tokio::test]
async fn keepalive_finds_a_blackholed_server_under_an_active_call() {
    let interval = Duration::from_millis(300);
    let ka_timeout = Duration::from_millis(300);
    let server = GrpcServer::start(None).await;
    let proxy = FaultProxy::start(server.addr).await;
    let manager = GrpcManager::new()
        .http2_keep_alive_interval(interval)
        .http2_keep_alive_timeout(ka_timeout);
    let pool = Pool::builder(manager)
        .health_check(None)
        .build()
        .await
        .unwrap();
    let conn = pool.get_for(&Origin::from(proxy.addr)).await.unwrap();
    let mut stream = HealthClient::new((*conn).clone())
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.status(), Status::Serving);
    let mut handle = (*conn).clone();

    proxy.blackhole();
    let start = Instant::now();
    let next = timeout(BOUND, stream.message())
        .await
        .expect("the call ended within 5 s");
    let call_failed = start.elapsed();
    assert!(next.is_err(), "the call went on: {next:?}");
    let took = start.elapsed()
        + until("declared dead", || {
            pool.manager().health(&mut handle).is_broken()
        })
        .await;
    println!(
        "blackholed gRPC server under an active call: the call failed after {call_failed:?} \
         ({}), declared dead after {took:?} (interval {interval:?} + timeout {ka_timeout:?})",
        next.unwrap_err().message()
    );
    assert_keepalive_verdict(took, interval, ka_timeout);
    drop(conn);
    pool.close().await;
    server.abort();
}

/// A server that polices client PINGs as grpc-go and gRPC C-core servers do
/// by default with `PermitWithoutStream: false`: a PING while no call is
/// active gets `GOAWAY` with `ENHANCE_YOUR_CALM` and the debug data
/// `too_many_pings`, and the connection is closed (those servers allow two
/// strikes first; this one allows none). It speaks just enough HTTP/2 for a
/// client that makes no call, so every PING it sees is one without a call:
/// its own `SETTINGS`, an ACK of the client's, nothing else.
struct PingPolicingServer {
    addr: std::net::SocketAddr,
    accepted: Arc<AtomicUsize>,
    pings: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl PingPolicingServer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (accepted, pings) = (Arc::<AtomicUsize>::default(), Arc::<AtomicUsize>::default());
        let task = tokio::spawn({
            let (accepted, pings) = (Arc::clone(&accepted), Arc::clone(&pings));
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(Self::police(stream, Arc::clone(&pings)));
                }
            }
        });
        Self { addr, accepted, pings, task }
    }

    async fn police(mut s: TcpStream, pings: Arc<AtomicUsize>) -> std::io::Result<()> {
        s.set_nodelay(true)?;
        s.write_all(&raw::frame(raw::SETTINGS, 0, &[])).await?;
        let mut preface = [0u8; 24];
        s.read_exact(&mut preface).await?;
        loop {
            let (head, _) = raw::read_frame(&mut s).await?;
            match (head[3], head[4] & 0x1) {
                (raw::SETTINGS, 0) => {
                    s.write_all(&raw::frame(raw::SETTINGS, raw::ACK, &[]))
                        .await?
                }
                (raw::PING, 0) => {
                    pings.fetch_add(1, Ordering::SeqCst);
                    // ENHANCE_YOUR_CALM, with the debug data grpc-go sends.
                    s.write_all(&raw::goaway(0xb, b"too_many_pings")).await?;
                    return s.shutdown().await;
                }
                _ => {}
            }
        }
    }
}

// gRPC's PING policy, end to end. With the default policy (PINGs only
// while calls are active) a connection idling in the pool sends no PING,
// however short the interval, so a policing server has nothing to strike.
// A manager told to PING while idle is cut off with `GOAWAY
// ENHANCE_YOUR_CALM`: the connection is declared broken, the error names
// `too_many_pings`, and the pool lends a new connection instead.
#[tokio::test]
async fn a_server_that_polices_pings_cuts_off_only_pings_while_idle() {
    let interval = Duration::from_millis(100);
    let server = PingPolicingServer::start().await;
    let dest = Origin::from(server.addr);
    let pool = |manager: GrpcManager| {
        // No health-check calls: this server answers none.
        Pool::builder(
            manager
                .check_on_connect(false)
                .http2_keep_alive_interval(interval),
        )
        .health_check(None)
        .keepalive_interval(None)
        .build()
    };

    let polite = pool(GrpcManager::new()).await.unwrap();
    let conn = polite.get_for(&dest).await.unwrap();
    let handle = (*conn).clone();
    drop(conn);
    // An absence is seen only over a window: ten intervals, idle.
    tokio::time::sleep(10 * interval).await;
    assert_eq!(server.pings.load(Ordering::SeqCst), 0, "a PING while idle");
    assert!(handle.is_reusable());
    polite.close().await;

    let eager = pool(GrpcManager::new().http2_keep_alive_while_idle(true))
        .await
        .unwrap();
    let conn = eager.get_for(&dest).await.unwrap();
    let first = conn.local_addr();
    let mut handle = (*conn).clone();
    drop(conn);
    let took = until("cut off", || {
        eager.manager().health(&mut handle).is_broken()
    })
    .await;
    println!("PINGing while idle: cut off after {took:?} (interval {interval:?})");
    assert_eq!(server.pings.load(Ordering::SeqCst), 1);
    assert_eq!(handle.goaway_error_code(), Some(0xb));
    let err = eager.manager().ping(&mut handle).await.unwrap_err();
    assert!(err.to_string().contains("too_many_pings"), "{err}");

    let again = eager.get_for(&dest).await.unwrap();
    assert_ne!(again.local_addr(), first, "the cut-off connection was lent");
    assert_eq!(eager.state().counters.closed_broken, 1);
    assert_eq!(server.accepted.load(Ordering::SeqCst), 3);
    drop(again);
    eager.close().await;
}

// gRFC A8: after `GOAWAY ENHANCE_YOUR_CALM` with `too_many_pings`, new
// connections to that server PING half as often, per key, each back-off
// logged once at `warn`; other keys keep the configured interval.
#[tokio::test]
async fn too_many_pings_doubles_the_keepalive_interval_of_that_key() {
    let (log, _guard) = crate::support::log::capture();
    let interval = Duration::from_millis(100);
    let server = PingPolicingServer::start().await;
    let dest = Origin::from(server.addr);
    let other = Origin::from("127.0.0.1:1");
    let manager = GrpcManager::new()
        .check_on_connect(false)
        .http2_keep_alive_interval(interval)
        .http2_keep_alive_while_idle(true);
    let pool = Pool::builder(manager)
        .health_check(None)
        .keepalive_interval(None)
        .build()
        .await
        .unwrap();
    let mut expected = interval;
    for round in 1..=2 {
        let conn = pool.get_for(&dest).await.unwrap();
        let mut handle = (*conn).clone();
        drop(conn);
        let took = until("cut off", || pool.manager().health(&mut handle).is_broken()).await;
        // Its PING came one interval after the dial's last frame (a little
        // before this wait began), not half of one.
        assert!(
            took >= expected.mul_f64(0.75),
            "round {round}: cut off after {took:?}, interval {expected:?}"
        );
        // Asked again (and by another handle): counted once.
        assert!(pool.manager().health(&mut handle.clone()).is_broken());
        expected *= 2;
        assert_eq!(
            pool.manager().http2_keep_alive_interval_for(&dest),
            Some(expected)
        );
        assert_eq!(log.warnings("too_many_pings").len(), round);
    }
    assert_eq!(
        pool.manager().http2_keep_alive_interval_for(&other),
        Some(interval)
    );
    assert_eq!(server.pings.load(Ordering::SeqCst), 2);
    pool.close().await;
    server.task.abort();
}
