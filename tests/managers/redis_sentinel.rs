//! Redis behind Sentinel: a master, a replica and three Sentinels
//! (throwaway servers), `SENTINEL FAILOVER` under 16 writers through a
//! `RedisService` over a pool of `RedisManager::through_sentinels`. Once
//! the pool hears `+switch-master`, no write goes to the old master and
//! no reply of the old master counts as an acknowledgement (a write lost
//! after the announcement is one acknowledged while it was on its way to
//! the pool: a few at most, against tens of thousands without), and writes
//! reach the new master within 1 s. The same with the Sentinel the pool
//! listens to frozen, or cut off by the network, before the failover: the
//! pool leaves it for another. Dials ask on the watcher's connection.
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
    let Some(fleet) = Fleet::start(MASTER).await else {
        return;
    };
    fail_over_under_writers(&fleet, Cut::None, "Sentinel failover").await;
}

/// The Sentinel the pool's watcher listens to frozen (`SIGSTOP`: its
/// socket stays open and silent, as behind a partition): the watcher asks
/// it after a second of silence, leaves it when it does not answer within
/// 500 ms, and listens to another, in time for a failover announced there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_sentinel_is_left_for_another() {
    let Some(fleet) = Fleet::start(MASTER).await else {
        return;
    };
    fail_over_under_writers(
        &fleet,
        Cut::Freeze,
        "failover with the watched Sentinel frozen",
    )
    .await;
}

/// The Sentinel the pool's watcher listens to cut off by the network
/// (every packet to or from its port dropped, in a network namespace of
/// the test's own: no RST, no FIN, and a new connection to it hangs): left
/// as a frozen one is, in time for a failover announced through another.
#[test]
fn a_partitioned_sentinel_is_left_for_another() {
    let Some(ns) = Netns::new() else {
        return;
    };
    ns.run(async {
        let Some(fleet) = Fleet::start(MASTER).await else {
            return;
        };
        fail_over_under_writers(
            &fleet,
            Cut::Partition(&ns),
            "failover with the watched Sentinel cut off",
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
        if list.lines().any(|l| !l.contains(" sub=0 ")) {
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
    // Subscribed, with its connection for questions.
    let start = Instant::now();
    loop {
        let asking = !clients(&mut observers[0]).await.is_empty();
        if asking && has_subscriber(&fleet.sentinels[0]).await {
            break;
        }
        assert!(start.elapsed() < BOUND, "no watcher on the first Sentinel");
        tokio::time::sleep(Duration::from_millis(1)).await;
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

/// Whether a client of `sentinel` is subscribed to something (the pool's
/// watcher: the tests subscribe nowhere else before a failover).
async fn has_subscriber(sentinel: &RedisServer) -> bool {
    let mut observer = sentinel.observer().await;
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut observer)
        .await
        .unwrap();
    list.lines().any(|l| !l.contains(" sub=0 "))
}

/// What befalls the first Sentinel (the one the pool's watcher listens to
/// first) before the failover.
enum Cut<'a> {
    /// Nothing: the failover is asked of it.
    None,
    /// Frozen (`SIGSTOP`).
    Freeze,
    /// Cut off by the network of the test's namespace.
    Partition(&'a Netns),
}

/// 16 writers through a pool of `RedisManager::through_sentinels`, then a
/// failover. With a `cut`, the first Sentinel is frozen or cut off first,
/// the watcher is waited for on another, and the failover is asked of the
/// second. Checks that writes reach the new master within 1 s of
/// `+switch-master`, and that few acknowledged after it are lost.
async fn fail_over_under_writers(fleet: &Fleet, cut: Cut<'_>, what: &str) {
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
    let through = match cut {
        Cut::None => 0,
        Cut::Freeze | Cut::Partition(_) => 1,
    };
    if through != 0 {
        assert!(
            has_subscriber(&fleet.sentinels[0]).await,
            "the watcher on the first"
        );
        match cut {
            Cut::Partition(ns) => ns.partition(fleet.sentinels[0].port()),
            _ => fleet.sentinels[0].signal("STOP"),
        }
        let cut_at = Instant::now();
        while !(has_subscriber(&fleet.sentinels[1]).await
            || has_subscriber(&fleet.sentinels[2]).await)
        {
            assert!(
                cut_at.elapsed() < BOUND,
                "the watcher never left the silent Sentinel"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!(
            "{what}: the watcher left the silent Sentinel after {:?}",
            cut_at.elapsed()
        );
    }

    let switched = fleet.fail_over_through(through).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    writers.join_all().await;

    let acked = std::mem::take(&mut *acked.lock());
    let mut on_new = fleet.replica.observer().await;
    let mut after = Vec::new();
    let mut lost_after = 0;
    for &(id, at) in acked.iter().filter(|&&(_, at)| at > switched) {
        let there: bool = on_new.exists(format!("w:{id}")).await.unwrap();
        if there {
            after.push(at);
        } else {
            lost_after += 1;
        }
    }
    let first = after.iter().min().map(|&at| at - switched);
    let counters = pool.state().counters;
    println!(
        "{what}: {} writes acknowledged, the first on the new master {first:?} after \
         +switch-master, {lost_after} acknowledged after it by the old master, {} key clears",
        acked.len(),
        counters.key_clears
    );
    let first = first.expect("writes reached the new master after the switch");
    assert!(first < Duration::from_secs(1), "{first:?}");
    // Those acknowledged while the announcement was on its way from the
    // test's subscription to the pool's watcher may be lost.
    assert!(
        lost_after <= 4 * WRITERS,
        "{lost_after} writes went to the old master after the switch"
    );
    assert!(counters.key_clears >= 1);
    pool.close().await;
}
