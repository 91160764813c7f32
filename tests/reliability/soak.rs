//! Randomized soak: at least 10⁶ pool operations over the
//! TCP manager against the in-process echo server, half of the traffic
//! through the fault proxy, on a 2-worker runtime: gets (awaited, cancelled
//! by a random timeout, or dropped after one poll by a `select!`), round
//! trips, returns, `mark_broken`, detaches; dials that fail (a wrapper
//! manager fails 1 in 8 before connecting); connections the proxy resets
//! under the pool (a chaos task switches `Fault::Reset` on for a moment,
//! every few milliseconds); timers running fast (idle timeout, lifetime,
//! keepalive pings, health checks, backoff).
//!
//! Afterwards: nothing lent, waiting or dialing; `open == idle`; every
//! connection the manager made is closed by the pool exactly once, idle, or
//! detached; the pool's counters agree with the manager's; after
//! `Pool::close` nothing is open, and the process's file descriptors
//! (`/proc/self/fd`) are back to their count before the run, precisely.
//!
//! Bounded: stops at `SOAK_OPS` operations (default 1 000 000) or
//! `SOAK_SECS` seconds (default 60), whichever comes first; it fails if the
//! time bound ends it below 10⁶ operations unless `SOAK_OPS` or `SOAK_SECS`
//! was set (a long run: `SOAK_SECS=600 SOAK_OPS=100000000`). The seed is
//! printed and taken from `SOAK_SEED`. The waits at the end (connections
//! closing, descriptors released) poll with a bounded deadline; no sleep
//! orders anything.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use connpool::managers::tcp::{Destination, TcpConn, TcpManager};
use connpool::{Error, Health, Manager, Pool, Pooled, async_trait};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support;
use crate::support::echo::EchoServer;
use crate::support::fault::{Fault, FaultProxy};
use crate::support::{Counts, ZERO, check_counts};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
    })
}

/// Open file descriptors of this process.
fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// The TCP manager, failing one dial in `fail_one_in` before connecting, and
/// counting what it made and closed.
struct Flaky {
    inner: TcpManager,
    fail_one_in: u64,
    dials: AtomicU64,
    failed: AtomicU64,
    made: AtomicU64,
    closed: AtomicU64,
}

#[async_trait]
impl Manager for Flaky {
    type Key = Destination;
    type Connection = TcpConn;
    type Error = io::Error;

    async fn connect(&self, key: &Destination) -> io::Result<TcpConn> {
        let n = self.dials.fetch_add(1, Ordering::SeqCst);
        // A fixed pattern, not a shared RNG: which dial fails is decided by
        // its number (mixed, so failures don't line up with anything).
        if n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(17)
            .is_multiple_of(self.fail_one_in)
        {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "injected dial failure",
            ));
        }
        let conn = self.inner.connect(key).await?;
        self.made.fetch_add(1, Ordering::SeqCst);
        Ok(conn)
    }

    async fn ping(&self, conn: &mut TcpConn) -> io::Result<()> {
        self.inner.ping(conn).await
    }

    fn health(&self, conn: &mut TcpConn) -> Health {
        self.inner.health(conn)
    }

    async fn close(&self, conn: TcpConn) {
        self.closed.fetch_add(1, Ordering::SeqCst);
        self.inner.close(conn).await;
    }
}

#[derive(Default)]
struct Figures {
    ops: AtomicU64,
    served: AtomicU64,
    cancelled: AtomicU64,
    round_trips: AtomicU64,
    round_trip_failures: AtomicU64,
    marked_broken: AtomicU64,
    detached: AtomicU64,
    connect_errors: AtomicU64,
    backoff_errors: AtomicU64,
    resets_injected: AtomicU64,
}

fn add(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

const TASKS: u64 = 32;
const DEFAULT_OPS: u64 = 1_000_000;
const DEFAULT_SECS: u64 = 60;
/// Bound of the waits at the end for things a working pool does in
/// milliseconds (closes finishing, descriptors released).
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// One line sent and echoed back, within 2 s.
async fn round_trip(conn: &mut TcpConn, n: u64) -> io::Result<()> {
    let line = format!("soak {n}\n");
    let fut = async {
        conn.write_all(line.as_bytes()).await?;
        let mut reader = BufReader::new(&mut *conn);
        let mut back = String::new();
        reader.read_line(&mut back).await?;
        if back != line {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("sent {line:?}, got {back:?}"),
            ));
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "round trip")))
}

/// Alone in the process (`support::alone`): the run counts its file
/// descriptors.
#[test]
fn soak_random_operations_leak_nothing() {
    let _alone = support::alone();
    support::multi_thread(2, soak());
}

async fn soak() {
    let ops_set = env_u64("SOAK_OPS");
    let secs_set = env_u64("SOAK_SECS");
    let target_ops = ops_set.unwrap_or(DEFAULT_OPS);
    let limit = Duration::from_secs(secs_set.unwrap_or(DEFAULT_SECS));
    let seed = env_u64("SOAK_SEED").unwrap_or(0x5EED_C0FF_EE15_600D);
    println!("soak: seed {seed:#x}, {target_ops} ops or {limit:?}, {TASKS} tasks");

    let server = EchoServer::start().await;
    let proxy = Arc::new(FaultProxy::start(server.addr).await);
    // The runtime's, the server's and the proxy's descriptors are all open
    // now; everything the run opens must be closed again at the end.
    let fds_before = fds();

    let keys = [
        Destination::from(proxy.addr),
        Destination::from(server.addr),
    ];
    let ms = Duration::from_millis;
    let manager = Flaky {
        inner: TcpManager::new().line_ping("ping\n", "pong\n"),
        fail_one_in: 8,
        dials: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        made: AtomicU64::new(0),
        closed: AtomicU64::new(0),
    };
    let pool = Pool::builder(manager)
        .max_open(8)
        .max_open_per_key(6)
        .max_idle(6)
        .max_idle_per_key(4)
        .checkout_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .idle_timeout(ms(50))
        .max_lifetime(ms(1000))
        .health_check(ms(5))
        .keepalive_interval(ms(20))
        .backoff(ms(1), ms(5))
        .max_connecting(2)
        .build()
        .await
        .unwrap();

    let figures = Arc::new(Figures::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + limit;

    // Chaos: every 4–20 ms of real time, reset every connection through the
    // proxy (live ones and dials in progress), then pass traffic again.
    let chaos = {
        let (figures, stop) = (Arc::clone(&figures), Arc::clone(&stop));
        let proxy = Arc::clone(&proxy);
        tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed ^ 0xC4A0_5000);
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(4 + rng.u64(..17))).await;
                proxy.set(Fault::Reset);
                add(&figures.resets_injected);
                tokio::task::yield_now().await;
                proxy.clear();
            }
        })
    };

    let workers: Vec<_> = (0..TASKS)
        .map(|t| {
            let (pool, figures, stop) = (pool.clone(), Arc::clone(&figures), Arc::clone(&stop));
            let keys = keys.clone();
            tokio::spawn(async move {
                let mut rng =
                    fastrand::Rng::with_seed(seed ^ (t + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
                let mut n = 0u64;
                loop {
                    if n.is_multiple_of(64)
                        && (stop.load(Ordering::Relaxed)
                            || get(&figures.ops) >= target_ops
                            || Instant::now() >= deadline)
                    {
                        stop.store(true, Ordering::Relaxed);
                        return;
                    }
                    n += 1;
                    add(&figures.ops);
                    let key = &keys[rng.u64(..2) as usize];
                    let fut = pool.get_for(key);
                    let got = match rng.u64(..16) {
                        // Give up after a random few microseconds.
                        0 | 1 => {
                            match tokio::time::timeout(Duration::from_micros(rng.u64(..200)), fut)
                                .await
                            {
                                Ok(r) => r,
                                Err(_) => {
                                    add(&figures.cancelled);
                                    continue;
                                }
                            }
                        }
                        // Dropped after its first poll(s), unless ready at once.
                        2 => {
                            tokio::select! {
                                biased;
                                r = fut => r,
                                () = tokio::task::yield_now() => {
                                    add(&figures.cancelled);
                                    continue;
                                }
                            }
                        }
                        _ => fut.await,
                    };
                    let mut conn = match got {
                        Ok(conn) => conn,
                        Err(Error::Connect(_)) => {
                            add(&figures.connect_errors);
                            continue;
                        }
                        Err(Error::Backoff { .. }) => {
                            add(&figures.backoff_errors);
                            // Failed by its key's probe: let others run.
                            tokio::task::yield_now().await;
                            continue;
                        }
                        Err(e) => panic!("unexpected error after {n} ops: {e}"),
                    };
                    add(&figures.served);
                    match rng.u64(..100) {
                        0..=2 => {
                            add(&figures.round_trips);
                            if round_trip(&mut conn, n).await.is_err() {
                                // Reset under us: say so, as a user would.
                                add(&figures.round_trip_failures);
                                Pooled::mark_broken(&mut conn);
                            }
                        }
                        3 => {
                            add(&figures.marked_broken);
                            Pooled::mark_broken(&mut conn);
                        }
                        4 if rng.u64(..4) == 0 => {
                            add(&figures.detached);
                            drop(Pooled::detach(conn));
                        }
                        5..=8 => tokio::task::yield_now().await,
                        _ => {}
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("a worker panicked");
    }
    stop.store(true, Ordering::Relaxed);
    chaos.await.unwrap();
    proxy.clear();
    let ran = started.elapsed();
    let ops = get(&figures.ops);

    // Dials, closes, pings and hand-offs still in flight end within a dial
    // or a ping; then nothing is lent, waiting, dialing or pinging.
    let settle = Instant::now();
    loop {
        let s = pool.state();
        if s.lent == 0 && s.waiting == 0 && s.dialing == 0 && s.pinging == 0 && s.closing == 0 {
            break;
        }
        assert!(settle.elapsed() < SETTLE_LIMIT, "pool never settled: {s:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Keepalive may take an idle connection out at any time: check the
    // snapshot that the loop above accepted, taken again atomically.
    let s = pool.state();
    check_counts(&pool, &keys);
    let m = pool.manager();
    let made = get(&m.made);
    let dial_failures = get(&m.failed);
    println!(
        "soak: {ops} ops in {ran:.1?} ({:.0} ops/s); served {}, cancelled {}, \
         connect errors {}, backoff errors {}, round trips {} ({} failed), \
         marked broken {}, detached {}, resets injected {} ({} connections cut); \
         dials {} (injected failures {dial_failures}, made {made}), closed {}",
        ops as f64 / ran.as_secs_f64(),
        get(&figures.served),
        get(&figures.cancelled),
        get(&figures.connect_errors),
        get(&figures.backoff_errors),
        get(&figures.round_trips),
        get(&figures.round_trip_failures),
        get(&figures.marked_broken),
        get(&figures.detached),
        get(&figures.resets_injected),
        proxy.cut(),
        s.counters.dials,
        s.counters.closed_total(),
    );
    println!("soak: final state {s:?}");
    let at_rest = Counts { open: s.idle + s.pinging, idle: s.idle, pinging: s.pinging, ..ZERO };
    assert_eq!(Counts::from(&s), at_rest, "{s:?}");
    assert!(s.open <= 8 && s.idle <= 6, "{s:?}");
    assert_eq!(
        s.counters.dials,
        get(&m.dials),
        "pool and manager count dials alike"
    );
    assert!(
        s.counters.dial_failures >= dial_failures,
        "every injected failure is a dial failure: {s:?}"
    );
    // A dial that fails made no connection, unless the connection it made
    // was broken on arrival (a reset cut it): then the pool closed it.
    let lent_or_kept = s.counters.dials - s.counters.dial_failures;
    assert!(
        lent_or_kept <= made && made - lent_or_kept <= s.counters.dial_failures - dial_failures,
        "every dial that did not fail made a connection: {s:?}"
    );
    assert_eq!(
        made,
        s.counters.closed_total() + s.open as u64 + get(&figures.detached),
        "every connection made is closed, open or detached: {s:?}"
    );
    assert_eq!(s.counters.timeouts, 0, "no get ran into its deadline");
    if ops_set.is_none() && secs_set.is_none() {
        assert!(
            ops >= DEFAULT_OPS,
            "only {ops} operations within {limit:?}: too slow for the soak's 10⁶"
        );
    }
    assert!(get(&figures.served) > ops / 2, "most gets are served");
    assert!(get(&figures.resets_injected) > 0 && dial_failures > 0);

    pool.close().await;
    let s = pool.state();
    assert_eq!(Counts::from(&s), ZERO);
    assert_eq!(s.closing, 0, "{s:?}");
    assert_eq!(
        get(&pool.manager().closed),
        s.counters.closed_total(),
        "the manager closed what the pool counted"
    );
    assert_eq!(made, s.counters.closed_total() + get(&figures.detached));
    drop(pool);

    // The proxy and the server close their sides when they see ours close.
    let settle = Instant::now();
    loop {
        let now = fds();
        if now == fds_before {
            break;
        }
        assert!(
            settle.elapsed() < SETTLE_LIMIT,
            "{now} file descriptors open, {fds_before} before the soak \
             (proxy holds {} connections)",
            proxy.live()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "soak: file descriptors back to {fds_before} {:?} after the pool closed",
        settle.elapsed()
    );
}
