//! A TCP server killed and started again on its port, as a client sees it
//! (every connection reset, and every new one too while it is down: a
//! `FaultProxy` in front of the in-process echo server), with each call
//! under its own deadline: while it is down every call ends within its
//! deadline with an error; once it is back, calls succeed again within 3 s,
//! and none after the first success fails (a connection reset while idle
//! in the pool is never lent).
//!
//! Real time: the server is down for a fixed 500 ms (a fault has to be on
//! for a while); the waits for an outcome are bounded polls.

use std::io;
use std::time::{Duration, Instant};

use connpool::managers::tcp::{Destination, TcpManager};
use connpool::{Pool, Pooled};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::echo_server;
use crate::support::fault::{Fault, FaultProxy};

/// Each call's deadline, checkout included.
const DEADLINE: Duration = Duration::from_secs(2);
/// Time past a deadline within which a call must have ended.
const SLACK: Duration = Duration::from_millis(500);

/// One echo round trip under [`DEADLINE`]; a connection that failed it is
/// marked broken (never lent again).
async fn call(pool: &Pool<TcpManager>, dest: &Destination) -> io::Result<()> {
    let exchange = async {
        let mut conn = pool.get_for(dest).await.map_err(io::Error::other)?;
        let done = async {
            conn.write_all(b"hello\n").await?;
            let mut back = [0; 6];
            conn.read_exact(&mut back).await?;
            assert_eq!(&back, b"hello\n");
            Ok::<_, io::Error>(())
        }
        .await;
        if done.is_err() {
            Pooled::mark_broken(&mut conn);
        }
        done
    };
    tokio::time::timeout(DEADLINE, exchange)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted() {
    let (server, _) = echo_server().await;
    let proxy = FaultProxy::start(server.addr).await;
    let dest = Destination::from(proxy.addr);
    let pool = Pool::builder(TcpManager::new())
        .checkout_timeout(DEADLINE)
        .build()
        .await
        .unwrap();
    let warm = (0..8).map(|_| call(&pool, &dest));
    for got in futures_util::future::join_all(warm).await {
        got.unwrap();
    }
    assert_eq!(pool.state().idle, 8);

    proxy.set(Fault::Reset);
    let down = Instant::now();
    let mut failed = 0;
    while down.elapsed() < Duration::from_millis(500) {
        let start = Instant::now();
        assert!(
            call(&pool, &dest).await.is_err(),
            "a call answered while down"
        );
        assert!(start.elapsed() < DEADLINE + SLACK, "{:?}", start.elapsed());
        failed += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failed > 0);

    proxy.clear();
    let back = Instant::now();
    while let Err(e) = call(&pool, &dest).await {
        assert!(
            back.elapsed() < Duration::from_secs(3),
            "no call served within 3 s of the restart: {e}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = back.elapsed();
    let after = (0..64).map(|_| call(&pool, &dest));
    for got in futures_util::future::join_all(after).await {
        got.unwrap();
    }
    eprintln!("{failed} calls failed while down; the first served {first:?} after the restart");
    pool.close().await;
}
