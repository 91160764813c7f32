//! The Redis manager against a throwaway redis-server of each test's own
//! (`support::redis`): shared lending and pipelining, exclusive lending and
//! the reset on return, a server killed and restarted on its port,
//! `CLIENT KILL`, a hung server (`DEBUG SLEEP`), and `rediss`.
//!
//! `CI=true` makes a missing `redis-server` a failure.

use std::sync::Arc;
use std::time::Duration;

use ::redis::AsyncCommands;
use ::redis::aio::MultiplexedConnection;
use connpool::managers::redis::{RedisConn, RedisLending, RedisManager};
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
async fn eventually<F>(what: &str, mut cond: F)
where
    F: AsyncFnMut() -> bool,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < BOUND, "{what}: not within {BOUND:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn client_id(conn: &mut RedisConn) -> i64 {
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

    let mut blocked = pool.get_for(&exclusive).await.unwrap();
    assert!(!Pooled::is_shared(&blocked));
    assert_eq!(blocked.lending(), RedisLending::Exclusive);
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
    let manager = RedisManager::from_url(&server.url(""))
        .unwrap()
        .with_lending(RedisLending::Exclusive);
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
        .with_lending(RedisLending::Exclusive);
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
    let manager = RedisManager::from_url(&url)
        .unwrap()
        .with_lending(RedisLending::Exclusive);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted_on_its_port() {
    let Some(mut server) = RedisServer::new() else {
        return;
    };
    let manager: RedisManager = server.url("").parse().unwrap();
    let key = manager.key();
    let pool = Pool::builder(manager)
        .max_open_per_key(4)
        .checkout_timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_secs(1))
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let command = |pool: Pool<RedisManager>, key| async move {
        let mut conn = pool.get_for(&key).await.map_err(|e| e.to_string())?;
        conn.incr::<_, _, i64>("n", 1)
            .await
            .map_err(|e| e.to_string())
    };
    for _ in 0..50 {
        command(pool.clone(), key.clone()).await.unwrap();
    }
    // Traffic throughout: each call's start, end and outcome.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut traffic = Vec::new();
    for _ in 0..8 {
        let (pool, key, stop) = (pool.clone(), key.clone(), Arc::clone(&stop));
        traffic.push(tokio::spawn(async move {
            let mut calls = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let start = Instant::now();
                let got = timeout(Duration::from_secs(3), command(pool.clone(), key.clone()))
                    .await
                    .expect("a call hung");
                calls.push((start, Instant::now(), got.is_ok()));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            calls
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A borrower holds a handle across the kill.
    let mut held = pool.get_for(&key).await.unwrap();

    let killed = Instant::now();
    server.kill();
    eventually("the connection seen dead", async || held.is_closed()).await;
    let err = held.get::<_, i64>("n").await.unwrap_err().to_string();
    let lost = format!("connection to 127.0.0.1:{} lost", server.port());
    assert!(err.contains(&lost), "{err}");
    drop(held);
    // While it is down: failures, each fast, naming the cause once.
    for _ in 0..5 {
        let start = Instant::now();
        let err = command(pool.clone(), key.clone()).await.unwrap_err();
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
    }

    server.start();
    let back = Instant::now();
    let mut first = None;
    while back.elapsed() < BOUND {
        match timeout(Duration::from_secs(2), command(pool.clone(), key.clone())).await {
            Ok(Ok(_)) => {
                first = Some(back.elapsed());
                break;
            }
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(_) => panic!("a command hung after the restart"),
        }
    }
    let first = first.expect("recovered");
    assert!(first < Duration::from_secs(1), "recovered after {first:?}");
    let recovered = back + first;
    // Recovered: nothing fails any more, and no dead connection is left.
    for _ in 0..100 {
        command(pool.clone(), key.clone()).await.unwrap();
    }
    // The traffic runs on for a while after the recovery.
    tokio::time::sleep_until(recovered + Duration::from_millis(600)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut before, mut after, mut down) = (0, 0, 0);
    for t in traffic {
        for (start, end, ok) in t.await.unwrap() {
            // Each call within the checkout and reply deadlines.
            assert!(
                end - start < Duration::from_millis(1600),
                "{:?}",
                end - start
            );
            if end < killed {
                assert!(ok, "a call failed before the kill");
                before += 1;
            } else if start > recovered + Duration::from_millis(200) {
                assert!(ok, "a call failed after the recovery");
                after += 1;
            } else {
                down += 1;
            }
        }
    }
    assert!(before > 0 && after > 0, "{before} before, {after} after");
    eprintln!("restart: {before} calls before the kill, {down} around the outage, {after} after");
    let mut observer = server.observer().await;
    let open = key_counts(&pool, &key).unwrap().open;
    assert_eq!(clients(&mut observer).await.len(), open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_kill_replaces_every_connection() {
    let Some(server) = RedisServer::new() else {
        return;
    };
    let manager: RedisManager = server.url("").parse().unwrap();
    let shared = manager.key();
    let exclusive = shared.clone().exclusive();
    let pool = Pool::builder(manager)
        .max_open_per_key(4)
        .build()
        .await
        .unwrap();
    let mut held = vec![pool.get_for(&shared).await.unwrap()];
    for _ in 0..3 {
        held.push(pool.get_for(&exclusive).await.unwrap());
    }
    let mut old = Vec::new();
    for conn in &mut held {
        old.push(client_id(conn).await);
    }
    let mut observer = server.observer().await;
    assert_eq!(clients(&mut observer).await.len(), 4);

    let killed: i64 = ::redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query_async(&mut observer)
        .await
        .unwrap();
    assert_eq!(killed, 4);
    for conn in &held {
        eventually("the kill seen", async || conn.is_closed()).await;
        assert_eq!(
            conn.closed_because(),
            Some("the server closed the connection")
        );
    }
    drop(held);
    assert_eq!(pool.state().open, 0, "{:?}", pool.state());

    for key in [&shared, &exclusive] {
        let mut conn = pool.get_for(key).await.unwrap();
        let id = client_id(&mut conn).await;
        assert!(!old.contains(&id));
        let _: () = ::redis::cmd("PING").query_async(&mut *conn).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_server_fails_within_deadlines_without_a_connection_storm() {
    let Some(server) = RedisServer::new() else {
        return;
    };
    let cap = 4;
    let manager = RedisManager::from_url(&server.url(""))
        .unwrap()
        .response_timeout(Duration::from_millis(300));
    let key = manager.key();
    let pool = Pool::builder(manager)
        .max_open_per_key(cap)
        .max_borrowers(4)
        .checkout_timeout(Duration::from_millis(800))
        .connect_timeout(Duration::from_millis(800))
        .build()
        .await
        .unwrap();
    {
        let mut conn = pool.get_for(&key).await.unwrap();
        let _: () = conn.set("k", 1).await.unwrap();
    }
    let mut sleeper = server.observer().await;
    let sleep = tokio::spawn(async move {
        ::redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(3)
            .exec_async(&mut sleeper)
            .await
    });
    // The sleep has begun once the server stops answering.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (pool, key) = (pool.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut longest) = (0, 0, Duration::ZERO);
            while start.elapsed() < Duration::from_millis(4500) {
                let call = Instant::now();
                let got = timeout(Duration::from_secs(2), async {
                    let mut conn = pool.get_for(&key).await.map_err(|e| e.to_string())?;
                    conn.get::<_, i64>("k").await.map_err(|e| e.to_string())
                })
                .await
                .expect("a call outlived every deadline");
                longest = longest.max(call.elapsed());
                match got {
                    Ok(_) => ok += 1,
                    Err(_) => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (ok, failed, longest)
        }));
    }
    let mut most_open = 0;
    while tasks.iter().any(|t| !t.is_finished()) {
        most_open = most_open.max(pool.state().open);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (mut ok, mut failed, mut longest) = (0, 0, Duration::ZERO);
    for t in tasks {
        let (o, f, l) = t.await.unwrap();
        (ok, failed, longest) = (ok + o, failed + f, longest.max(l));
    }
    // (The observer's own reply timeout ends its wait; the server sleeps on.)
    let _ = sleep.await.unwrap();
    let dials = pool.state().counters.dials;
    eprintln!(
        "hung server: {ok} ok, {failed} failed, longest {longest:?}, at most {most_open} open, {dials} dials"
    );
    assert!(failed > 0 && ok > 0, "{ok} ok, {failed} failed");
    // The checkout deadline plus the response timeout, and some slack.
    assert!(longest < Duration::from_millis(1500), "{longest:?}");
    assert!(most_open <= cap, "{most_open} open");
    // Everything recovered: the same connections serve again.
    let mut conn = pool.get_for(&key).await.unwrap();
    assert_eq!(conn.get::<_, i64>("k").await.unwrap(), 1);
    let mut observer = server.observer().await;
    assert!(clients(&mut observer).await.len() <= cap);
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
        .tls(TlsConfig::from_client_config(ca.client()));
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
