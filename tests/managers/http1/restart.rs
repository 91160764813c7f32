//! nginx killed (`SIGKILL`) and started again on its port, through
//! `HttpService` with a deadline: while it is down every GET ends within
//! its deadline with an error; once it is back, GETs succeed again within
//! about a probe's delay, and none after the first success fails (no
//! connection from before the restart is lent).
//!
//! Real time: the server is down for a fixed 500 ms (a fault has to be on
//! for a while); the waits for an outcome are bounded polls.

use std::time::{Duration, Instant};

use connpool::Pool;
use connpool::managers::http1::Http1Manager;

use super::{Svc, call, get};
use crate::support::nginx::Nginx;

/// The service's deadline per GET.
const DEADLINE: Duration = Duration::from_secs(2);
/// Time past a deadline within which a GET must have ended.
const SLACK: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_killed_and_restarted() {
    let Some(mut nginx) = Nginx::start("keepalive_timeout 60s;") else {
        return;
    };
    let pool = Pool::builder(Http1Manager::new())
        .max_open_per_key(8)
        .checkout_timeout(DEADLINE)
        .build()
        .await
        .unwrap();
    let svc = Svc::new(pool.clone(), nginx.addr).timeout(DEADLINE);
    // Eight connections, idle in the pool.
    let warm = (0..8).map(|_| {
        let mut svc = svc.clone();
        async move { call(&mut svc, get("/")).await }
    });
    for got in futures_util::future::join_all(warm).await {
        assert_eq!(got.unwrap(), "ok\n");
    }
    assert_eq!(pool.state().idle, 8);

    tokio::task::block_in_place(|| nginx.kill());
    let down = Instant::now();
    let mut failed = 0;
    while down.elapsed() < Duration::from_millis(500) {
        let start = Instant::now();
        let got = call(&mut svc.clone(), get("/")).await;
        assert!(got.is_err(), "a GET answered while nginx was down");
        assert!(start.elapsed() < DEADLINE + SLACK, "{:?}", start.elapsed());
        failed += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failed > 0);

    tokio::task::block_in_place(|| nginx.restart());
    let back = Instant::now();
    loop {
        match call(&mut svc.clone(), get("/")).await {
            Ok(body) => {
                assert_eq!(body, "ok\n");
                break;
            }
            Err(e) => {
                assert!(
                    back.elapsed() < Duration::from_secs(3),
                    "no GET served within 3 s of the restart: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let first = back.elapsed();
    // Every GET after the first success is served: none meets a connection
    // from before the restart.
    let after = (0..64).map(|_| {
        let mut svc = svc.clone();
        async move { call(&mut svc, get("/")).await }
    });
    for got in futures_util::future::join_all(after).await {
        assert_eq!(got.unwrap(), "ok\n");
    }
    eprintln!("{failed} GETs failed while down; the first served {first:?} after the restart");
    pool.close().await;
}
