//! The Redis manager against a throwaway redis-server of each test's own
//! (`support::redis`): shared lending and pipelining, exclusive lending and
//! the reset on return (which connections get one: `redis_reset`),
//! `rediss`, URLs. The faults (a server killed and
//! restarted, `CLIENT KILL`, `DEBUG SLEEP`) are in `redis_faults`.
//!
//! `CI=true` makes a missing `redis-server` a failure.

use std::sync::Arc;
use std::time::Duration;

// Through the re-export, as a user without a redis dependency of their own.
use ::redis::aio::MultiplexedConnection;
use connpool::managers::redis::redis::AsyncCommands;
use connpool::managers::redis::{RedisConn, RedisManager};
#[cfg(feature = "tls")]
use connpool::managers::tls::TlsConfig;
use connpool::{Pool, Pooled};
use tokio::sync::Barrier;
use tokio::time::{Instant, timeout};

use crate::support::redis::{RedisServer, clients};
#[cfg(feature = "tls")]
use crate::support::tls::{Ca, Leaf};
use crate::support::{BOUND, key_counts};

/// Waits (real time, bounded) until `cond` holds on the observer.
pub(crate) async fn eventually<F>(what: &str, mut cond: F)
where
    F: AsyncFnMut() -> bool,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < BOUND, "{what}: not within {BOUND:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub(crate) async fn client_id(conn: &mut RedisConn) -> i64 {
    ::redis::cmd("CLIENT")
        .arg("ID")
        .query_async(conn)
        .await
        .unwrap()
}

async fn client_info(conn: &mut RedisConn) -> String {
    let info: String = ::redis::cmd("CLIENT")
        .arg("INFO")
        .query_async(conn)
        .await
        .unwrap();
    info.trim().to_owned()
}

/// The value of `field=` in a `CLIENT INFO` / `CLIENT LIST` line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_borrowers_pipeline_on_one_connection() {
    let Some(server) = RedisServer::new() else {
        return;
    };
    let manager: RedisManager = server.url("/0").parse().unwrap();
    let key = manager.key();
    let pool = Pool::builder(manager)
        .max_open_per_key(4)
        .build()
        .await
        .unwrap();
    drop(pool.get_for(&key).await.unwrap());
    let tasks = 64;
    let barrier = Arc::new(Barrier::new(tasks));
    let mut handles = Vec::new();
    for i in 0..tasks {
        let (pool, key, barrier) = (pool.clone(), key.clone(), Arc::clone(&barrier));
        handles.push(tokio::spawn(async move {
            let mut conn = pool.get_for(&key).await.unwrap();
            assert!(Pooled::is_shared(&conn));
            // Every borrower holds its handle before any sends.
            barrier.wait().await;
            for n in 0..20 {
                let k = format!("k{i}");
                conn.set::<_, _, ()>(&k, n).await.unwrap();
                assert_eq!(conn.get::<_, i64>(&k).await.unwrap(), n);
            }
            client_id(&mut conn).await
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.push(h.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "64 borrowers, one connection: {ids:?}");
    let mut observer = server.observer().await;
    let list = clients(&mut observer).await;
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(key_counts(&pool, &key).unwrap().open, 1);
}

/// A shared connection that has borrowers takes the next one while it has
/// room: a spare connection rests idle instead of taking half the load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_borrowers_fill_one_connection_before_a_spare_one() {
    let Some(server) = RedisServer::new() else {
        return;
    };
    let manager: RedisManager = server.url("/0").parse().unwrap();
    let key = manager.key();
    let pool = Pool::builder(manager.shared(2))
        .max_open_per_key(4)
        .build()
        .await
        .unwrap();
    // Three borrowers at two per connection: two connections, then both idle.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(pool.get_for(&key).await.unwrap());
    }
    drop(held);
    eventually("both connections idle", async || {
        key_counts(&pool, &key).is_some_and(|k| (k.open, k.idle) == (2, 2))
    })
    .await;
    // Two borrowers now: both on one connection, the other stays idle.
    let mut a = pool.get_for(&key).await.unwrap();
    let mut b = pool.get_for(&key).await.unwrap();
    assert_eq!(client_id(&mut a).await, client_id(&mut b).await);
    let k = key_counts(&pool, &key).unwrap();
    assert_eq!((k.open, k.idle, k.lent, k.borrowers), (2, 1, 1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_blpop_does_not_stall_shared_borrowers() {
    let Some(server) = RedisServer::new() else {
        return;
    };
    let manager: RedisManager = server.url("").parse().unwrap();
    let shared = manager.key();
    let exclusive = shared.clone().exclusive();
    let pool = Pool::builder(manager)
        .max_open_per_key(2)
        .build()
        .await
        .unwrap();

    let mut blocked = Pooled::into_owned(pool.get_for(&exclusive).await.unwrap());
    assert!(!Pooled::is_shared(&blocked));
    assert!(blocked.is_exclusive());
    blocked.set_response_timeout(Duration::from_secs(10));
    let pop = tokio::spawn(async move {
        let got: Option<(String, String)> = blocked.blpop("jobs", 8.0).await.unwrap();
        got
    });
    let mut observer = server.observer().await;
    eventually("BLPOP waiting on the server", async || {
        clients(&mut observer)
            .await
            .iter()
            .any(|c| field(c, "cmd") == "blpop")
    })
    .await;

    let start = Instant::now();
    let mut conn = pool.get_for(&shared).await.unwrap();
    for _ in 0..100 {
        let _: Option<String> = conn.get("anything").await.unwrap();
    }
    conn.rpush::<_, _, ()>("jobs", "job-1").await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let got = timeout(BOUND, pop).await.unwrap().unwrap();
    assert_eq!(got, Some(("jobs".into(), "job-1".into())));
    assert_eq!(key_counts(&pool, &shared).unwrap().open, 1);
    assert_eq!(key_counts(&pool, &exclusive).unwrap().open, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_watch_multi_exec() {
    let Some(server) = RedisServer::new() else {
        return;
    };
    let manager = RedisManager::from_url(&server.url("")).unwrap().exclusive();
    let pool = Pool::builder(manager.single()).build().await.unwrap();
    let mut observer = server.observer().await;

    let mut conn = pool.get().await.unwrap();
    let _: () = ::redis::cmd("WATCH")
        .arg("balance")
        .query_async(&mut *conn)
        .await
        .unwrap();
    // Someone else changes the watched key: EXEC must abort.
    let _: () = observer.set("balance", 100).await.unwrap();
    let aborted: Option<(i64,)> = ::redis::pipe()
        .atomic()
        .incr("balance", 1)
        .query_async(&mut *conn)
        .await
        .unwrap();
    assert_eq!(aborted, None);
    let _: () = ::redis::cmd("WATCH")
        .arg("balance")
        .query_async(&mut *conn)
        .await
        .unwrap();
    let done: Option<(i64,)> = ::redis::pipe()
        .atomic()
        .incr("balance", 1)
        .query_async(&mut *conn)
        .await
        .unwrap();
    assert_eq!(done, Some((101,)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_clears_select_watch_name_and_subscriptions() {
    let Some(server) = RedisServer::new() else {
        return;
    };
    let manager = RedisManager::from_url(&server.url("/3"))
        .unwrap()
        .exclusive();
    let pool = Pool::builder(manager.single())
        .max_open(1)
        .build()
        .await
        .unwrap();
    let mut observer = server.observer().await;

    let mut conn = pool.get().await.unwrap();
    let id = client_id(&mut conn).await;
    assert_eq!(field(&client_info(&mut conn).await, "db"), "3");
    let _: () = ::redis::cmd("SELECT")
        .arg(5)
        .query_async(&mut *conn)
        .await
        .unwrap();
    let _: () = ::redis::cmd("WATCH")
        .arg("w")
        .query_async(&mut *conn)
        .await
        .unwrap();
    let _: () = ::redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("borrower-1")
        .query_async(&mut *conn)
        .await
        .unwrap();
    let _: ::redis::Value = ::redis::cmd("SUBSCRIBE")
        .arg("news")
        .query_async(&mut *conn)
        .await
        .unwrap();
    let info = client_info_of(&mut observer, id).await;
    assert_eq!(
        (field(&info, "db"), field(&info, "sub")),
        ("5", "1"),
        "{info}"
    );
    drop(conn);

    // The one connection again, reset before this borrower got it.
    let mut conn = timeout(BOUND, pool.get()).await.unwrap().unwrap();
    assert_eq!(client_id(&mut conn).await, id);
    let info = client_info(&mut conn).await;
    assert_eq!(
        (
            field(&info, "db"),
            field(&info, "sub"),
            field(&info, "name")
        ),
        ("3", "0", ""),
        "{info}"
    );
    let numsub: (String, i64) = ::redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("news")
        .query_async(&mut *conn)
        .await
        .unwrap();
    assert_eq!(numsub.1, 0);
    // No WATCH left: a change to `w` does not abort this transaction.
    let _: () = observer.set("w", 1).await.unwrap();
    let done: Option<(i64,)> = ::redis::pipe()
        .atomic()
        .incr("w", 1)
        .query_async(&mut *conn)
        .await
        .unwrap();
    assert!(done.is_some(), "the old WATCH survived the reset");
    assert_eq!(pool.state().counters.recycles, 1);
}

async fn client_info_of(observer: &mut MultiplexedConnection, id: i64) -> String {
    let list: String = ::redis::cmd("CLIENT")
        .arg("LIST")
        .arg("ID")
        .arg(id)
        .query_async(observer)
        .await
        .unwrap();
    list.trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_logs_in_again_with_resp3_and_password() {
    let Some(server) = RedisServer::with_args(&["--requirepass", "s3cret"]) else {
        return;
    };
    let url = format!(
        "redis://:s3cret@127.0.0.1:{}/2?protocol=resp3",
        server.port()
    );
    let manager = RedisManager::from_url(&url).unwrap().exclusive();
    assert!(!format!("{manager:?}").contains("s3cret"), "{manager:?}");
    let pool = Pool::builder(manager.single())
        .max_open(1)
        .build()
        .await
        .unwrap();
    assert!(!format!("{pool:?}").contains("s3cret"));
    for round in 0..3 {
        let mut conn = timeout(BOUND, pool.get()).await.unwrap().unwrap();
        let info = client_info(&mut conn).await;
        assert_eq!(
            (field(&info, "db"), field(&info, "resp")),
            ("2", "3"),
            "{info}"
        );
        conn.set::<_, _, ()>("round", round).await.unwrap();
        assert!(!format!("{conn:?}").contains("s3cret"));
    }
    assert_eq!(pool.state().counters.dials, 1);
    assert_eq!(pool.state().counters.recycle_failures, 0);

    // A wrong password fails the dial with the server's words.
    let wrong = format!("redis://:nope@127.0.0.1:{}", server.port());
    let pool = Pool::builder(wrong.parse::<RedisManager>().unwrap().single())
        .build()
        .await
        .unwrap();
    let err = pool.get().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("authentication failed") && !text.contains("nope"),
        "{text}"
    );
}

#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_verifies_the_certificate() {
    let ca = Ca::new("redis test CA");
    let (cert, key) = ca.leaf_pem(Leaf::Good);
    let Some(server) = RedisServer::tls(&cert, &key, &ca.pem) else {
        return;
    };
    let url = format!("rediss://localhost:{}/1", server.port());

    let manager = RedisManager::from_url(&url)
        .unwrap()
        .tls(TlsConfig::private_ca(&ca.pem).unwrap());
    assert!(manager.is_tls());
    let pool = Pool::builder(manager.single()).build().await.unwrap();
    let mut conn = pool.get().await.unwrap();
    conn.set::<_, _, ()>("over", "tls").await.unwrap();
    assert_eq!(conn.get::<_, String>("over").await.unwrap(), "tls");

    // Mozilla's roots do not know the test CA: the dial fails, saying why.
    let pool = Pool::builder(RedisManager::from_url(&url).unwrap().single())
        .build()
        .await
        .unwrap();
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, connpool::Error::Connect(_)));
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    // Certificate checks cannot be turned off.
    let insecure = RedisManager::from_url(&format!("{url}#insecure")).unwrap_err();
    assert!(
        insecure.to_string().contains("cannot be turned off"),
        "{insecure}"
    );
}

/// A dead server's backoff error names the key in its `Display` form
/// (`host:port/db`), not its `Debug`.
#[tokio::test]
async fn a_backoff_error_names_the_key_as_it_reads() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let manager: RedisManager = format!("redis://127.0.0.1:{port}/3").parse().unwrap();
    let key = manager.key();
    let pool = Pool::builder(manager).build().await.unwrap();
    let first = pool.get_for(&key).await.unwrap_err();
    assert!(matches!(first, connpool::Error::Connect(_)), "{first:?}");
    let again = pool.get_for(&key).await.unwrap_err();
    let text = again.to_string();
    assert!(
        matches!(again, connpool::Error::Backoff { .. }),
        "{again:?}"
    );
    assert!(
        text.contains(&format!("dials of 127.0.0.1:{port}/3 are backing off")),
        "{text}"
    );
    assert!(!text.contains("RedisKey"), "{text}");
}

#[test]
fn urls_and_debug_keep_the_password() {
    let manager: RedisManager = "redis://app:hunter2@cache.internal:6380/4".parse().unwrap();
    let key = manager.key();
    assert_eq!(
        (key.host.as_str(), key.port, key.db, key.user.as_deref()),
        ("cache.internal", 6380, 4, Some("app"))
    );
    assert_eq!(key.to_string(), "app@cache.internal:6380/4");
    assert!(!format!("{manager:?}").contains("hunter2"));
    let manager = manager.password_for("reports", "swordfish");
    assert!(!format!("{manager:?}").contains("swordfish"));
    for bad in ["http://x", "unix:///tmp/redis.sock", "redis://x/notanumber"] {
        let err = bad.parse::<RedisManager>().unwrap_err();
        assert!(err.to_string().starts_with("invalid Redis URL"), "{err}");
    }
}
