//! `Balanced` over in-process hyper servers on distinct loopback addresses
//! (127.0.0.2, .3, .4), behind a scripted resolver: calls spread over all of
//! them, an address removed from the answers drains with no failed call, an
//! added one takes calls after the next resolution, and a server killed
//! mid-run costs only the calls sent to it before the pool found it dead.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connpool::Pool;
use connpool::managers::balance::{Balanced, Ejection, MIN_RESOLVE_INTERVAL, Resolve};
use connpool::managers::http::HttpManager;
use http::Request;
use http_body_util::{BodyExt, Full};
use parking_lot::Mutex;
use tower::{Service, ServiceExt};

use crate::service::StreamServer;
use crate::support::{BOUND, until};

/// Answers what the test last set, and counts the questions.
#[derive(Clone, Default)]
struct Scripted {
    answer: Arc<Mutex<Vec<SocketAddr>>>,
    asked: Arc<AtomicUsize>,
    /// 0: answer; 1: fail; 2: panic.
    trouble: Arc<AtomicUsize>,
    /// The TTL the answers carry.
    ttl: Arc<Mutex<Option<Duration>>>,
}

impl Scripted {
    fn set(&self, addrs: &[&StreamServer]) {
        *self.answer.lock() = addrs.iter().map(|s| s.addr).collect();
    }

    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }

    /// Waits for the resolution after the one under way now.
    async fn next_resolution(&self) {
        let seen = self.asked();
        until("the next resolution", || self.asked() >= seen + 2).await;
    }
}

#[connpool::async_trait]
impl Resolve for Scripted {
    async fn resolve(&self, name: &str) -> io::Result<(Vec<SocketAddr>, Option<Duration>)> {
        assert_eq!(name, "backend.test:443");
        self.asked.fetch_add(1, Ordering::SeqCst);
        match self.trouble.load(Ordering::SeqCst) {
            0 => {}
            1 => return Err(io::Error::other("the resolver is down")),
            _ => panic!("a resolver that panics"),
        }
        Ok((self.answer.lock().clone(), *self.ttl.lock()))
    }
}

async fn servers(n: usize) -> Vec<StreamServer> {
    let mut servers = Vec::new();
    for i in 0..n {
        servers.push(StreamServer::start(&format!("127.0.0.{}", i + 2), None).await);
    }
    servers
}

/// The checkout deadline bounds every call.
async fn balanced(resolver: &Scripted) -> Balanced<HttpManager> {
    balanced_with(resolver, 0).await.0
}

async fn balanced_with(
    resolver: &Scripted,
    min_idle: usize,
) -> (Balanced<HttpManager>, Pool<HttpManager>) {
    let pool = Pool::builder(HttpManager::http2())
        .checkout_timeout(Duration::from_secs(5))
        .min_idle(min_idle)
        .build()
        .await
        .unwrap();
    let name = "backend.test:443";
    let every = if resolver.ttl.lock().is_some() {
        Duration::from_secs(3600)
    } else {
        MIN_RESOLVE_INTERVAL
    };
    let svc = Balanced::with_resolver(pool.clone(), name, resolver.clone(), every);
    (svc, pool)
}

/// `calls` calls from `tasks` tasks; returns how many failed.
async fn drive(svc: &Balanced<HttpManager>, tasks: usize, calls: usize) -> usize {
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (mut svc, next, failed) = (svc.clone(), next.clone(), failed.clone());
        set.spawn(async move {
            while next.fetch_add(1, Ordering::SeqCst) < calls {
                let request = Request::get("/").body(Full::default()).unwrap();
                let ok = match svc.ready().await {
                    Ok(svc) => match svc.call(request).await {
                        Ok(response) => {
                            response.status().is_success()
                                && response.into_body().collect().await.is_ok()
                        }
                        Err(_) => false,
                    },
                    Err(_) => false,
                };
                if !ok {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    failed.load(Ordering::SeqCst)
}

/// Waits until `gone`'s key has no connection left, calling through
/// `svc` meanwhile: the balancer takes in a new answer (and lets go of an
/// address) only when it is polled, by a call.
async fn drained(svc: &Balanced<HttpManager>, pool: &Pool<HttpManager>, gone: &StreamServer) {
    let key = gone.addr.into();
    let start = std::time::Instant::now();
    while pool.key_state(&key).is_some_and(|k| k.open > 0) {
        assert!(
            start.elapsed() < BOUND,
            "{}'s connections not closed: {:?}",
            gone.addr,
            pool.key_state(&key)
        );
        assert_eq!(drive(svc, 1, 1).await, 0);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn served(servers: &[StreamServer]) -> Vec<usize> {
    servers.iter().map(StreamServer::served).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_spread_over_every_address() {
    let servers = servers(3).await;
    let resolver = Scripted::default();
    resolver.set(&servers.iter().collect::<Vec<_>>());
    let svc = balanced(&resolver).await;

    assert_eq!(drive(&svc, 16, 10_000).await, 0);
    let served = served(&servers);
    println!("10,000 calls over 3 addresses: {served:?}");
    let mean = 10_000.0 / 3.0;
    for (i, n) in served.iter().enumerate() {
        let off = (*n as f64 - mean).abs() / mean;
        assert!(off <= 0.2, "server {i} served {n} of 10,000 ({served:?})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_address_drains_and_an_added_one_takes_calls() {
    let servers = servers(3).await;
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let resolver = Scripted::default();
    resolver.set(&[a, b]);
    let (svc, pool) = balanced_with(&resolver, 0).await;
    assert_eq!(drive(&svc, 16, 1_000).await, 0);
    assert!(
        a.served() > 0 && b.served() > 0 && c.served() == 0,
        "{:?}",
        served(&servers)
    );

    // b leaves, c joins: calls keep going while it happens.
    let load = {
        let svc = svc.clone();
        tokio::spawn(async move { drive(&svc, 16, 4_000).await })
    };
    resolver.set(&[a, c]);
    resolver.next_resolution().await;
    drained(&svc, &pool, b).await;
    assert_eq!(load.await.unwrap(), 0, "no call failed while b drained");
    let b_after = b.served();
    assert_eq!(drive(&svc, 16, 1_000).await, 0);
    assert_eq!(
        b.served(),
        b_after,
        "b takes no call once it left the answers"
    );
    assert!(c.served() > 0, "c takes calls: {:?}", served(&servers));
}

/// A call the balancer sent to an address before it left the answers
/// may get a connection after the drain the resolution started (here: it
/// waited in the pool's queue for a slot, and the slot freed by the
/// drained connection went to a new dial for it). That connection is
/// closed too, once the balancer has dropped the address and the call is
/// answered: it is not left idle until the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_made_for_a_call_sent_before_its_address_left_is_closed() {
    let a = StreamServer::start("127.0.0.2", None).await;
    // One stream per connection and one connection: a second call waits.
    let b = StreamServer::start("127.0.0.3", Some(1)).await;
    let resolver = Scripted::default();
    resolver.set(&[&b]);
    let pool = Pool::builder(HttpManager::http2())
        .max_open_per_key(1)
        .checkout_timeout(BOUND)
        .build()
        .await
        .unwrap();
    let svc = Balanced::with_resolver(
        pool.clone(),
        "backend.test:443",
        resolver.clone(),
        MIN_RESOLVE_INTERVAL,
    );
    let get = |path: &'static str| {
        let mut svc = svc.clone();
        async move {
            let request = Request::get(path).body(Full::default()).unwrap();
            svc.ready().await.unwrap().call(request).await.unwrap()
        }
    };
    // The first call holds b's connection (its body is held by the
    // server); the second waits in the pool's queue for it.
    let held = get("/stream").await;
    let waiting = tokio::spawn(get("/"));
    let b_key = b.addr.into();
    until("the second call waits for b", || {
        pool.key_state(&b_key).is_some_and(|k| k.waiting == 1)
    })
    .await;

    // b leaves the answers: its connection is drained (closed when its
    // call ends), and the freed slot dials a new one for the waiting call.
    resolver.set(&[&a]);
    resolver.next_resolution().await;
    b.finish().await;
    held.into_body().collect().await.unwrap();
    waiting.await.unwrap().into_body().collect().await.unwrap();
    assert_eq!(
        b.accepted(),
        2,
        "the waiting call was served on a new connection"
    );

    drained(&svc, &pool, &b).await;
    assert!(a.served() > 0);
}

/// A balancer dropped (every clone) drains every address it had: their
/// idle connections are closed, and nothing refills them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_balancer_drains_its_addresses() {
    let servers = servers(2).await;
    let resolver = Scripted::default();
    resolver.set(&servers.iter().collect::<Vec<_>>());
    let (svc, pool) = balanced_with(&resolver, 1).await;
    assert_eq!(drive(&svc, 8, 200).await, 0);
    let keys: Vec<_> = servers.iter().map(|s| s.addr.into()).collect();
    for key in &keys {
        assert!(pool.key_state(key).is_some_and(|k| k.open > 0), "{key:?}");
    }
    drop(svc);
    until("every address drained", || {
        keys.iter()
            .all(|k| pool.key_state(k).is_none_or(|k| k.open == 0))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_costs_only_the_calls_sent_to_it() {
    let servers = servers(3).await;
    let resolver = Scripted::default();
    resolver.set(&servers.iter().collect::<Vec<_>>());
    let svc = balanced(&resolver).await;
    assert_eq!(drive(&svc, 16, 1_000).await, 0);

    servers[2].kill();
    let failed = drive(&svc, 16, 3_000).await;
    println!("killed mid-run: {failed} of 3,000 calls failed");
    // The calls in flight on it, and those sent to it before its first
    // failed dial put its key in backoff: at most one per task, in practice.
    assert!(failed <= 16, "{failed} calls failed");
    let before = served(&servers);
    assert_eq!(
        drive(&svc, 16, 1_000).await,
        0,
        "the others serve everything"
    );
    let after = served(&servers);
    assert_eq!(after[0] + after[1] - before[0] - before[1], 1_000);
}

/// A backend killed, then back on its address after a probe of its key
/// failed, takes calls again at the pool's next probe: the balancer's
/// readiness check waits for the probe, not for the key's backoff to end
/// (a minute here, past the test's bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_back_from_an_outage_is_found_by_a_probe() {
    let mut servers = servers(2).await;
    let resolver = Scripted::default();
    resolver.set(&servers.iter().collect::<Vec<_>>());
    let pool = Pool::builder(HttpManager::http2())
        .checkout_timeout(Duration::from_secs(5))
        .backoff(Duration::from_secs(60), Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    // The failed calls the kill costs eject nobody: what is under test is
    // the readiness check alone.
    let off = Ejection::default().consecutive_failures(0);
    let svc = Balanced::with_resolver(
        pool.clone(),
        "backend.test:443",
        resolver.clone(),
        MIN_RESOLVE_INTERVAL,
    )
    .with_ejection(off);
    assert_eq!(drive(&svc, 8, 200).await, 0);
    let addr = servers[1].addr;
    servers.pop().unwrap().kill();
    let key = addr.into();
    // Calls until a probe of the key failed: the getters that wanted it
    // when it went down are served, only the readiness check asks now.
    let probed = |k: &connpool::KeyState| k.backoff_left.is_some() && k.counters.probes >= 1;
    let start = std::time::Instant::now();
    while !pool.key_state(&key).is_some_and(|k| probed(&k)) {
        assert!(start.elapsed() < BOUND, "{:?}", pool.key_state(&key));
        drive(&svc, 8, 50).await;
    }
    let probes = pool.state().counters.probes;
    let back = StreamServer::start_at(addr).await;
    let start = std::time::Instant::now();
    while back.served() == 0 {
        assert!(
            start.elapsed() < BOUND,
            "not called again: {:?}",
            pool.key_state(&key)
        );
        drive(&svc, 4, 20).await;
    }
    println!("called again {:?} after the restart", start.elapsed());
    assert!(pool.state().counters.probes > probes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_panicking_resolver_keeps_the_last_answer() {
    let servers = servers(2).await;
    let resolver = Scripted::default();
    resolver.set(&servers.iter().collect::<Vec<_>>());
    let svc = balanced(&resolver).await;
    assert_eq!(drive(&svc, 8, 200).await, 0);

    for trouble in [1, 2] {
        resolver.trouble.store(trouble, Ordering::SeqCst);
        resolver.next_resolution().await;
        let before = served(&servers);
        assert_eq!(drive(&svc, 8, 400).await, 0, "trouble {trouble}");
        let after = served(&servers);
        assert!(
            after[0] > before[0] && after[1] > before[1],
            "both still serve: {after:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_min_idle_a_new_address_is_dialed_before_any_call() {
    let servers = servers(1).await;
    let resolver = Scripted::default();
    resolver.set(&[&servers[0]]);
    let (_svc, pool) = balanced_with(&resolver, 2).await;
    let key = servers[0].addr.into();
    until("two idle connections to the new address", || {
        pool.key_state(&key).is_some_and(|k| k.idle == 2)
    })
    .await;
    assert_eq!(servers[0].served(), 0, "no call was made");
    assert_eq!(pool.state().counters.dials, 2, "min_idle's dials alone");
}

/// A resolver's TTL shorter than the interval brings the next resolution
/// forward (to the TTL; an hour's interval would not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answers_ttl_brings_the_next_resolution_forward() {
    let servers = servers(1).await;
    let resolver = Scripted::default();
    resolver.set(&[&servers[0]]);
    *resolver.ttl.lock() = Some(MIN_RESOLVE_INTERVAL);
    let _svc = balanced(&resolver).await;
    until("a second resolution, one TTL after the first", || {
        resolver.asked() >= 2
    })
    .await;
}

/// Three backends, one answering every call with 503 while its connection
/// stays up: it is ejected after 5 failures in a row and gets under 5 % of
/// the calls after (each ejection ends after 500 ms and the next 5
/// failures eject it again); once it answers again, its ejection ends and
/// its share comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_fails_every_call_is_ejected_and_comes_back() {
    let resolver = Scripted::default();
    let servers = servers(3).await;
    resolver.set(&[&servers[0], &servers[1], &servers[2]]);
    let svc = balanced(&resolver).await.with_ejection(
        Ejection::default()
            .base_time(Duration::from_millis(500))
            .max_time(Duration::from_millis(500)),
    );
    assert_eq!(drive(&svc, 8, 300).await, 0, "all three answer");
    servers[2].fail(true);
    drive(&svc, 8, 300).await;
    assert!(svc.ejections() >= 1);
    let before = served(&servers);
    let failed = drive(&svc, 8, 3000).await;
    let after = served(&servers);
    let share = (after[2] - before[2]) as f64 / 3000.0;
    println!(
        "the failing backend's share once ejected: {:.1} % ({failed} failed calls of 3000, {} ejections)",
        share * 100.0,
        svc.ejections()
    );
    assert!(share < 0.05, "{:.1} %", share * 100.0);

    servers[2].fail(false);
    let start = std::time::Instant::now();
    loop {
        let before = served(&servers);
        assert_eq!(drive(&svc, 8, 300).await, 0);
        let after = served(&servers);
        if (after[2] - before[2]) * 5 > 300 {
            break;
        }
        assert!(start.elapsed() < BOUND, "its share never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
