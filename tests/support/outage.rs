//! One server outage as a client lives it, for the restart tests of every
//! manager: the server goes down (`down`), calls go on for a fixed 500 ms
//! (a fault has to be on for a while), it comes back (`up`), and calls go
//! on until one is served. Each call carries its own deadline (the
//! caller's `call` sets it, through the API its protocol has).
//!
//! What it asserts: while down, every call fails, and ends within its
//! deadline (plus 500 ms of slack); once up, a call is served within 3 s;
//! after that first success, 64 concurrent calls are all served (no
//! connection from before the outage is lent). Real time: the waits for
//! an outcome are bounded polls, 20 ms apart.

use std::fmt::Display;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use connpool::{Manager, Pool};

use super::fault::{Fault, FaultProxy};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long the server stays down.
const DOWN: Duration = Duration::from_millis(500);
/// Time past a deadline within which a call must have ended.
const SLACK: Duration = Duration::from_millis(500);
/// Within this of the server's return, a call must be served.
const BACK_WITHIN: Duration = Duration::from_secs(3);

/// What one outage cost the client.
#[derive(Debug)]
pub struct Outage {
    /// Calls that failed while the server was down (each within its deadline).
    pub failed_while_down: usize,
    /// From `up` to the first call served.
    pub first_success: Duration,
}

/// Runs one outage: see the module docs. `call` makes one call under
/// `deadline` and says how it went; `down` and `up` stop and start the
/// server (they may block: they run on the test's thread).
pub async fn outage<C, F, E>(
    what: &str,
    deadline: Duration,
    call: C,
    down: impl FnOnce(),
    up: impl FnOnce(),
) -> Outage
where
    C: Fn() -> F,
    F: Future<Output = Result<(), E>>,
    E: Display,
{
    down();
    let since = Instant::now();
    let mut failed_while_down = 0;
    while since.elapsed() < DOWN {
        let start = Instant::now();
        assert!(call().await.is_err(), "{what}: a call answered while down");
        let took = start.elapsed();
        assert!(
            took < deadline + SLACK,
            "{what}: a call ended {took:?} after it began, its deadline {deadline:?}"
        );
        failed_while_down += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failed_while_down > 0);

    up();
    let back = Instant::now();
    while let Err(e) = call().await {
        assert!(
            back.elapsed() < BACK_WITHIN,
            "{what}: no call served within {BACK_WITHIN:?} of the restart: {e}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_success = back.elapsed();
    let after = futures_util::future::join_all((0..64).map(|_| call())).await;
    for (i, got) in after.into_iter().enumerate() {
        if let Err(e) = got {
            panic!("{what}: call {i} after the first success failed: {e}");
        }
    }
    let outage = Outage { failed_while_down, first_success };
    eprintln!("{what}: {outage:?}");
    outage
}

/// [`outage`] of the server behind `proxy`: down is the proxy's `fault`
/// (`Reset`: killed; `Freeze`: frozen), up is the proxy passing traffic
/// again.
pub async fn behind<C, F, E>(
    what: &str,
    deadline: Duration,
    proxy: &FaultProxy,
    fault: Fault,
    call: C,
) -> Outage
where
    C: Fn() -> F,
    F: Future<Output = Result<(), E>>,
    E: Display,
{
    outage(what, deadline, call, || proxy.set(fault), || proxy.clear()).await
}

/// Echo calls made so far: each call's message is its number, so a reply
/// meant for an earlier call is told apart.
static ECHOES: AtomicU64 = AtomicU64::new(0);

/// One call to an echo server for [`outage`]: a message of its own (its
/// number), written and read back through the pool's guard under
/// `deadline`, checkout included, nothing marked broken by hand (a
/// connection watching its own I/O retires itself when a read is cut short).
/// A reply that is not this call's own fails the test.
pub async fn echo_own<M>(pool: &Pool<M>, key: &M::Key, deadline: Duration) -> io::Result<()>
where
    M: Manager,
    M::Connection: AsyncRead + AsyncWrite + Unpin,
    M::Error: std::error::Error + Send + Sync + 'static,
{
    let message = format!("{:016}\n", ECHOES.fetch_add(1, Ordering::Relaxed));
    let exchange = async {
        let mut conn = pool.get_for(key).await.map_err(io::Error::other)?;
        conn.write_all(message.as_bytes()).await?;
        let mut back = vec![0; message.len()];
        conn.read_exact(&mut back).await?;
        assert_eq!(
            String::from_utf8_lossy(&back),
            message,
            "a reply meant for another call"
        );
        Ok::<_, io::Error>(())
    };
    tokio::time::timeout(deadline, exchange)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}
