//! The Redis manager under faults, against a throwaway redis-server of
//! each test's own: the server killed and restarted on its port under
//! traffic, `CLIENT KILL TYPE normal`, a hung server (`DEBUG SLEEP 3`).
//! Every call is bounded by the test; none may outlive its deadlines.
//!
//! `CI=true` makes a missing `redis-server` a failure.

use std::sync::Arc;
use std::time::Duration;

use ::redis::AsyncCommands;
use connpool::Pool;
use connpool::managers::redis::RedisManager;
use tokio::time::{Instant, timeout};

use super::redis::{client_id, eventually};
use crate::support::redis::{RedisServer, clients};
use crate::support::{BOUND, key_counts};

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
        // Refused, or reset for a dial the kill caught half-way: once.
        assert_eq!(err.matches("os error").count(), 1, "{err}");
        assert!(
            err.contains("Connection refused") || err.contains("Connection reset"),
            "{err}"
        );
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
    // Within a backoff step (200 ms at most) and a dial, with room for a
    // busy machine.
    assert!(first < Duration::from_secs(2), "recovered after {first:?}");
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
                end - start < Duration::from_millis(2500),
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
                let got = timeout(Duration::from_secs(3), async {
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
    assert!(longest < Duration::from_secs(2), "{longest:?}");
    assert!(most_open <= cap, "{most_open} open");
    // Everything recovered (connections that missed three replies in a row
    // were replaced).
    let mut conn = pool.get_for(&key).await.unwrap();
    assert_eq!(conn.get::<_, i64>("k").await.unwrap(), 1);
    let mut observer = server.observer().await;
    assert!(clients(&mut observer).await.len() <= cap);
}

/// A shared connection whose flow is dead (a partition the kernel cannot
/// see: nothing answers, nothing resets) while new flows pass, as after a
/// NAT or a host forgot it. Three commands in a row without a reply close
/// it to new borrowers; the next get dials a fresh connection, which
/// answers at once, instead of lending the dead one until TCP gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_connection_that_stops_answering_is_replaced_after_three_missed_replies() {
    let Some(server) = RedisServer::new() else {
        return;
    };
    let proxy = crate::support::fault::FaultProxy::start(server.addr()).await;
    let manager = RedisManager::from_url(&format!("redis://{}/0", proxy.addr))
        .unwrap()
        .response_timeout(Duration::from_millis(200));
    let key = manager.key();
    let pool = Pool::builder(manager).build().await.unwrap();
    let mut conn = pool.get_for(&key).await.unwrap();
    let _: () = conn.set("k", 1).await.unwrap();

    proxy.sever();
    for missed in 1..=3 {
        let e = conn.get::<_, i64>("k").await.unwrap_err().to_string();
        let said = match missed {
            3 => "lost: no reply to 3 commands in a row, each given 200ms",
            _ => "no reply from",
        };
        assert!(e.contains(said), "{e}");
        assert_eq!(conn.is_closed(), missed == 3, "after {missed} missed");
    }
    let why = conn.closed_because().unwrap().to_owned();
    assert!(why.contains("no reply to 3 commands in a row"), "{why}");
    drop(conn);

    let mut fresh = timeout(BOUND, pool.get_for(&key)).await.unwrap().unwrap();
    assert_eq!(fresh.get::<_, i64>("k").await.unwrap(), 1);
    assert_eq!(pool.state().counters.dials, 2);
}

/// A reply in between starts the count again: slow commands now and then
/// do not retire a connection that answers.
#[tokio::test]
async fn missed_replies_count_only_in_a_row() {
    let Some(server) = RedisServer::new() else {
        return;
    };
    let manager = RedisManager::from_url(&server.url(""))
        .unwrap()
        .response_timeout(Duration::from_millis(100));
    let key = manager.key();
    let pool = Pool::builder(manager).build().await.unwrap();
    let mut conn = pool.get_for(&key).await.unwrap();
    for _ in 0..3 {
        for _ in 0..2 {
            // The server sleeps past the response timeout: a missed reply.
            let slow: Result<(), _> = ::redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg(0.3)
                .exec_async(&mut *conn)
                .await;
            assert!(slow.is_err());
        }
        // Answered once the sleeps end (waited for): the count starts
        // again.
        conn.set_response_timeout(BOUND);
        let pong: String = ::redis::cmd("PING").query_async(&mut *conn).await.unwrap();
        conn.set_response_timeout(Duration::from_millis(100));
        assert_eq!(pong, "PONG");
        assert!(!conn.is_closed());
    }
}
