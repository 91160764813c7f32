//! The application-level ping: what [`TcpManager::with_ping`] takes, and
//! the fixed exchange [`TcpManager::line_ping`] builds.
//!
//! [`TcpManager::with_ping`]: super::TcpManager::with_ping
//! [`TcpManager::line_ping`]: super::TcpManager::line_ping

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::TcpConn;

/// A ping's future, borrowing the connection it runs on.
pub(crate) type PingFuture<'a> = Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'a>>;

/// The application-level ping of the protocol spoken over the stream: one
/// round trip that proves the peer still answers. `None` in the manager:
/// none, the ping is only the local check that the peer has not closed.
pub(crate) type PingFn = Arc<dyn for<'a> Fn(&'a mut TcpConn) -> PingFuture<'a> + Send + Sync>;

/// A ping of one fixed exchange: writes `request`, reads exactly
/// `expect.len()` bytes and checks they are `expect`.
pub(crate) fn line_ping(request: Vec<u8>, expect: Vec<u8>) -> PingFn {
    let exchange = Arc::new((request, expect));
    Arc::new(move |conn: &mut TcpConn| {
        let exchange = Arc::clone(&exchange);
        Box::pin(async move {
            let (request, expect) = &*exchange;
            conn.write_all(request).await?;
            let mut reply = vec![0; expect.len()];
            conn.read_exact(&mut reply).await?;
            if reply == *expect {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "ping reply {:?}, expected {:?}",
                        String::from_utf8_lossy(&reply),
                        String::from_utf8_lossy(expect)
                    ),
                ))
            }
        })
    })
}
