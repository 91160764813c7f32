//! The application-level ping: the [`Ping`] trait, and the two the
//! manager builds in (none, and one fixed exchange).

use std::io;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::TcpConn;

/// The application-level ping of the protocol spoken over the stream: one
/// round trip that proves the peer still answers.
///
/// Used by the pool's health check (before lending an idle connection) and
/// background keepalive, on the connection (over TLS when it has it). It
/// is idle when the ping is called (nothing unread). It may be dropped at any await (timeout, getter gone): the
/// [`TcpConn`] then reports itself broken and is closed, so an
/// implementation needs no cleanup.
///
/// ```
/// use connpool::async_trait;
/// use connpool::managers::tcp::{Ping, TcpConn};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// /// A binary protocol: opcode 0x01 is a ping, answered by a 0x02 byte.
/// struct OpcodePing;
///
/// #[async_trait]
/// impl Ping for OpcodePing {
///     async fn ping(&self, conn: &mut TcpConn) -> std::io::Result<()> {
///         conn.write_all(&[0x01]).await?;
///         match conn.read_u8().await? {
///             0x02 => Ok(()),
///             other => Err(std::io::Error::new(
///                 std::io::ErrorKind::InvalidData,
///                 format!("unexpected reply {other:#x}"),
///             )),
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait Ping: Send + Sync + 'static {
    /// Does one round trip on `stream`; an error (or never finishing) means
    /// the connection is not healthy.
    async fn ping(&self, conn: &mut TcpConn) -> io::Result<()>;
}

/// No application-level ping: the manager's ping is only the local,
/// non-blocking check that the peer has not closed the connection (no
/// traffic). Health checks and keepalive then find peers that closed or
/// reset, not peers that went silent (kernel keepalive finds those, slowly).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NoPing;

#[async_trait]
impl Ping for NoPing {
    async fn ping(&self, _conn: &mut TcpConn) -> io::Result<()> {
        Ok(())
    }
}

/// A fixed request / reply ping: writes `request`, reads exactly
/// `expect.len()` bytes and checks they are `expect`
/// ([`TcpManager::line_ping`](super::TcpManager::line_ping)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinePing {
    request: Vec<u8>,
    expect: Vec<u8>,
}

impl LinePing {
    /// A ping that writes `request` and expects exactly `expect` back.
    pub(crate) fn new(request: impl Into<Vec<u8>>, expect: impl Into<Vec<u8>>) -> Self {
        Self {
            request: request.into(),
            expect: expect.into(),
        }
    }
}

#[async_trait]
impl Ping for LinePing {
    async fn ping(&self, conn: &mut TcpConn) -> io::Result<()> {
        conn.write_all(&self.request).await?;
        let mut reply = vec![0; self.expect.len()];
        conn.read_exact(&mut reply).await?;
        if reply == self.expect {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "ping reply {:?}, expected {:?}",
                    String::from_utf8_lossy(&reply),
                    String::from_utf8_lossy(&self.expect)
                ),
            ))
        }
    }
}
