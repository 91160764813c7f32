//! A TCP server killed and started again on its port, as a client sees it
//! (every connection reset, and every new one too while it is down: a
//! `FaultProxy` in front of the in-process echo server), and frozen and
//! thawed (the proxy reads nothing while frozen: the kernel accepts and
//! acknowledges, nothing answers, and at the thaw the late replies come),
//! with each call under its own deadline, through `support::outage` (what
//! it asserts is there): a connection reset while idle in the pool is never
//! lent, and no borrower reads a reply meant for another.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::tcp::{Destination, TcpManager};

use super::echo_server;
use crate::support::fault::{Fault, FaultProxy};
use crate::support::outage::{behind, echo_own};

/// An outage of the echo server behind a `FaultProxy` (`fault` while
/// down), each call an [`echo_own`] under `deadline`, with eight
/// connections idle in the pool when it begins.
async fn through(what: &str, fault: Fault, deadline: Duration) {
    let (server, _) = echo_server().await;
    let proxy = FaultProxy::start(server.addr).await;
    let dest = Destination::from(proxy.addr);
    let pool = Pool::builder(TcpManager::new())
        .checkout_timeout(deadline)
        .build()
        .await
        .unwrap();
    // Eight connections, held at once (eight calls at once may finish
    // one before another starts and share), then idle in the pool.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(pool.get_for(&dest).await.unwrap());
    }
    drop(held);
    echo_own(&pool, &dest, deadline).await.unwrap();
    assert_eq!(pool.state().idle, 8);
    behind(what, deadline, &proxy, fault, || {
        echo_own(&pool, &dest, deadline)
    })
    .await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted() {
    through("TCP", Fault::Reset, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_frozen_and_thawed() {
    through("TCP frozen", Fault::Freeze, Duration::from_millis(300)).await;
}
