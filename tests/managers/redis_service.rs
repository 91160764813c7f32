//! `RedisService`: redis-rs commands on the pool, each with one deadline
//! from the checkout to the reply, against a throwaway redis-server: many
//! tasks on one shared connection, and a frozen server (`SIGSTOP`) under
//! the defaults plus one deadline: every call ends by its deadline, saying
//! where it was, and the first after the thaw is served.
//!
//! `CI=true` makes a missing `redis-server` a failure.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::redis::redis::{self, AsyncCommands};
use connpool::managers::redis::{RedisManager, RedisService, ServiceError};
use tokio::time::{Instant, timeout};

use crate::support::redis::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_and_pipelines_through_the_service() {
    let Some(server) = RedisServer::new() else {
        return;
    };
    let manager: RedisManager = server.url("").parse().unwrap();
    let key = manager.key();
    let pool = Pool::builder(manager).build().await.unwrap();
    let service = RedisService::new(pool.clone(), key).timeout(Duration::from_secs(2));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let mut redis = service.clone();
        tasks.spawn(async move {
            for _ in 0..50 {
                let _: i64 = redis.incr("n", 1).await.unwrap();
            }
        });
    }
    tasks.join_all().await;
    let mut redis = service.clone();
    assert_eq!(redis.get::<_, i64>("n").await.unwrap(), 1600);
    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .incr("a", 1)
        .incr("b", 2)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!((a, b), (1, 2));
    let state = pool.state();
    // Shared: the 32 tasks' commands were pipelined on few connections.
    assert!(state.counters.dials <= 2, "{state:?}");
    assert_eq!(state.lent, 0, "every call gave its connection back");
    pool.close().await;
}

/// Each fault test's deadline.
const DEADLINE: Duration = Duration::from_secs(1);

/// A pool with the defaults, a service over it with one [`DEADLINE`], and
/// `k` set to 1.
async fn one_deadline(server: &RedisServer) -> (Pool<RedisManager>, RedisService) {
    let manager: RedisManager = server.url("").parse().unwrap();
    let key = manager.key();
    let pool = Pool::builder(manager).build().await.unwrap();
    let service = RedisService::new(pool.clone(), key).timeout(DEADLINE);
    let _: () = service.clone().set("k", 1).await.unwrap();
    (pool, service)
}

// The pool's defaults, one 1 s deadline on the service; the server frozen
// for 3 s under 16 callers, then thawed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_every_call_ends_by_its_deadline() {
    let Some(server) = RedisServer::new() else {
        return;
    };
    let (pool, service) = one_deadline(&server).await;

    server.signal("STOP");
    let frozen = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let mut redis = service.clone();
        tasks.spawn(async move {
            let mut outcomes = Vec::new();
            while frozen.elapsed() < Duration::from_secs(3) {
                let call = Instant::now();
                let got = timeout(DEADLINE * 3, redis.get::<_, i64>("k"))
                    .await
                    .expect("a call outlived its deadline threefold");
                outcomes.push((call.elapsed(), got.map_err(|e| e.to_string())));
            }
            outcomes
        });
    }
    let mut longest = Duration::ZERO;
    let (mut checkout, mut reply, mut lost) = (0, 0, 0);
    for outcomes in tasks.join_all().await {
        for (took, got) in outcomes {
            longest = longest.max(took);
            let err = got.expect_err("no reply from a frozen server");
            if err.contains("connection to 127.0.0.1") {
                // In flight on the connection when its third reply in a
                // row was missed: it is taken for dead, and its calls end.
                assert!(
                    err.contains("lost: no reply to 3 commands in a row"),
                    "{err}"
                );
                lost += 1;
                continue;
            }
            assert!(
                err.contains("timed out: no reply within its deadline of 1s"),
                "{err}"
            );
            if err.contains("(waiting for a connection)") {
                checkout += 1;
            } else {
                assert!(err.contains("(waiting for the reply)"), "{err}");
                reply += 1;
            }
        }
    }
    eprintln!(
        "frozen: longest call {longest:?}; ended waiting for a connection {checkout}, \
         for the reply {reply}, with the connection taken for dead {lost}"
    );
    // The deadline, and room for a busy machine.
    assert!(
        longest < DEADLINE + Duration::from_millis(400),
        "{longest:?}"
    );
    assert!(reply > 0 && checkout > 0, "{reply} {checkout}");
    // Counted where operators look, by where each call was.
    let counters = pool.state().counters;
    assert_eq!(counters.reply_timeouts, reply, "{counters:?}");
    assert_eq!(counters.timeouts, checkout, "{counters:?}");

    server.signal("CONT");
    let thawed = Instant::now();
    let mut redis = service.clone();
    loop {
        match redis.get::<_, i64>("k").await {
            Ok(v) => {
                assert_eq!(v, 1);
                break;
            }
            Err(e) => assert!(thawed.elapsed() < Duration::from_secs(5), "{e}"),
        }
    }
    eprintln!("served again {:?} after the thaw", thawed.elapsed());
    pool.close().await;
}

// The server killed under callers and started again on its port, with the
// pool's defaults and one deadline: each call ends by it (at once while
// the key backs off), and the first after the restart is served soon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_every_call_ends_by_its_deadline() {
    let Some(mut server) = RedisServer::new() else {
        return;
    };
    let (pool, service) = one_deadline(&server).await;

    server.kill();
    let killed = Instant::now();
    let mut redis = service.clone();
    let mut longest = Duration::ZERO;
    while killed.elapsed() < Duration::from_secs(1) {
        let call = Instant::now();
        let got = timeout(DEADLINE * 3, redis.get::<_, i64>("k"))
            .await
            .expect("a call outlived its deadline threefold");
        longest = longest.max(call.elapsed());
        assert!(got.is_err(), "a reply from a killed server");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        longest < DEADLINE + Duration::from_millis(400),
        "{longest:?}"
    );

    server.start();
    let back = Instant::now();
    loop {
        match redis.get::<_, Option<i64>>("k").await {
            // (The killed server kept nothing: no save.)
            Ok(_) | Err(_) if back.elapsed() > Duration::from_secs(5) => panic!("not served again"),
            Ok(_) => break,
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    eprintln!(
        "restart: longest call {longest:?}; served again {:?} after the start",
        back.elapsed()
    );
    pool.close().await;
}

/// The same shape as `PgService`: a service over a `single()` pool, its
/// key `()`. A clone bound to one instant shares it among its commands:
/// a cache miss's `GET` and `SET` under one budget. Under a 1 s budget,
/// `BLPOP … 0.6` (a miss after 600 ms) is served and a second one is cut
/// at the budget's end (each would fit a 1 s deadline of its own),
/// counted in `reply_timeouts`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_pools_service_and_a_budget_shared_by_its_commands() {
    let Some(server) = RedisServer::new() else {
        return;
    };
    const BUDGET: Duration = Duration::from_secs(1);
    let manager: RedisManager = server.url("").parse().unwrap();
    let pool = Pool::builder(manager.single()).build().await.unwrap();
    let cache = RedisService::new(pool.clone(), ()).timeout(BUDGET);

    let mut request = cache.deadline(Instant::now() + BUDGET);
    let page: Option<String> = request.get("page:/").await.unwrap();
    assert_eq!(page, None);
    let _: () = request.set("page:/", "<html>").await.unwrap();
    let page: Option<String> = cache.clone().get("page:/").await.unwrap();
    assert_eq!(page.as_deref(), Some("<html>"));

    let start = Instant::now();
    let mut request = cache.deadline(start + BUDGET);
    let missed: Option<(String, String)> = request.blpop("empty", 0.6).await.unwrap();
    assert_eq!(missed, None);
    let err = request
        .blpop::<_, Option<(String, String)>>("empty", 0.6)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("(waiting for the reply)"), "{err}");
    let took = start.elapsed();
    assert!(
        took >= BUDGET && took < BUDGET + Duration::from_millis(300),
        "{took:?}"
    );
    assert_eq!(pool.state().counters.reply_timeouts, 1);
    pool.close().await;
}

/// A call's error keeps its kind: the `ServiceError` inside the
/// `RedisError` tells a pool error (here, a closed pool) from a deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_error_tells_a_pool_error_from_a_deadline() {
    let Some(server) = RedisServer::new() else {
        return;
    };
    let manager: RedisManager = server.url("").parse().unwrap();
    let pool = Pool::builder(manager.single()).build().await.unwrap();
    let mut redis = RedisService::new(pool.clone(), ());

    // A deadline already spent: the call fails waiting for a connection.
    let mut spent = redis.deadline(Instant::now());
    let err = spent.get::<_, Option<String>>("k").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    match ServiceError::of(&err) {
        Some(ServiceError::TimedOut { waiting_for, .. }) => {
            assert_eq!(*waiting_for, "a connection")
        }
        other => panic!("{other:?} in {err}"),
    }

    pool.close().await;
    let err = redis.get::<_, Option<String>>("k").await.unwrap_err();
    match ServiceError::of(&err) {
        Some(ServiceError::NoConnection { error, .. }) => {
            assert!(matches!(**error, connpool::Error::Closed), "{error:?}")
        }
        other => panic!("{other:?} in {err}"),
    }
    assert!(
        err.to_string().contains("no connection to 127.0.0.1"),
        "{err}"
    );
}
