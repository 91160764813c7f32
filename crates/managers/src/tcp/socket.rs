//! [`SocketOptions`]: what every dial sets on its TCP socket, written once
//! for the TCP manager's dial (which every other manager but PostgreSQL
//! dials through) and PostgreSQL's (which takes its values from the
//! tokio-postgres configuration).

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

/// The options a dial sets on a new TCP socket.
#[derive(Debug, Clone)]
pub(crate) struct SocketOptions {
    /// `TCP_NODELAY`.
    pub(crate) nodelay: bool,
    /// Kernel keepalive (`SO_KEEPALIVE` and its timers), if on.
    pub(crate) keepalive: Option<TcpKeepalive>,
    /// `TCP_USER_TIMEOUT` (Linux, Android, Fuchsia): how long written data
    /// may stay unacknowledged before the connection fails, so a dead peer
    /// is found under a request in flight, where keepalive never probes.
    pub(crate) user_timeout: Option<Duration>,
}

impl SocketOptions {
    /// Sets them on `stream`.
    pub(crate) fn apply(&self, stream: &TcpStream) -> io::Result<()> {
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
