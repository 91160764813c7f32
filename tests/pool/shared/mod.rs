//! Shared lending: connections that several borrowers hold at once (the
//! manager answers `Lending::shared(n)`), with the mock manager and the
//! paused clock.

use std::collections::HashMap;

use connpool::{Pool, Pooled};

use crate::support::{Mock, join, ok, settle, spawn_get};

mod health;
mod lifecycle;
mod placement;

type M = Mock<()>;

/// A single-destination mock whose connections take `limit` borrowers.
/// (Until a key's first connection is up the pool cannot know it is
/// shared: tests that want one connection for a burst use `max_connecting(1)`.)
fn shared_mock(limit: usize) -> M {
    let mock = M::new();
    mock.share(limit);
    mock
}

/// Connection id → handles held.
fn loads(held: &[Pooled<M>]) -> HashMap<u64, usize> {
    let mut loads = HashMap::new();
    for c in held {
        *loads.entry(c.id).or_default() += 1;
    }
    loads
}

/// `n` getters, all served.
async fn get_n(pool: &Pool<M>, n: usize) -> Vec<Pooled<'_, M>> {
    let tasks: Vec<_> = (0..n).map(|_| spawn_get(pool, ())).collect();
    settle().await;
    let mut held = Vec::new();
    for t in tasks {
        held.push(ok(join(t).await));
    }
    held
}
