//! A TCP server killed and started again on its port, as a client sees it
//! (every connection reset, and every new one too while it is down: a
//! `FaultProxy` in front of the in-process echo server), with each call
//! under its own deadline, through `support::outage` (what it asserts is
//! there): a connection reset while idle in the pool is never lent.

use std::io;
use std::time::Duration;

use connpool::managers::tcp::{Destination, TcpManager};
use connpool::{Pool, Pooled};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::echo_server;
use crate::support::fault::{Fault, FaultProxy};
use crate::support::outage::outage;

/// Each call's deadline, checkout included.
const DEADLINE: Duration = Duration::from_secs(2);

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
    // Eight connections, held at once (eight calls at once may finish
    // one before another starts and share), then idle in the pool.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(pool.get_for(&dest).await.unwrap());
    }
    drop(held);
    call(&pool, &dest).await.unwrap();
    assert_eq!(pool.state().idle, 8);
    outage(
        "TCP",
        DEADLINE,
        || call(&pool, &dest),
        || proxy.set(Fault::Reset),
        || proxy.clear(),
    )
    .await;
    pool.close().await;
}
