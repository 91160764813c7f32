//! The gRPC manager against a real in-process tonic server on 127.0.0.1 with
//! tonic-health's health service (and, for keepalive, behind
//! `support::fault`'s proxy switched into a black hole). Real I/O, real
//! clock: every wait is bounded by a few seconds that only a broken
//! implementation runs into; conditions are polled every 1 ms; no test
//! sleeps to synchronize (one waits out a window to see that something does
//! not happen: no PING from an idle connection).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use connpool::managers::grpc::{GrpcConn, GrpcError, GrpcManager};
use connpool::managers::tcp::Destination;
use connpool::{CloseReason, ConnectError, Error, HealthCheck, Manager, Pool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::timeout;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as Status;
use tonic_health::pb::health_client::HealthClient;

use crate::support::fault::FaultProxy;
use crate::support::grpc::raw::{self, GoawayOnConnect};
use crate::support::grpc::{GrpcServer, SERVICE, assert_keepalive_verdict};
use crate::support::{BOUND, ZERO, counts, until};

async fn check(conn: &GrpcConn, service: &str) -> Result<Status, tonic::Status> {
    let reply = timeout(
        BOUND,
        HealthClient::new(conn.channel().clone())
            .check(HealthCheckRequest { service: service.into() }),
    )
    .await
    .expect("health check within 5 s")?;
    Ok(reply.get_ref().status())
}

fn manager_error(err: &Error<GrpcError>) -> &GrpcError {
    match err {
        Error::Connect(ConnectError::Manager(e)) => e,
        other => panic!("expected a dial error from the manager, got {other:?}"),
    }
}

// Calls go through pooled channels, from many tasks at once; the server's
// stream limit is read from its SETTINGS and is the lending limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_round_trip_through_pooled_channels() {
    let server = GrpcServer::start(Some(16)).await;
    let dest = Destination::from(server.addr);
    let pool = Pool::builder(GrpcManager::new())
        .max_open_per_key(4)
        .build()
        .await
        .unwrap();
    let mut conn = pool.get_for(&dest).await.unwrap();
    assert_eq!(check(&conn, "").await.unwrap(), Status::Serving);
    assert_eq!(conn.peer_max_concurrent_streams(), Some(16));
    assert_eq!(pool.manager().lending(&conn).max_borrowers(), 16);
    assert_eq!(conn.peer_addr(), server.addr);
    assert!(!conn.is_draining() && !pool.manager().is_broken(&mut conn));
    pool.manager().ping(&mut conn).await.unwrap();
    drop(conn);

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let pool = pool.clone();
        let dest = dest.clone();
        tasks.spawn(async move {
            for _ in 0..10 {
                let conn = pool.get_for(&dest).await.unwrap();
                assert_eq!(check(&conn, SERVICE).await.unwrap(), Status::Serving);
            }
        });
    }
    timeout(Duration::from_secs(20), tasks.join_all())
        .await
        .expect("80 calls within 20 s");
    assert!(server.accepted() <= 4, "{}", server.accepted());
    assert_eq!(pool.state().counters.gets, 81);
    pool.close().await;
    server.stop().await;
}

// A service switched to NOT_SERVING: with HealthCheck::Always its idle
// connection fails the check and the fresh dial fails the check on connect,
// so the getter gets a clear error and nothing is lent; back to SERVING, it
// is served again. A service the server does not know is an RPC error.
#[tokio::test]
async fn a_not_serving_backend_is_not_lent() {
    let server = GrpcServer::start(None).await;
    let dest = Destination::from(server.addr);
    let pool = Pool::builder(GrpcManager::new().health_service(SERVICE))
        .health_check(HealthCheck::Always)
        .no_backoff()
        .build()
        .await
        .unwrap();
    let conn = pool.get_for(&dest).await.unwrap();
    drop(conn);
    assert_eq!(pool.state().idle, 1);

    server
        .reporter
        .set_service_status(SERVICE, ServingStatus::NotServing)
        .await;
    let err = pool.get_for(&dest).await.unwrap_err();
    match manager_error(&err) {
        GrpcError::Unhealthy { service, status } => {
            assert_eq!(service, SERVICE);
            assert_eq!(*status, Status::NotServing);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("NOT_SERVING"), "{err}");
    println!("NOT_SERVING: {err}");
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(server.accepted(), 2, "the idle one checked, one dial");

    server
        .reporter
        .set_service_status(SERVICE, ServingStatus::Serving)
        .await;
    let conn = pool.get_for(&dest).await.unwrap();
    assert_eq!(check(&conn, SERVICE).await.unwrap(), Status::Serving);
    drop(conn);
    pool.close().await;

    // Without the check on connect (and no health check), the dial succeeds.
    server
        .reporter
        .set_service_status(SERVICE, ServingStatus::NotServing)
        .await;
    let lax = GrpcManager::new()
        .health_service(SERVICE)
        .check_on_connect(false);
    let pool = Pool::builder(lax)
        .health_check(HealthCheck::Never)
        .build()
        .await
        .unwrap();
    let mut conn = pool.get_for(&dest).await.unwrap();
    assert_eq!(check(&conn, SERVICE).await.unwrap(), Status::NotServing);
    assert!(matches!(
        pool.manager().ping(&mut conn).await,
        Err(GrpcError::Unhealthy { .. })
    ));
    drop(conn);
    pool.close().await;

    // A service the server does not know: NOT_FOUND.
    let unknown = GrpcManager::new().health_service("no.Such");
    let pool = Pool::builder(unknown).no_backoff().build().await.unwrap();
    let err = pool.get_for(&dest).await.unwrap_err();
    match manager_error(&err) {
        GrpcError::Rpc(status) => assert_eq!(status.code(), tonic::Code::NotFound),
        other => panic!("{other:?}"),
    }
    pool.close().await;
    server.stop().await;
}

// The server shuts down (GOAWAY, then close): the pooled connection is
// broken at once, and the channel does not reconnect behind the pool's
// back. Once the server is back on the same port, the pool dials anew.
#[tokio::test]
async fn server_shutdown_is_detected_and_the_connection_replaced() {
    let server = GrpcServer::start(None).await;
    let addr = server.addr;
    let dest = Destination::from(addr);
    let pool = Pool::builder(GrpcManager::new())
        .health_check(HealthCheck::Never)
        .no_backoff()
        .build()
        .await
        .unwrap();
    let conn = pool.get_for(&dest).await.unwrap();
    assert_eq!(check(&conn, "").await.unwrap(), Status::Serving);
    let old = conn.local_addr();
    let mut handle = (*conn).clone();
    drop(conn);

    server.stop().await;
    let took = until("is_broken after the server shut down", || {
        pool.manager().is_broken(&mut handle)
    })
    .await;
    println!(
        "server shutdown seen after {took:?} (GOAWAY seen: {})",
        handle.is_draining()
    );
    // The channel does not dial again by itself, even once a server is back.
    let back = GrpcServer::start_on(addr, None).await;
    assert!(
        check(&handle, "").await.is_err(),
        "the dead channel reconnected"
    );
    assert!(pool.manager().ping(&mut handle).await.is_err());
    assert_eq!(back.accepted(), 0);

    let conn = pool.get_for(&dest).await.unwrap();
    assert_ne!(conn.local_addr(), old);
    assert_eq!(check(&conn, "").await.unwrap(), Status::Serving);
    assert_eq!(back.accepted(), 1);
    drop(conn);
    pool.close().await;
    back.stop().await;
}

// A peer that sends no SETTINGS is not a gRPC server: the dial fails.
#[tokio::test]
async fn a_peer_that_sends_no_settings_fails_the_dial() {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let manager = GrpcManager::new().settings_timeout(Duration::from_millis(300));
    let pool = Pool::builder(manager).no_backoff().build().await.unwrap();
    let err = pool.get_for(&Destination::from(addr)).await.unwrap_err();
    assert!(
        matches!(manager_error(&err), GrpcError::NoSettings { .. }),
        "{err:?}"
    );
    println!("silent peer: {err}");
    pool.close().await;
}

// A server that answers a new connection with SETTINGS and GOAWAY in one
// write (shutting down, or at its connection limit): the connection is
// draining before it was ever used, so the dial fails with an error that
// names the GOAWAY, with and without the health check on connect, called
// directly and through a pool (which then holds nothing). (A GOAWAY that
// comes later, on a connection already handed out, is `is_broken`: see
// `server_shutdown_is_detected_and_the_connection_replaced` and
// `a_server_that_polices_pings_cuts_off_only_pings_while_idle`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_draining_on_arrival_fails_the_dial() {
    let server = GoawayOnConnect::start(0, b"shutting down").await;
    let dest = Destination::from(server.addr);
    for check_on_connect in [false, true] {
        let manager = || GrpcManager::new().check_on_connect(check_on_connect);
        let err = timeout(BOUND, manager().connect(&dest))
            .await
            .expect("dial within 5 s")
            .unwrap_err();
        match &err {
            GrpcError::ClosedDuringSetup { goaway: Some(0), debug_data } => {
                assert_eq!(debug_data.as_deref(), Some("shutting down"))
            }
            other => panic!("check_on_connect({check_on_connect}): {other:?}"),
        }
        let message = err.to_string();
        raw::assert_goaway_during_setup(&message);
        println!("check_on_connect({check_on_connect}): {message}");

        let pool = Pool::builder(manager())
            .health_check(HealthCheck::Never)
            .no_backoff()
            .build()
            .await
            .unwrap();
        let err = timeout(BOUND, pool.get_for(&dest))
            .await
            .expect("get within 5 s")
            .unwrap_err();
        assert!(
            matches!(
                manager_error(&err),
                GrpcError::ClosedDuringSetup { goaway: Some(0), .. }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("GOAWAY"), "{err}");
        assert_eq!(counts(&pool), ZERO);
        pool.close().await;
    }
    assert_eq!(server.accepted(), 4);
}

// HTTP/2 keepalive against a server that stops answering (black-holed
// proxy): the PING goes unanswered, the connection is closed, and
// is_broken says so within interval + timeout.
#[tokio::test]
async fn keepalive_finds_a_blackholed_server() {
    let interval = Duration::from_millis(300);
    let ka_timeout = Duration::from_millis(300);
    let server = GrpcServer::start(None).await;
    let proxy = FaultProxy::start(server.addr).await;
    let manager = GrpcManager::new()
        .keep_alive_interval(interval)
        .keep_alive_timeout(ka_timeout)
        .keep_alive_while_idle(true); // tonic servers allow it
    let pool = Pool::builder(manager)
        .health_check(HealthCheck::Never)
        .build()
        .await
        .unwrap();
    let conn = pool.get_for(&Destination::from(proxy.addr)).await.unwrap();
    assert_eq!(check(&conn, "").await.unwrap(), Status::Serving);
    let mut handle = (*conn).clone();
    drop(conn);

    proxy.blackhole();
    let took = until("declared dead", || pool.manager().is_broken(&mut handle)).await;
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
// PING: the call fails and is_broken says so within interval + timeout,
// though the caller set no timeout of its own.
#[tokio::test]
async fn keepalive_finds_a_blackholed_server_under_an_active_call() {
    let interval = Duration::from_millis(300);
    let ka_timeout = Duration::from_millis(300);
    let server = GrpcServer::start(None).await;
    let proxy = FaultProxy::start(server.addr).await;
    let manager = GrpcManager::new()
        .keep_alive_interval(interval)
        .keep_alive_timeout(ka_timeout);
    let pool = Pool::builder(manager)
        .health_check(HealthCheck::Never)
        .build()
        .await
        .unwrap();
    let conn = pool.get_for(&Destination::from(proxy.addr)).await.unwrap();
    let mut stream = HealthClient::new(conn.channel().clone())
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
    let took =
        start.elapsed() + until("declared dead", || pool.manager().is_broken(&mut handle)).await;
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
            let mut head = [0u8; 9];
            s.read_exact(&mut head).await?;
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0; len];
            s.read_exact(&mut payload).await?;
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
    let dest = Destination::from(server.addr);
    let pool = |manager: GrpcManager| {
        // No health-check calls: this server answers none.
        Pool::builder(
            manager
                .check_on_connect(false)
                .keep_alive_interval(interval),
        )
        .health_check(HealthCheck::Never)
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
    assert!(!handle.is_closed());
    polite.close().await;

    let eager = pool(GrpcManager::new().keep_alive_while_idle(true))
        .await
        .unwrap();
    let conn = eager.get_for(&dest).await.unwrap();
    let first = conn.local_addr();
    let mut handle = (*conn).clone();
    drop(conn);
    let took = until("cut off", || eager.manager().is_broken(&mut handle)).await;
    println!("PINGing while idle: cut off after {took:?} (interval {interval:?})");
    assert_eq!(server.pings.load(Ordering::SeqCst), 1);
    assert_eq!(handle.frame_state().goaway_error_code(), Some(0xb));
    let err = eager.manager().ping(&mut handle).await.unwrap_err();
    assert!(err.to_string().contains("too_many_pings"), "{err}");

    let again = eager.get_for(&dest).await.unwrap();
    assert_ne!(again.local_addr(), first, "the cut-off connection was lent");
    assert_eq!(eager.state().counters.closed(CloseReason::Broken), 1);
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
    let dest = Destination::from(server.addr);
    let other = Destination::from("127.0.0.1:1");
    let manager = GrpcManager::new()
        .check_on_connect(false)
        .keep_alive_interval(interval)
        .keep_alive_while_idle(true);
    let pool = Pool::builder(manager)
        .health_check(HealthCheck::Never)
        .keepalive_interval(None)
        .build()
        .await
        .unwrap();
    let mut expected = interval;
    for round in 1..=2 {
        let conn = pool.get_for(&dest).await.unwrap();
        let mut handle = (*conn).clone();
        drop(conn);
        let took = until("cut off", || pool.manager().is_broken(&mut handle)).await;
        // Its PING came one interval after the dial's last frame (a little
        // before this wait began), not half of one.
        assert!(
            took >= expected.mul_f64(0.75),
            "round {round}: cut off after {took:?}, interval {expected:?}"
        );
        // Asked again (and by another handle): counted once.
        assert!(pool.manager().is_broken(&mut handle.clone()));
        expected *= 2;
        assert_eq!(
            pool.manager().keep_alive_interval_for(&dest),
            Some(expected)
        );
        assert_eq!(log.warnings("too_many_pings").len(), round);
    }
    assert_eq!(
        pool.manager().keep_alive_interval_for(&other),
        Some(interval)
    );
    assert_eq!(server.pings.load(Ordering::SeqCst), 2);
    pool.close().await;
    server.task.abort();
}

/// Starts `k` tasks that each get a connection and hold a health `Watch`
/// stream open on it (counted in `open` once its first message arrived)
/// until `release` turns true.
fn long_calls(
    pool: &Pool<GrpcManager>,
    dest: &Destination,
    k: usize,
    open: &Arc<AtomicUsize>,
    release: &watch::Sender<bool>,
) -> tokio::task::JoinSet<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..k {
        let pool = pool.clone();
        let dest = dest.clone();
        let open = Arc::clone(open);
        let mut release = release.subscribe();
        tasks.spawn(async move {
            let conn = pool.get_for(&dest).await.unwrap();
            let mut stream = HealthClient::new(conn.channel().clone())
                .watch(HealthCheckRequest { service: String::new() })
                .await
                .unwrap()
                .into_inner();
            let first = stream.message().await.unwrap().unwrap();
            assert_eq!(first.status(), Status::Serving);
            open.fetch_add(1, Ordering::SeqCst);
            let _ = release.wait_for(|r| *r).await;
            drop(stream);
            drop(conn);
        });
    }
    tasks
}

// Stream limit 1: each connection carries one call, so K concurrent long
// calls open min(K, max_open_per_key) connections, and no more.
#[tokio::test]
async fn stream_limit_one_opens_a_connection_per_call_up_to_the_cap() {
    for (k, cap) in [(3, 5), (6, 4)] {
        let server = GrpcServer::start(Some(1)).await;
        let dest = Destination::from(server.addr);
        let pool = Pool::builder(GrpcManager::new())
            .max_open_per_key(cap)
            .build()
            .await
            .unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let release = watch::channel(false).0;
        let tasks = long_calls(&pool, &dest, k, &open, &release);
        let busy = k.min(cap);
        until("calls open", || open.load(Ordering::SeqCst) == busy).await;
        until("no dial in flight", || pool.state().dialing == 0).await;
        assert_eq!(server.accepted(), busy, "k={k} cap={cap}");
        assert_eq!(pool.state().open, busy);
        release.send_replace(true);
        timeout(BOUND, tasks.join_all())
            .await
            .expect("all calls done");
        assert_eq!(open.load(Ordering::SeqCst), k);
        assert_eq!(server.accepted(), busy, "k={k} cap={cap}: no extra dial");
        println!(
            "stream limit 1, {k} calls, cap {cap}: {} connections",
            server.accepted()
        );
        pool.close().await;
        server.stop().await;
    }
}

// Stream limit 8, 20 concurrent long calls, up to 10 connections: shared
// lending puts 8 calls on each, so ceil(20 / 8) = 3 connections.
#[tokio::test]
async fn stream_limit_eight_twenty_calls_three_connections() {
    let server = GrpcServer::start(Some(8)).await;
    let dest = Destination::from(server.addr);
    let pool = Pool::builder(GrpcManager::new())
        .max_open_per_key(10)
        .build()
        .await
        .unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let release = watch::channel(false).0;
    let tasks = long_calls(&pool, &dest, 20, &open, &release);
    until("20 calls open", || open.load(Ordering::SeqCst) == 20).await;
    until("no dial in flight", || pool.state().dialing == 0).await;
    println!(
        "stream limit 8, 20 calls: {} connections",
        server.accepted()
    );
    assert_eq!(server.accepted(), 3);
    assert_eq!(pool.state().open, 3);
    release.send_replace(true);
    timeout(BOUND, tasks.join_all())
        .await
        .expect("all calls done");
    assert_eq!(server.accepted(), 3);
    pool.close().await;
    server.stop().await;
}

// Shared lending under cancellation, against the real server: 64 tasks on
// 2 workers, each 40 times: a get cut by a short timeout (cancelled while
// waiting for a place), or a call abandoned mid-flight (the handle dropped
// with its call), or a call completed; 8 places in all (stream limit 4, 2
// connections). Afterwards no borrower, waiter or lent connection is left,
// and the pool still serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_lending_under_cancellation_leaks_no_borrower() {
    let server = GrpcServer::start(Some(4)).await;
    let dest = Destination::from(server.addr);
    let pool = Pool::builder(GrpcManager::new())
        .max_open_per_key(2)
        .build()
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..64u64 {
        let pool = pool.clone();
        let dest = dest.clone();
        tasks.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(0x5EED ^ t);
            let (mut served, mut cut, mut abandoned) = (0, 0, 0);
            for _ in 0..40 {
                let wait = Duration::from_micros(rng.u64(50..20_000));
                let Ok(got) = timeout(wait, pool.get_for(&dest)).await else {
                    cut += 1;
                    continue;
                };
                let conn = got.expect("the server is up");
                let call = check(&conn, "");
                if rng.bool() {
                    // Abandon the call after a moment: the handle goes with it.
                    let _ = timeout(Duration::from_micros(rng.u64(10..500)), call).await;
                    abandoned += 1;
                } else {
                    assert_eq!(call.await.expect("check"), Status::Serving);
                    served += 1;
                }
            }
            (served, cut, abandoned)
        });
    }
    let results = timeout(Duration::from_secs(30), tasks.join_all())
        .await
        .expect("all tasks done within 30 s");
    let served: usize = results.iter().map(|r| r.0).sum();
    let cut: usize = results.iter().map(|r| r.1).sum();
    let abandoned: usize = results.iter().map(|r| r.2).sum();
    until("every place back", || {
        let s = pool.state();
        s.borrowers == 0 && s.lent == 0 && s.waiting == 0 && s.dialing == 0
    })
    .await;
    let s = pool.state();
    println!(
        "64 tasks × 40: {served} calls completed, {abandoned} abandoned, {cut} gets cut; {s:?}"
    );
    assert!(
        served > 0 && cut > 0 && abandoned > 0,
        "every path ran: {served} served, {abandoned} abandoned, {cut} cut"
    );
    assert_eq!(s.open, s.idle, "{s:?}");
    assert!(s.open <= 2, "{s:?}");
    let conn = pool.get_for(&dest).await.expect("still serves");
    assert_eq!(check(&conn, "").await.unwrap(), Status::Serving);
    drop(conn);
    pool.close().await;
    server.stop().await;
}
