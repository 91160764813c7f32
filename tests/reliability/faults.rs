//! Fault injection under load: 64 tasks call through a
//! pool whose every connection goes through `support::fault::FaultProxy`, to
//! the in-process TCP echo server, to a throwaway PostgreSQL
//! (`--features postgres`) and to an in-process tonic server with the
//! health service (`--features grpc`; the request is a unary health
//! `Check`). For each fault — black hole, reset, a delay per
//! chunk beyond the callers' op timeout, close after N bytes:
//!
//! - while it is on, every call (a checkout, then one request under the
//!   caller's own op timeout) ends with an answer or a typed error within
//!   `CHECKOUT + OP`; the largest overshoot is measured and bounded by
//!   `PAST_DEADLINE_LIMIT`;
//! - once it clears, the pool serves again: the first success comes within
//!   the backoff cap + the connect timeout (+ slack), and each of 64 fresh
//!   callers is served within that + one call's deadline;
//! - afterwards nothing is lent, waiting or dialing and the counts add up.
//!
//! And with `HealthCheck::Always`, no caller gets a connection the far end
//! already dropped: 32 idle connections are severed (half-open: no FIN, no
//! RST, so `is_broken` cannot tell), and every one of 64 callers' first
//! request succeeds; the same scenario with `HealthCheck::Never` lends dead
//! connections (the control that shows the check is what protects).
//!
//! Targets implement [`Target`]. gRPC connections are lent shared: one
//! connection carries several callers (up to the server's
//! `MAX_CONCURRENT_STREAMS`), so a target says how many borrowers fill one of
//! its connections ([`Target::borrowers_per_conn`]) and the severed test
//! holds that many per connection to open its `SEVERED` connections; it
//! counts the severed connections a caller's first request failed on as
//! well as the callers (see `grpc`).
//!
//! Real I/O, real time. The fault windows are fixed lengths of real time (a
//! fault has to be on for a while); every wait for an outcome is a bounded
//! poll; the timed assertions are generous upper bounds.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use connpool::managers::tcp::{Destination, LinePing, TcpConn, TcpManager};
use connpool::{HealthCheck, Manager, Pool, Pooled, async_trait};
use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::time::{Instant, timeout};

use crate::support;
use crate::support::check_counts;
use crate::support::echo::EchoServer;
use crate::support::fault::{Fault, FaultProxy};

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const TASKS: usize = 64;
const MAX_OPEN: usize = 16;
const CHECKOUT: Duration = ms(400);
/// A caller's own timeout on its request.
const OP: Duration = ms(300);
const CONNECT: Duration = ms(300);
const PING: Duration = ms(100);
const BACKOFF_BASE: Duration = ms(20);
const BACKOFF_CAP: Duration = ms(400);
/// How long each fault stays on.
const FAULT_FOR: Duration = ms(1200);
/// A delay per chunk that no request survives.
const DELAY: Duration = ms(400);
/// Bytes a connection may still carry under `Fault::CloseAfter`.
const CLOSE_AFTER: usize = 100;
/// Upper bound of how far past `CHECKOUT + OP` any call may end.
const PAST_DEADLINE_LIMIT: Duration = ms(500);
/// Slack on the recovery bounds (scheduling on a loaded 2-core machine).
const SLACK: Duration = ms(500);
/// Bound of a wait for something a working pool does in milliseconds.
const WAIT_LIMIT: Duration = Duration::from_secs(5);

/// What a fault test runs against: a server, a manager to reach it through
/// the proxy, and one request. (gRPC: a unary call.)
#[async_trait]
trait Target: Send + Sync + 'static {
    type M: Manager<Key = Self::Key>;
    type Key: Clone + Debug + Send + Sync + 'static;
    /// How the figures name it.
    fn name(&self) -> &'static str;
    /// The real server.
    fn upstream(&self) -> SocketAddr;
    /// A manager and the key that reach the server at `addr` (the proxy).
    fn manager(&self, addr: SocketAddr) -> (Self::M, Self::Key);
    /// One request on `conn`; `n` makes it unique.
    async fn op(conn: &mut <Self::M as Manager>::Connection, n: u64) -> Result<(), String>;
    /// Borrowers that fill one connection (1: lent exclusively).
    fn borrowers_per_conn(&self) -> usize {
        1
    }
    /// Tells connections apart (its local address), where the connection
    /// type tells it.
    fn conn_id(_conn: &<Self::M as Manager>::Connection) -> Option<SocketAddr> {
        None
    }
}

/// The in-process line echo server.
struct Echo(EchoServer);

#[async_trait]
impl Target for Echo {
    type M = TcpManager<LinePing>;
    type Key = Destination;

    fn name(&self) -> &'static str {
        "tcp"
    }

    fn upstream(&self) -> SocketAddr {
        self.0.addr
    }

    fn manager(&self, addr: SocketAddr) -> (Self::M, Destination) {
        (
            TcpManager::new().with_ping(LinePing::default()),
            Destination::from(addr),
        )
    }

    async fn op(conn: &mut TcpConn, n: u64) -> Result<(), String> {
        let line = format!("request {n}\n");
        conn.write_all(line.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut back = String::new();
        BufReader::new(&mut *conn)
            .read_line(&mut back)
            .await
            .map_err(|e| e.to_string())?;
        if back == line {
            Ok(())
        } else {
            Err(format!("sent {line:?}, got {back:?}"))
        }
    }

    fn conn_id(conn: &TcpConn) -> Option<SocketAddr> {
        conn.local_addr().ok()
    }
}

#[cfg(feature = "postgres")]
mod pg {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use connpool::async_trait;
    use connpool::managers::postgres::PgConnection;
    use connpool::managers::postgres::{PostgresManager, SingleDatabase};

    use super::Target;
    use crate::support::pg::PgServer;

    /// A throwaway PostgreSQL (`SELECT 1`).
    pub struct Postgres(pub Arc<PgServer>);

    #[async_trait]
    impl Target for Postgres {
        type M = SingleDatabase;
        type Key = ();

        fn name(&self) -> &'static str {
            "postgres"
        }

        fn upstream(&self) -> SocketAddr {
            let port = self.0.config().get_ports()[0];
            SocketAddr::from(([127, 0, 0, 1], port))
        }

        fn manager(&self, addr: SocketAddr) -> (SingleDatabase, ()) {
            let base = self.0.config();
            // A new config: `host`/`port` on the server's would add a second
            // address after the server's own, not replace it.
            let mut config = tokio_postgres::Config::new();
            config
                .user(base.get_user().unwrap_or("postgres"))
                .dbname(base.get_dbname().unwrap_or("postgres"))
                .host("127.0.0.1")
                .port(addr.port())
                .application_name("connpool_faults");
            (PostgresManager::new(config).single(), ())
        }

        async fn op(conn: &mut PgConnection, _n: u64) -> Result<(), String> {
            conn.simple_query("SELECT 1")
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    }
}

#[cfg(feature = "grpc")]
mod grpc {
    use std::net::SocketAddr;

    use connpool::async_trait;
    use connpool::managers::grpc::{GrpcConn, GrpcManager};
    use connpool::managers::tcp::Destination;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    use super::{CONNECT, Target, ms};
    use crate::support::grpc::GrpcServer;

    /// HTTP/2 keepalive of the test manager, interval and ACK timeout alike
    /// (the defaults, 5 min + 20 s, suit grpc-go's PING policy; a tonic
    /// server does not police PINGs). PINGs go out only while calls are
    /// active, as by default: idle connections are the health check's
    /// business. A black-holed connection with calls in flight is closed by
    /// a missed PING within 2 × this, and `is_broken` then refuses it to new
    /// borrowers. Here each caller's own 300 ms request timeout still ends
    /// its call first and marks the connection broken, so the figures come
    /// out the same with the defaults (measured); the PING is the backstop
    /// for callers without a timeout of their own (`managers/grpc.rs`,
    /// `keepalive_finds_a_blackholed_server_under_an_active_call`).
    pub const KEEP_ALIVE: std::time::Duration = ms(200);

    /// The in-process tonic server with the health service; one request is
    /// a unary `grpc.health.v1.Health/Check` (`""`), which must answer
    /// `SERVING`.
    pub struct Grpc {
        pub server: GrpcServer,
        name: &'static str,
        max_streams: u32,
    }

    impl Grpc {
        /// A server whose `MAX_CONCURRENT_STREAMS` is `max_streams`: the
        /// borrowers one connection takes (1: lent exclusively).
        pub async fn start(name: &'static str, max_streams: u32) -> Grpc {
            Grpc { server: GrpcServer::start(Some(max_streams)).await, name, max_streams }
        }
    }

    #[async_trait]
    impl Target for Grpc {
        type M = GrpcManager;
        type Key = Destination;

        fn name(&self) -> &'static str {
            self.name
        }

        fn upstream(&self) -> SocketAddr {
            self.server.addr
        }

        fn manager(&self, addr: SocketAddr) -> (GrpcManager, Destination) {
            let manager = GrpcManager::new()
                .connect_timeout(CONNECT)
                .settings_timeout(CONNECT)
                .keep_alive_interval(KEEP_ALIVE)
                .keep_alive_timeout(KEEP_ALIVE);
            (manager, Destination::from(addr))
        }

        async fn op(conn: &mut GrpcConn, _n: u64) -> Result<(), String> {
            let reply = HealthClient::new(conn.channel().clone())
                .check(HealthCheckRequest { service: String::new() })
                .await
                .map_err(|e| e.to_string())?;
            match reply.get_ref().status() {
                ServingStatus::Serving => Ok(()),
                status => Err(format!("health: {}", status.as_str_name())),
            }
        }

        fn borrowers_per_conn(&self) -> usize {
            self.max_streams as usize
        }

        fn conn_id(conn: &GrpcConn) -> Option<SocketAddr> {
            Some(conn.local_addr())
        }
    }
}

/// How the calls of one phase ended.
#[derive(Debug, Default)]
struct Outcomes {
    kinds: BTreeMap<&'static str, u64>,
    calls: u64,
    slowest: Duration,
    past_deadline: Duration,
}

impl Outcomes {
    fn served(&self) -> u64 {
        self.kinds.get("ok").copied().unwrap_or(0)
    }
}

/// One call: a checkout, then one request under `OP`. A request that failed
/// or timed out marks its connection broken, as a user must (its reply may
/// still come). Returns how it ended and, for a backoff, when to retry.
async fn call<T: Target>(
    pool: &Pool<T::M>,
    key: &T::Key,
    n: u64,
    out: &Mutex<Outcomes>,
) -> (&'static str, Option<Duration>) {
    let start = Instant::now();
    let (k, retry) = match pool.get_for(key).await {
        Ok(mut conn) => match timeout(OP, T::op(&mut conn, n)).await {
            Ok(Ok(())) => ("ok", None),
            Ok(Err(e)) => {
                assert!(!e.is_empty());
                Pooled::mark_broken(&mut conn);
                ("request failed", None)
            }
            Err(_) => {
                Pooled::mark_broken(&mut conn);
                ("request timed out", None)
            }
        },
        Err(e) => support::outage_error(&e),
    };
    let took = start.elapsed();
    let mut o = out.lock();
    *o.kinds.entry(k).or_default() += 1;
    o.calls += 1;
    o.slowest = o.slowest.max(took);
    o.past_deadline = o.past_deadline.max(took.saturating_sub(CHECKOUT + OP));
    (k, retry)
}

fn builder<T: Target>(
    target: &T,
    addr: SocketAddr,
    health: HealthCheck,
) -> connpool::Builder<T::M> {
    let (manager, _) = target.manager(addr);
    Pool::builder(manager)
        .max_open(MAX_OPEN)
        .max_connecting(2)
        .checkout_timeout(CHECKOUT)
        .connect_timeout(CONNECT)
        .health_check(health)
        .ping_timeout(PING)
        .backoff(BACKOFF_BASE, BACKOFF_CAP)
}

/// Figures of one fault.
#[derive(Debug)]
struct FaultRun {
    fault: Fault,
    during: Outcomes,
    dials_during: usize,
    cut: usize,
    first_served: Duration,
    all_served: Duration,
    recovery: Outcomes,
}

/// Waits (bounded) until nothing is lent, waiting or dialing.
async fn quiet<M: Manager>(pool: &Pool<M>, keys: &[M::Key]) {
    let start = Instant::now();
    loop {
        let s = pool.state();
        if s.lent == 0 && s.waiting == 0 && s.dialing == 0 && s.pinging == 0 && s.recycling == 0 {
            check_counts(pool, keys);
            return;
        }
        assert!(start.elapsed() < WAIT_LIMIT, "pool never settled: {s:?}");
        tokio::time::sleep(ms(5)).await;
    }
}

async fn run_fault<T: Target>(target: &T, fault: Fault) -> FaultRun {
    let proxy = FaultProxy::start(target.upstream()).await;
    let (_, key) = target.manager(proxy.addr);
    let pool = builder(target, proxy.addr, HealthCheck::Always)
        .build()
        .await
        .unwrap();
    let n = Arc::new(AtomicU64::new(0));

    // Warm: every call of 64 callers is served.
    let warm = Arc::new(Mutex::new(Outcomes::default()));
    let callers: Vec<_> = (0..TASKS)
        .map(|_| {
            let (pool, key, n, warm) = (pool.clone(), key.clone(), n.clone(), warm.clone());
            tokio::spawn(async move {
                for _ in 0..3 {
                    call::<T>(&pool, &key, n.fetch_add(1, Ordering::Relaxed), &warm).await;
                }
            })
        })
        .collect();
    for c in callers {
        c.await.unwrap();
    }
    assert_eq!(
        warm.lock().served(),
        3 * TASKS as u64,
        "warm-up: {:?}",
        warm.lock()
    );

    // The fault, for FAULT_FOR of real time, under load.
    let dials_before = proxy.accepted();
    proxy.set(fault);
    let end = Instant::now() + FAULT_FOR;
    let during = Arc::new(Mutex::new(Outcomes::default()));
    let callers: Vec<_> = (0..TASKS)
        .map(|_| {
            let (pool, key, n, during) = (pool.clone(), key.clone(), n.clone(), during.clone());
            tokio::spawn(async move {
                while Instant::now() < end {
                    let (_, retry) =
                        call::<T>(&pool, &key, n.fetch_add(1, Ordering::Relaxed), &during).await;
                    support::back_off(retry).await;
                }
            })
        })
        .collect();
    tokio::time::sleep_until(end).await;

    // Cleared: fresh callers, each until served once.
    proxy.clear();
    let cleared = Instant::now();
    let dials_during = proxy.accepted() - dials_before;
    let cut = proxy.cut();
    let recovery = Arc::new(Mutex::new(Outcomes::default()));
    let limit = BACKOFF_CAP + CONNECT + CHECKOUT + OP + SLACK;
    let fresh: Vec<_> = (0..TASKS)
        .map(|_| {
            let (pool, key, n, recovery) = (pool.clone(), key.clone(), n.clone(), recovery.clone());
            tokio::spawn(async move {
                loop {
                    let (k, retry) =
                        call::<T>(&pool, &key, n.fetch_add(1, Ordering::Relaxed), &recovery).await;
                    if k == "ok" {
                        return Some(cleared.elapsed());
                    }
                    if cleared.elapsed() > 2 * limit {
                        return None;
                    }
                    support::back_off(retry).await;
                }
            })
        })
        .collect();
    let mut served = Vec::new();
    for f in fresh {
        served.push(f.await.unwrap());
    }
    for c in callers {
        c.await.unwrap();
    }
    let during = std::mem::take(&mut *during.lock());
    let recovery = std::mem::take(&mut *recovery.lock());
    let run = FaultRun {
        fault,
        during,
        dials_during,
        cut,
        first_served: served
            .iter()
            .flatten()
            .min()
            .copied()
            .unwrap_or(Duration::MAX),
        all_served: served
            .iter()
            .map(|s| s.unwrap_or(Duration::MAX))
            .max()
            .unwrap(),
        recovery,
    };
    println!("{} {:?}", target.name(), run);

    assert!(
        run.during.past_deadline <= PAST_DEADLINE_LIMIT,
        "{} {fault:?}: a call ended {:?} past its deadline of {:?}",
        target.name(),
        run.during.past_deadline,
        CHECKOUT + OP
    );
    assert!(
        run.recovery.past_deadline <= PAST_DEADLINE_LIMIT,
        "{} {fault:?}: after the fault, a call ended {:?} past its deadline",
        target.name(),
        run.recovery.past_deadline
    );
    assert!(
        served.iter().all(Option::is_some),
        "{} {fault:?}: callers never served after the fault cleared: {:?}",
        target.name(),
        run.recovery
    );
    assert!(
        run.first_served <= BACKOFF_CAP + CONNECT + SLACK,
        "{} {fault:?}: first served {:?} after the fault cleared",
        target.name(),
        run.first_served
    );
    assert!(
        run.all_served <= limit,
        "{} {fault:?}: all callers served only {:?} after the fault cleared",
        target.name(),
        run.all_served
    );
    // The fault did something: calls failed while it was on.
    assert!(
        run.during.served() < run.during.calls,
        "{} {fault:?}: nothing failed: {:?}",
        target.name(),
        run.during
    );

    quiet(&pool, std::slice::from_ref(&key)).await;
    let s = pool.state();
    assert_eq!(s.open, s.idle, "{s:?}");
    // Every dial that did not fail made a connection, and so did a failed
    // one whose connection was broken on arrival (a reset cut it): each
    // connection made is closed or idle.
    let made = s.counters.closed_total() + s.open as u64;
    assert!(
        s.counters.dials - s.counters.dial_failures <= made && made <= s.counters.dials,
        "every connection made is closed or idle: {s:?}"
    );
    pool.close().await;
    assert_eq!(pool.state().open, 0);
    run
}

async fn every_fault<T: Target>(target: &T) {
    let faults = [
        Fault::Blackhole,
        Fault::Reset,
        Fault::Delay(DELAY),
        Fault::CloseAfter(CLOSE_AFTER),
    ];
    let mut runs = Vec::new();
    for fault in faults {
        runs.push(run_fault(target, fault).await);
    }
    println!(
        "| target | fault | calls while on | served | errors | max past deadline | dials while on | connections cut | first served after | all 64 served after |"
    );
    for r in &runs {
        println!(
            "| {} | {:?} | {} | {} | {:?} | {:?} | {} | {} | {:?} | {:?} |",
            target.name(),
            r.fault,
            r.during.calls,
            r.during.served(),
            r.during
                .kinds
                .iter()
                .filter(|(k, _)| **k != "ok")
                .collect::<Vec<_>>(),
            r.during.past_deadline,
            r.dials_during,
            r.cut,
            r.first_served,
            r.all_served
        );
    }
}

/// Idle connections severed in the severed-connection tests (below the
/// throwaway PostgreSQL's `max_connections` of 80 with their replacements,
/// since the severed sessions stay open on the server).
const SEVERED: usize = 32;

/// `HealthCheck::Always`: connections severed while idle (no FIN, no RST)
/// never reach a caller: `SEVERED` idle connections, then 64 callers, every
/// first request succeeds, and no caller is handed a severed connection;
/// `Never` (the control) lends them.
///
/// A connection is filled with `borrowers_per_conn` borrowers to open the
/// `SEVERED` connections (1 for exclusive lending); where the target tells
/// connections apart (`conn_id`), the severed connections handed to callers
/// are counted as well as the callers whose first request failed.
async fn severed_idle_connections<T: Target>(target: &T) {
    for health in [HealthCheck::Always, HealthCheck::Never] {
        let proxy = FaultProxy::start(target.upstream()).await;
        let (_, key) = target.manager(proxy.addr);
        let pool = builder(target, proxy.addr, health)
            .max_open(SEVERED)
            .checkout_timeout(ms(2000))
            .build()
            .await
            .unwrap();
        // SEVERED connections, each used once per borrower, then idle.
        let mut held = Vec::new();
        for i in 0..(SEVERED * target.borrowers_per_conn()) as u64 {
            let mut conn = pool.get_for(&key).await.unwrap();
            T::op(&mut conn, i).await.unwrap();
            held.push(conn);
        }
        let severed: HashSet<SocketAddr> = held.iter().filter_map(|c| T::conn_id(c)).collect();
        drop(held);
        // (A PostgreSQL connection is reset, `DISCARD ALL`, before it idles.)
        support::until("the returns to be recycled", || pool.state().recycling == 0).await;
        assert_eq!(pool.state().idle, SEVERED);
        assert_eq!(proxy.accepted(), SEVERED);
        proxy.sever();

        let first_use_failed = Arc::new(AtomicU64::new(0));
        let slowest = Arc::new(Mutex::new(Duration::ZERO));
        let handed = Arc::new(Mutex::new(Vec::new()));
        let callers: Vec<_> = (0..TASKS as u64)
            .map(|i| {
                let (pool, key) = (pool.clone(), key.clone());
                let (failed, slowest) = (first_use_failed.clone(), slowest.clone());
                let handed = handed.clone();
                tokio::spawn(async move {
                    let start = Instant::now();
                    let mut conn = pool.get_for(&key).await.expect("get");
                    handed.lock().extend(T::conn_id(&conn));
                    match timeout(OP, T::op(&mut conn, 1000 + i)).await {
                        Ok(Ok(())) => {}
                        _ => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            Pooled::mark_broken(&mut conn);
                        }
                    }
                    let mut s = slowest.lock();
                    *s = s.max(start.elapsed());
                })
            })
            .collect();
        for c in callers {
            c.await.unwrap();
        }
        let failed = first_use_failed.load(Ordering::SeqCst);
        let handed = std::mem::take(&mut *handed.lock());
        let severed_lent: HashSet<_> = handed.iter().filter(|a| severed.contains(a)).collect();
        let to_severed = handed.iter().filter(|a| severed.contains(a)).count();
        let s = pool.state();
        // Connections, where the target tells them apart.
        let by_conn = if severed.is_empty() {
            String::new()
        } else {
            format!(
                "; {} of {} severed connections handed to {to_severed} callers",
                severed_lent.len(),
                severed.len()
            )
        };
        println!(
            "{} severed idle, {health:?}: {failed} of {TASKS} first uses failed{by_conn}; \
             slowest call {:?}; health checks {} ({} failed)",
            target.name(),
            slowest.lock(),
            s.counters.health_checks,
            s.counters.health_check_failures
        );
        match health {
            HealthCheck::Always => {
                assert_eq!(
                    severed_lent.len(),
                    0,
                    "{} callers were handed {} severed connections",
                    to_severed,
                    severed_lent.len()
                );
                assert_eq!(failed, 0, "a caller got a connection the peer had dropped");
                assert_eq!(s.counters.health_check_failures, SEVERED as u64, "{s:?}");
            }
            _ => assert!(failed > 0, "the control lent no dead connection: {s:?}"),
        }
        quiet(&pool, std::slice::from_ref(&key)).await;
        pool.close().await;
    }
}

/// Runs a test body on a 2-worker runtime of its own, alone in the process
/// (`support::alone`): each test runs 64 callers against real servers with
/// timed bounds; several at once on two cores would only measure each other.
fn serial<F: std::future::Future<Output = ()>>(body: F) {
    let _alone = support::alone();
    support::multi_thread(2, body);
}

#[test]
fn tcp_faults_under_load() {
    serial(async {
        let echo = Echo(EchoServer::start().await);
        every_fault(&echo).await;
    });
}

#[test]
fn tcp_health_check_always_never_lends_a_severed_connection() {
    serial(async {
        let echo = Echo(EchoServer::start().await);
        severed_idle_connections(&echo).await;
    });
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_faults_under_load() {
    // The server starts in this test's turn too (see `serial`).
    let _alone = support::alone();
    let Some(server) = support::pg::kept() else {
        return;
    };
    support::multi_thread(2, every_fault(&pg::Postgres(server)));
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_health_check_always_never_lends_a_severed_connection() {
    // The server starts in this test's turn too (see `serial`).
    let _alone = support::alone();
    let Some(server) = support::pg::kept() else {
        return;
    };
    support::multi_thread(2, severed_idle_connections(&pg::Postgres(server)));
}

/// gRPC: the server's stream limit is 8, so the 64 callers share 8
/// connections (of the pool's 16) as they would in use.
#[cfg(feature = "grpc")]
#[test]
fn grpc_faults_under_load() {
    serial(async {
        let target = grpc::Grpc::start("grpc", 8).await;
        every_fault(&target).await;
        target.server.abort();
    });
}

/// gRPC with the server's stream limit at 1: each connection carries one
/// caller, so "32 severed connections, 64 callers" means here what it means
/// for TCP, and the health check is what is tested.
#[cfg(feature = "grpc")]
#[test]
fn grpc_health_check_always_never_lends_a_severed_connection() {
    serial(async {
        let target = grpc::Grpc::start("grpc (1 stream)", 1).await;
        severed_idle_connections(&target).await;
        target.server.abort();
    });
}

/// gRPC lent shared (stream limit 2: 64 borrowers open the 32 connections
/// that are then severed): no caller may be handed a severed connection,
/// counted by connection: the 32 callers that find no idle connection must
/// not join the 32 whose health checks are in flight (see `pool/shared.rs`,
/// `always_lends_no_shared_connection_before_its_check_passed`).
#[cfg(feature = "grpc")]
#[test]
fn grpc_shared_health_check_always_never_lends_a_severed_connection() {
    serial(async {
        let target = grpc::Grpc::start("grpc (2 streams)", 2).await;
        severed_idle_connections(&target).await;
        target.server.abort();
    });
}
