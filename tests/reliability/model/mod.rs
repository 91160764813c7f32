//! Model-based property tests of the pool: random sequences of operations
//! (gets, cancellations, returns, broken returns, detaches, scripted dial
//! failures, gated dials opened or failed later, clock advances, settles) on a
//! small pool of `Mock<u8>` with 3 keys, tight caps and a generated subset of
//! the lifecycle features (idle timeout, max uses, lifetime, keepalive, health
//! check, backoff, max_connecting). After every step the pool's snapshots are
//! checked against what the test holds (see `check_step` / `check_settled`),
//! and at the end the pool is closed and every connection the mock made must
//! have been closed exactly once or detached.
//!
//! Each case runs on a fresh current-thread runtime with the clock paused, and
//! seeds `fastrand` (lifetime/keepalive/backoff jitter) so a case replays
//! identically while proptest shrinks it.

use std::collections::HashSet;
use std::time::Duration;

use connpool::{Error, Pooled};
use proptest::prelude::*;
use tokio::task::JoinHandle;

use crate::support::{Gate, Got, Mock};

mod fifo;
mod invariants;
mod random_ops;

type M = Mock<u8>;

const KEYS: [u8; 3] = [0, 1, 2];
const MAX_OPEN: usize = 4;
const MAX_OPEN_PER_KEY: usize = 3;
const MAX_IDLE: usize = 3;
const MAX_IDLE_PER_KEY: usize = 2;
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(8);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(4);

/// The lifecycle features of one case.
#[derive(Debug, Clone)]
struct Features {
    idle_timeout: bool,
    max_uses: bool,
    lifetime: bool,
    keepalive: bool,
    health_always: bool,
    backoff: bool,
    min_idle: bool,
    max_connecting: usize,
    /// Borrowers per connection (`Lending::shared`); 0: exclusive.
    share: usize,
    seed: u64,
}

impl Features {
    /// Whether connections are lent shared (a limit of 1 is exclusive).
    fn shared(&self) -> bool {
        self.share > 1
    }
}

/// One step of a case. Indices pick among what the test holds, modulo its
/// length (a no-op when there is nothing).
#[derive(Debug, Clone)]
enum Op {
    /// Spawn a getter of key k.
    Get(u8),
    /// Abort the i-th pending getter.
    Abort(usize),
    /// Let tasks run.
    Settle,
    /// Return the i-th held connection.
    Return(usize),
    /// Mark the i-th held connection broken and return it.
    Broken(usize),
    /// Detach the i-th held connection.
    Detach(usize),
    /// Kill the i-th held connection (pings fail, `health` can't tell)
    /// and keep holding it.
    Kill(usize),
    /// The next dial of key k fails.
    FailNext(u8),
    /// The next dial of key k waits for a gate.
    GateNext(u8),
    /// Open the i-th gate: the dial succeeds (true) or fails.
    OpenGate(usize, bool),
    /// Advance the paused clock by this many ms, then settle.
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3).prop_map(Op::Get),
        1 => any::<usize>().prop_map(Op::Abort),
        3 => Just(Op::Settle),
        4 => any::<usize>().prop_map(Op::Return),
        1 => any::<usize>().prop_map(Op::Broken),
        1 => any::<usize>().prop_map(Op::Detach),
        1 => any::<usize>().prop_map(Op::Kill),
        1 => (0u8..3).prop_map(Op::FailNext),
        1 => (0u8..3).prop_map(Op::GateNext),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, ok)| Op::OpenGate(i, ok)),
        2 => (0u64..=6000).prop_map(Op::Advance),
    ]
}

fn features() -> impl Strategy<Value = Features> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        1usize..=2,
        prop_oneof![2 => Just(0usize), 1 => Just(1usize), 2 => 2usize..=3],
        any::<u64>(),
    )
        .prop_map(
            |(
                idle_timeout,
                max_uses,
                lifetime,
                keepalive,
                health_always,
                backoff,
                min_idle,
                mc,
                share,
                seed,
            )| {
                Features {
                    idle_timeout,
                    max_uses,
                    lifetime,
                    keepalive,
                    health_always,
                    backoff,
                    min_idle,
                    max_connecting: mc,
                    share,
                    seed,
                }
            },
        )
}

/// What the test holds, i.e. the model the pool's counts are checked against.
struct Model {
    mock: M,
    held: Vec<Pooled<'static, M>>,
    /// Getters spawned and neither collected nor aborted: (key, task).
    pending: Vec<(u8, JoinHandle<Got<M>>)>,
    gates: Vec<Gate>,
    detached: Vec<u64>,
    features: Features,
    /// Shared connections a borrower marked broken: they take no new borrower.
    drained: HashSet<u64>,
}

impl Model {
    /// Connection ids held, with their handle counts, for key `k` (or all).
    fn held_conns(&self, k: Option<u8>) -> std::collections::HashMap<u64, usize> {
        let mut conns = std::collections::HashMap::new();
        for c in self.held.iter().filter(|c| k.is_none_or(|k| c.key == k)) {
            *conns.entry(c.id).or_default() += 1;
        }
        conns
    }
}

impl Model {
    /// Collects the getters that finished: a connection must be of the
    /// getter's key and not already held.
    async fn collect(&mut self, closed: bool) {
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].1.is_finished() {
                let (key, h) = self.pending.swap_remove(i);
                match h.await.expect("getter panicked") {
                    Ok(c) => {
                        assert_eq!(
                            c.key, key,
                            "getter of key {key} got conn {} of key {}",
                            c.id, c.key
                        );
                        self.held.push(c);
                    }
                    Err(Error::Closed) => assert!(closed, "Error::Closed before close"),
                    Err(Error::TooManyWaiters { .. }) => panic!("no max_waiters, yet rejected"),
                    Err(_) => {}
                }
            } else {
                i += 1;
            }
        }
    }
}

/// 256 cases, or `MODEL_CASES` (more, for bug hunting); nothing persisted.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("MODEL_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
