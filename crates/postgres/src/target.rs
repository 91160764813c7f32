//! [`Target`]: where a session was dialed, and its cancel request sent
//! there.

use tokio::net::TcpStream;
use tokio_postgres::{CancelToken, NoTls};

use super::PgError;

/// Where a session was dialed: tokio-postgres does not know it for a
/// socket it did not open, so its `CancelToken::cancel_query` cannot reach
/// the server; [`Target::cancel`] can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    Tcp(std::net::SocketAddr),
    #[cfg(unix)]
    Unix(std::path::PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(addr) => addr.fmt(f),
            #[cfg(unix)]
            Target::Unix(path) => path.display().fmt(f),
        }
    }
}

impl Target {
    /// Sends `token`'s cancel request (in plaintext, as the session was
    /// dialed) on a new socket to the target.
    pub(super) async fn cancel(&self, token: CancelToken) -> Result<(), PgError> {
        match self {
            Target::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await.map_err(PgError::other)?;
                Ok(token.cancel_query_raw(stream, NoTls).await?)
            }
            #[cfg(unix)]
            Target::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(PgError::other)?;
                Ok(token.cancel_query_raw(stream, NoTls).await?)
            }
        }
    }
}
