//! Redis behind Sentinel: a master, a replica and three Sentinels
//! (throwaway servers), a failover under 16 writers through a
//! `RedisService` over a pool of `RedisManager::through_sentinels`: asked
//! of a Sentinel (`SENTINEL FAILOVER`), and decided by the Sentinels
//! themselves once the master is killed (`SIGKILL`) or frozen (`SIGSTOP`).
//! The pool listens to every Sentinel: from the failover's first
//! announcement no write goes to the old master and no reply of the old
//! master counts as an acknowledgement, and the writes held meanwhile go
//! to the new master once one is announced. Each run counts the
//! acknowledged writes the new master does not have (lost: at most 50
//! asked for, none killed or frozen) and when writes reached it after
//! `+switch-master`. The same with one Sentinel frozen, or cut off by the
//! network, before the failover. Dials ask on a watcher's connection.
//!
//! `CI=true` makes a missing `redis-server` a failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use connpool::Pool;
use connpool::managers::redis::redis::AsyncCommands;
use connpool::managers::redis::{RedisManager, RedisService};
use parking_lot::Mutex;
use std::time::Instant;
use tokio::task::JoinSet;

use crate::support::BOUND;
use crate::support::netns::Netns;
use crate::support::redis::{Fleet, RedisServer, clients};
use crate::support::until;

const WRITERS: usize = 16;
const MASTER: &str = "mymaster";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_follow_the_master_through_a_failover() {
    let Some(mut fleet) = Fleet::start(MASTER).await else {
        return;
    };
    fail_over_under_writers(&mut fleet, How::Asked(Cut::None), "Sentinel failover").await;
}

/// The master killed (`SIGKILL`): the Sentinels find it down (2 s) and
/// fail it over; the pool's dials wait for the new master meanwhile, and
/// writes go there once it is announced. No acknowledged write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_follow_the_master_when_it_is_killed() {
    let Some(mut fleet) = Fleet::start(MASTER).await else {
        return;
    };
    fail_over_under_writers(&mut fleet, How::Killed, "master killed").await;
}

/// The master frozen (`SIGSTOP`: its sockets open and silent): as when it
/// is killed, and no reply it could send after its thaw would count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_follow_the_master_when_it_is_frozen() {
    let Some(mut fleet) = Fleet::start(MASTER).await else {
        return;
    };
    fail_over_under_writers(&mut fleet, How::Frozen, "master frozen").await;
}

/// The first Sentinel (the one dials ask first) frozen (`SIGSTOP`: its
/// socket stays open and silent, as behind a partition) just before a
/// failover asked of another: the failover is heard from the others, and
/// the dials after it ask the Sentinel that announced the switch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_sentinel_is_left_for_another() {
    let Some(mut fleet) = Fleet::start(MASTER).await else {
        return;
    };
    fail_over_under_writers(
        &mut fleet,
        How::Asked(Cut::Freeze),
        "failover with a Sentinel frozen",
    )
    .await;
}

/// The first Sentinel cut off by the network (every packet to or from its
/// port dropped, in a network namespace of the test's own: no RST, no
/// FIN, and a new connection to it hangs): left as a frozen one is, in
/// time for a failover announced through another.
#[test]
fn a_partitioned_sentinel_is_left_for_another() {
    let Some(ns) = Netns::new() else {
        return;
    };
    ns.run(async {
        let Some(mut fleet) = Fleet::start(MASTER).await else {
            return;
        };
        fail_over_under_writers(
            &mut fleet,
            How::Asked(Cut::Partition(&ns)),
            "failover with a Sentinel cut off",
        )
        .await;
    });
}

/// A Sentinel that asks for a password (`requirepass`), given in its URL:
/// the dial logs in, asks it for the master and the pool lends. Without
/// the password, or with a wrong one, the get fails with the Sentinel's
/// refusal; neither the error nor the manager's `Debug` shows a password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_that_asks_for_a_password() {
    const SECRET: &str = "s3cret-sentinel";
    let Some(master) = RedisServer::new() else {
        return;
    };
    let sentinel = RedisServer::sentinel_with(&master, MASTER, &format!("requirepass {SECRET}\n"))
        .expect("redis-server runs as a Sentinel");
    let through = |login: &str| {
        let url = format!("redis://{login}127.0.0.1:{}", sentinel.port());
        RedisManager::from_url("redis://127.0.0.1/0")
            .unwrap()
            .through_sentinels(MASTER, [url])
            .unwrap()
    };
    let manager = through(&format!(":{SECRET}@"));
    assert!(!format!("{manager:?}").contains(SECRET), "{manager:?}");
    let pool = Pool::builder(manager.single()).build().await.unwrap();
    let mut conn = pool.get().await.unwrap();
    let _: () = conn.set("through", 1).await.unwrap();
    drop(conn);
    pool.close().await;

    for login in ["", ":wrong-password@"] {
        let pool = Pool::builder(through(login).single())
            .checkout_timeout(Duration::from_secs(5))
            .build()
            .await
            .unwrap();
        let error = pool
            .get()
            .await
            .expect_err("no login, no master")
            .to_string();
        assert!(error.contains("Sentinel 127.0.0.1:"), "{error}");
        assert!(
            error.contains("NOAUTH") || error.contains("authentication failed"),
            "{login:?}: {error}"
        );
        assert!(!error.contains("wrong-password"), "{error}");
        pool.close().await;
    }
}

/// A Sentinel over TLS (`rediss://` in its URL), before a master over TLS:
/// both dialed with the manager's TLS configuration, their certificates
/// checked; the pool lends, and its watcher subscribes to the Sentinel
/// over TLS too.
#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_over_tls() {
    use connpool::managers::tcp::{Destination, TcpManager};
    use connpool::managers::tls::TlsConfig;

    use crate::support::tls::{Ca, Leaf};

    let ca = Ca::new("redis sentinel test CA");
    let (cert, key) = ca.leaf_pem(Leaf::Good);
    let Some(master) = RedisServer::tls(&cert, &key, &ca.pem) else {
        return;
    };
    let sentinel = RedisServer::sentinel_tls(&master, MASTER, (&cert, &key, &ca.pem))
        .expect("redis-server runs as a Sentinel");
    let manager = RedisManager::from_url("rediss://localhost/0")
        .unwrap()
        .tls(TlsConfig::private_ca(&ca.pem).unwrap())
        .through_sentinels(MASTER, [format!("rediss://127.0.0.1:{}", sentinel.port())])
        .unwrap();
    let pool = Pool::builder(manager.single()).build().await.unwrap();
    let mut conn = pool.get().await.unwrap();
    let _: () = conn.set("over", "tls").await.unwrap();
    drop(conn);
    // The watcher: a subscriber of the Sentinel's, seen over TLS too.
    let tcp = Pool::builder(TcpManager::new().tls(TlsConfig::private_ca(&ca.pem).unwrap()))
        .build()
        .await
        .unwrap();
    let dest = Destination::from(("localhost", sentinel.port()));
    let stream = connpool::Pooled::detach(tcp.get_for(&dest).await.unwrap());
    let config = ::redis::AsyncConnectionConfig::new();
    let info = ::redis::RedisConnectionInfo::default();
    let (mut observer, driver) =
        ::redis::aio::MultiplexedConnection::new_with_config(&info, stream, config)
            .await
            .unwrap();
    tokio::spawn(driver);
    let started = Instant::now();
    loop {
        let list: String = ::redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut observer)
            .await
            .unwrap();
        if list.lines().any(subscribed) {
            break;
        }
        assert!(started.elapsed() < BOUND, "the watcher never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pool.close().await;

    // The Sentinel's certificate is checked: Mozilla's roots do not know
    // the test CA.
    let untrusting = RedisManager::from_url("rediss://localhost/0")
        .unwrap()
        .through_sentinels(MASTER, [format!("rediss://127.0.0.1:{}", sentinel.port())])
        .unwrap();
    let pool = Pool::builder(untrusting.single()).build().await.unwrap();
    let error = pool.get().await.expect_err("an unknown issuer").to_string();
    assert!(error.contains("UnknownIssuer"), "{error}");
    pool.close().await;
}

/// A dial asks the Sentinel the watcher listens to on the watcher's own
/// connection, not on one of its own: eight dials (connections lent
/// exclusively, all held) once the watcher listens open at most one
/// connection to any Sentinel, that of a dial that came before the
/// watcher's connection was ready (one each, before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dials_ask_on_the_watchers_connection() {
    let Some(fleet) = Fleet::start(MASTER).await else {
        return;
    };
    let manager = RedisManager::from_url("redis://127.0.0.1/0")
        .unwrap()
        .through_sentinels(MASTER, fleet.sentinel_addrs())
        .unwrap()
        .exclusive();
    let pool = Pool::builder(manager.single())
        .max_open(16)
        .build()
        .await
        .unwrap();
    let mut observers = Vec::new();
    for sentinel in &fleet.sentinels {
        observers.push(sentinel.observer().await);
    }
    let first = pool.get().await.unwrap();
    // A watcher on every Sentinel, each with its connection for questions.
    let start = Instant::now();
    for (i, sentinel) in fleet.sentinels.iter().enumerate() {
        loop {
            let asking = !clients(&mut observers[i]).await.is_empty();
            if asking && has_subscriber(sentinel).await {
                break;
            }
            assert!(start.elapsed() < BOUND, "no watcher on Sentinel {i}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let before = connections_received(&mut observers).await;
    let mut held = vec![first];
    for _ in 0..8 {
        held.push(pool.get().await.unwrap());
    }
    assert_eq!(pool.state().counters.dials, 9);
    let opened = connections_received(&mut observers).await - before;
    assert!(
        opened <= 1,
        "{opened} connections to the Sentinels for 8 dials"
    );
    drop(held);
    pool.close().await;
}

/// Connections the Sentinels accepted so far, together.
async fn connections_received(observers: &mut [redis::aio::MultiplexedConnection]) -> u64 {
    let mut total = 0;
    for observer in observers {
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(observer)
            .await
            .unwrap();
        let line = info
            .lines()
            .find_map(|l| l.strip_prefix("total_connections_received:"));
        total += line.unwrap().trim().parse::<u64>().unwrap();
    }
    total
}

/// Whether a client of `sentinel` is subscribed to something (a pool's
/// watcher: the tests subscribe nowhere else before a failover).
async fn has_subscriber(sentinel: &RedisServer) -> bool {
    let mut observer = sentinel.observer().await;
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut observer)
        .await
        .unwrap();
    list.lines().any(subscribed)
}

/// Whether the client of a `CLIENT LIST` line is subscribed to a channel
/// or a pattern.
fn subscribed(client: &str) -> bool {
    !(client.contains(" sub=0 ") && client.contains(" psub=0 "))
}

/// What befalls the first Sentinel (the one the dials ask first) before a
/// failover asked of another.
enum Cut<'a> {
    /// Nothing: the failover is asked of it.
    None,
    /// Frozen (`SIGSTOP`).
    Freeze,
    /// Cut off by the network of the test's namespace.
    Partition(&'a Netns),
}

/// How the failover comes about.
enum How<'a> {
    /// `SENTINEL FAILOVER`, after the cut.
    Asked(Cut<'a>),
    /// The master killed: the Sentinels find it down and fail it over.
    Killed,
    /// The master frozen: likewise.
    Frozen,
}

/// 16 writers through a pool of `RedisManager::through_sentinels`, each
/// write under a 1 s deadline, then a failover as `how` says. Checks that
/// writes reach the new master within 1 s of `+switch-master` (as a client
/// subscribed to every Sentinel hears it), and how many acknowledged
/// writes the new master does not have: at most 50 for a failover asked
/// for (a write the old master acknowledged in the instants between the
/// failover's first announcement and the pool's hearing it, before the
/// replica's promotion, may not have reached the replica); for a master
/// killed or frozen, none acknowledged after the fault (those it
/// acknowledged just before and had not replicated yet are lost to
/// Redis's asynchronous replication, as for any client).
async fn fail_over_under_writers(fleet: &mut Fleet, how: How<'_>, what: &str) {
    let manager = RedisManager::from_url("redis://127.0.0.1/0")
        .unwrap()
        .through_sentinels(MASTER, fleet.sentinel_addrs())
        .unwrap();
    let key = manager.key();
    let pool = Pool::builder(manager).build().await.unwrap();
    let service = RedisService::new(pool.clone(), key).timeout(Duration::from_secs(1));

    let acked: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let mut writers = JoinSet::new();
    for _ in 0..WRITERS {
        let (mut redis, acked, stop, next) =
            (service.clone(), acked.clone(), stop.clone(), next.clone());
        writers.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let id = next.fetch_add(1, Ordering::SeqCst);
                match redis.set::<_, _, ()>(format!("w:{id}"), 1).await {
                    Ok(()) => acked.lock().push((id, Instant::now())),
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
    }
    until("writes flowing", || acked.lock().len() > 100).await;
    let switch = fleet.switch_heard().await;
    match how {
        How::Asked(ref cut) => {
            let through = match cut {
                Cut::None => 0,
                Cut::Freeze | Cut::Partition(_) => 1,
            };
            if through != 0 {
                for sentinel in &fleet.sentinels[1..] {
                    assert!(has_subscriber(sentinel).await, "a watcher on each");
                }
                match cut {
                    Cut::Partition(ns) => ns.partition(fleet.sentinels[0].port()),
                    _ => fleet.sentinels[0].signal("STOP"),
                }
            }
            let _ = fleet.fail_over_through(through).await;
        }
        How::Killed => fleet.master.kill(),
        How::Frozen => fleet.master.signal("STOP"),
    }
    let fault = Instant::now();
    let switched = switch.await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    writers.join_all().await;

    let acked = std::mem::take(&mut *acked.lock());
    let mut on_new = fleet.replica.observer().await;
    let mut missing = Vec::new();
    for chunk in acked.chunks(1000) {
        let mut exists = redis::pipe();
        for (id, _) in chunk {
            exists.exists(format!("w:{id}"));
        }
        let there: Vec<bool> = exists.query_async(&mut on_new).await.unwrap();
        missing.extend(
            chunk
                .iter()
                .zip(there)
                .filter(|(_, there)| !there)
                .map(|(w, _)| *w),
        );
    }
    let first = acked
        .iter()
        .map(|&(_, at)| at)
        .filter(|&at| at > switched)
        .min()
        .map(|at| at - switched);
    let counters = pool.state().counters;
    println!(
        "{what}: {} writes acknowledged, {} lost (the new master does not have them), the \
         first after +switch-master {first:?} after it, {} key clears",
        acked.len(),
        missing.len(),
        counters.key_clears
    );
    let first = first.expect("writes reached the new master after the switch");
    assert!(first < Duration::from_secs(1), "{first:?}");
    match how {
        How::Asked(_) => assert!(
            missing.len() <= 50,
            "{} acknowledged writes lost",
            missing.len()
        ),
        // What the master acknowledged in its last instants and had not
        // sent its replica yet is lost to asynchronous replication,
        // whatever the client; what was acknowledged after the fault
        // came from the new master.
        How::Killed | How::Frozen => {
            let after = missing.iter().filter(|&&(_, at)| at >= fault).count();
            assert_eq!(after, 0, "acknowledged writes lost after the fault");
        }
    }
    if let How::Asked(_) = how {
        // The old master's connections, retired at the failover's start.
        assert!(counters.key_clears >= 1);
    }
    pool.close().await;
}
