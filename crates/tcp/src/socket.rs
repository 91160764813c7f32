//! What every dial does with its TCP socket, written once for the TCP
//! manager's dial (which every other manager but PostgreSQL dials through)
//! and PostgreSQL's (which takes its values from the tokio-postgres
//! configuration): [`connect`], and the [`SocketOptions`] it sets.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long a connect attempt waits for the answer to its SYN before
/// another attempt starts beside it.
const SYN_RETRY: Duration = Duration::from_millis(500);
/// Attempts in flight at most (a dial is bounded by its caller's timeout).
const MAX_ATTEMPTS: usize = 8;

type Attempt = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// Connects to `addr`. While no answer has come, a fresh attempt starts
/// beside the others every 500 ms (up to 8 at once): the first to connect
/// wins and the others are dropped, and the first error (a refusal) ends
/// the dial. A SYN lost to a partition is sent again by the kernel only
/// 1, 3, 7, 15… s after the first, so a dial that began during a partition
/// would otherwise wait seconds past its heal; this one is answered
/// within 500 ms of it.
pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let attempt = || -> Attempt { Box::pin(TcpStream::connect(addr)) };
    let mut attempts = vec![attempt()];
    let mut next = Box::pin(tokio::time::sleep(SYN_RETRY));
    std::future::poll_fn(|cx| {
        for a in &mut attempts {
            if let Poll::Ready(done) = a.as_mut().poll(cx) {
                return Poll::Ready(done);
            }
        }
        while attempts.len() < MAX_ATTEMPTS && next.as_mut().poll(cx).is_ready() {
            let mut fresh = attempt();
            if let Poll::Ready(done) = fresh.as_mut().poll(cx) {
                return Poll::Ready(done);
            }
            attempts.push(fresh);
            next.as_mut().reset(Instant::now() + SYN_RETRY);
        }
        Poll::Pending
    })
    .await
}

/// The options a dial sets on a new TCP socket.
#[derive(Debug, Clone)]
pub struct SocketOptions {
    /// `TCP_NODELAY`.
    pub nodelay: bool,
    /// Kernel keepalive (`SO_KEEPALIVE` and its timers), if on.
    pub keepalive: Option<TcpKeepalive>,
    /// `TCP_USER_TIMEOUT` (Linux, Android, Fuchsia): how long written data
    /// may stay unacknowledged before the connection fails, so a dead peer
    /// is found under a request in flight, where keepalive never probes.
    pub user_timeout: Option<Duration>,
}

impl SocketOptions {
    /// Sets them on `stream`.
    pub fn apply(&self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(self.nodelay)?;
        let sock = SockRef::from(stream);
        if let Some(keepalive) = &self.keepalive {
            sock.set_tcp_keepalive(keepalive)?;
        }
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        if let Some(timeout) = self.user_timeout {
            sock.set_tcp_user_timeout(Some(timeout))?;
        }
        Ok(())
    }
}
