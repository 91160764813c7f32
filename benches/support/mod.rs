//! What several benches share: a no-op manager, so the pool itself is what
//! is measured.
#![allow(dead_code)]

pub mod peers;

use std::sync::Arc;

use connpool::{Lending, Manager, async_trait};

/// The error of managers that never fail.
#[derive(Debug)]
pub struct NoopError;

impl std::fmt::Display for NoopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
    }
}

impl std::error::Error for NoopError {}

/// A manager whose connections are numbers (the key), made at once.
pub struct Noop;

#[async_trait]
impl Manager for Noop {
    type Key = u32;
    type Connection = u64;
    type Error = NoopError;

    async fn connect(&self, key: &u32) -> Result<u64, NoopError> {
        Ok(u64::from(*key))
    }
}

/// [`Noop`] with one key value (`()`), as a pool without keys has.
pub struct UnitNoop;

#[async_trait]
impl Manager for UnitNoop {
    type Key = ();
    type Connection = u64;
    type Error = NoopError;

    async fn connect(&self, _key: &()) -> Result<u64, NoopError> {
        Ok(7)
    }
}

/// A manager whose connections (`Arc`s, cheap to clone) are lent shared,
/// up to 100 borrowers each: the pool's cost of shared lending alone.
pub struct SharedNoop;

#[async_trait]
impl Manager for SharedNoop {
    type Key = u32;
    type Connection = Arc<u64>;
    type Error = NoopError;

    async fn connect(&self, key: &u32) -> Result<Arc<u64>, NoopError> {
        Ok(Arc::new(u64::from(*key)))
    }

    fn lending(&self, _: &Arc<u64>) -> Lending<Arc<u64>> {
        Lending::shared(100)
    }
}
