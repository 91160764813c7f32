//! The no-op manager for the other pools (bb8, deadpool, mobc, qp, r2d2),
//! for the benches that compare them with connpool in one run.

use super::NoopError;

/// Connections are `u64`s made at once; every check passes.
#[derive(Clone, Copy, Debug)]
pub struct PeerNoop;

impl bb8::ManageConnection for PeerNoop {
    type Connection = u64;
    type Error = NoopError;

    async fn connect(&self) -> Result<u64, NoopError> {
        Ok(7)
    }
    async fn is_valid(&self, _conn: &mut u64) -> Result<(), NoopError> {
        Ok(())
    }
    fn has_broken(&self, _conn: &mut u64) -> bool {
        false
    }
}

impl deadpool::managed::Manager for PeerNoop {
    type Type = u64;
    type Error = NoopError;

    async fn create(&self) -> Result<u64, NoopError> {
        Ok(7)
    }
    async fn recycle(
        &self,
        _conn: &mut u64,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<NoopError> {
        Ok(())
    }
}

#[mobc::async_trait]
impl mobc::Manager for PeerNoop {
    type Connection = u64;
    type Error = NoopError;

    async fn connect(&self) -> Result<u64, NoopError> {
        Ok(7)
    }
    async fn check(&self, conn: u64) -> Result<u64, NoopError> {
        Ok(conn)
    }
}

#[qp::async_trait]
impl qp::resource::Manage for PeerNoop {
    type Output = u64;
    type Error = NoopError;

    async fn try_create(&self) -> Result<u64, NoopError> {
        Ok(7)
    }
}

impl r2d2::ManageConnection for PeerNoop {
    type Connection = u64;
    type Error = NoopError;

    fn connect(&self) -> Result<u64, NoopError> {
        Ok(7)
    }
    fn is_valid(&self, _conn: &mut u64) -> Result<(), NoopError> {
        Ok(())
    }
    fn has_broken(&self, _conn: &mut u64) -> bool {
        false
    }
}
