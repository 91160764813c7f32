//! The TCP target: the in-process line echo server.

use std::net::SocketAddr;

use connpool::async_trait;
use connpool::managers::tcp::{Destination, TcpConn, TcpManager};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::echo::EchoServer;

use super::Target;

/// The in-process line echo server.
pub(super) struct Echo(pub(super) EchoServer);

#[async_trait]
impl Target for Echo {
    type M = TcpManager;
    type Key = Destination;

    fn name(&self) -> &'static str {
        "tcp"
    }

    fn upstream(&self) -> SocketAddr {
        self.0.addr
    }

    fn manager(&self, addr: SocketAddr) -> (Self::M, Destination) {
        (
            TcpManager::new().line_ping("ping\n", "pong\n"),
            Destination::from(addr),
        )
    }

    async fn op(conn: &mut TcpConn, n: u64) -> Result<(), String> {
        let line = format!("request {n}\n");
        conn.write_all(line.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut back = String::new();
        BufReader::new(&mut *conn)
            .read_line(&mut back)
            .await
            .map_err(|e| e.to_string())?;
        if back == line {
            Ok(())
        } else {
            Err(format!("sent {line:?}, got {back:?}"))
        }
    }

    fn conn_id(conn: &TcpConn) -> Option<SocketAddr> {
        Some(conn.local_addr())
    }
}
