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

use connpool::{Error, HealthCheck, Pool, Pooled};
use proptest::prelude::*;
use tokio::task::JoinHandle;

use crate::support;
use crate::support::{Counts, Gate, Got, Mock, Step, ZERO, check_counts, settle, spawn_get};

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
    /// Kill the i-th held connection (pings fail, `is_broken` can't tell)
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

/// Invariants that hold after every step, settled or not.
#[track_caller]
fn check_step(pool: &Pool<M>, model: &Model) {
    check_counts(pool, &KEYS);
    let s = pool.state();
    assert!(s.open <= MAX_OPEN, "open over max_open: {s:?}");
    assert!(s.idle <= MAX_IDLE, "idle over max_idle: {s:?}");
    let shared = model.features.shared();
    assert!(
        s.lent >= model.held_conns(None).len(),
        "lent below what the test holds: {s:?}"
    );
    if shared {
        assert!(
            s.borrowers >= model.held.len(),
            "borrowers below handles: {s:?}"
        );
    } else {
        assert_eq!(s.borrowers, 0, "borrowers of exclusive connections: {s:?}");
    }
    for k in KEYS {
        if let Some(ks) = pool.key_state(&k) {
            assert!(ks.open <= MAX_OPEN_PER_KEY, "key {k} open over cap: {ks:?}");
            assert!(ks.idle <= MAX_IDLE_PER_KEY, "key {k} idle over cap: {ks:?}");
            let held = model.held_conns(Some(k)).len();
            assert!(ks.lent >= held, "key {k} lent below held {held}: {ks:?}");
        } else {
            assert!(
                !model.held.iter().any(|c| c.key == k),
                "key {k} forgotten while a connection of it is held"
            );
        }
    }
    let closed: HashSet<u64> = model.mock.closed().into_iter().collect();
    let limit = model.features.share.max(1);
    for (id, handles) in model.held_conns(None) {
        assert!(
            handles <= limit,
            "conn {id} held {handles} times (limit {limit})"
        );
    }
    for c in &model.held {
        assert!(!closed.contains(&c.id), "held conn {} was closed", c.id);
        assert!(
            !model.detached.contains(&c.id),
            "held conn {} was detached",
            c.id
        );
    }
}

/// Invariants that hold once every task has run and finished getters were
/// collected: lent and waiting are exactly what the test sees.
#[track_caller]
fn check_settled(pool: &Pool<M>, model: &Model) {
    check_step(pool, model);
    let s = pool.state();
    assert_eq!(s.pinging, 0, "a ping of the mock is instant: {s:?}");
    let shared = model.features.shared();
    assert_eq!(s.lent, model.held_conns(None).len(), "lent != held: {s:?}");
    if shared {
        assert_eq!(s.borrowers, model.held.len(), "borrowers != handles: {s:?}");
    }
    assert_eq!(
        s.waiting,
        model.pending.len(),
        "waiting != pending getters: {s:?}"
    );
    for k in KEYS {
        let conns = model.held_conns(Some(k));
        let held = conns.len();
        let pending = model.pending.iter().filter(|(key, _)| *key == k).count();
        match pool.key_state(&k) {
            Some(ks) => {
                assert_eq!(ks.lent, held, "key {k}: lent != held: {ks:?}");
                if shared {
                    let handles: usize = conns.values().sum();
                    assert_eq!(ks.borrowers, handles, "key {k}: borrowers: {ks:?}");
                }
                // A getter never waits while a connection of its key has
                // room (unless it drains: marked broken, or — not visible
                // from here — past its lifetime or uses).
                let f = &model.features;
                if shared && ks.waiting > 0 && !f.lifetime && !f.max_uses {
                    for (id, handles) in &conns {
                        assert!(
                            *handles >= f.share || model.drained.contains(id),
                            "key {k}: a getter waits while conn {id} has {handles} of {} borrowers: {ks:?}",
                            f.share
                        );
                    }
                }
                assert_eq!(ks.waiting, pending, "key {k}: waiting != pending: {ks:?}");
                if ks.waiting > 0 {
                    assert_eq!(
                        ks.idle, 0,
                        "key {k}: a getter waits beside an idle conn: {ks:?}"
                    );
                }
            }
            None => assert_eq!((held, pending), (0, 0), "key {k} forgotten"),
        }
    }
}

fn build_pool(mock: M, f: &Features) -> connpool::Builder<M> {
    mock.share(f.share);
    let mut b = support::core_builder(mock)
        .max_open(MAX_OPEN)
        .max_open_per_key(MAX_OPEN_PER_KEY)
        .max_idle(MAX_IDLE)
        .max_idle_per_key(MAX_IDLE_PER_KEY)
        .checkout_timeout(CHECKOUT_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .max_connecting(f.max_connecting);
    if f.idle_timeout {
        b = b.idle_timeout(Duration::from_secs(5));
    }
    if f.max_uses {
        b = b.max_uses(3);
    }
    if f.lifetime {
        b = b.max_lifetime(Duration::from_secs(12)).jitter(0.2);
    }
    if f.keepalive {
        b = b
            .keepalive_interval(Duration::from_secs(3))
            .keepalive_timeout(Duration::from_secs(1));
    }
    if f.health_always {
        b = b.health_check(HealthCheck::Always);
    }
    if f.min_idle {
        b = b.min_idle(1);
    }
    if f.backoff {
        b = b.backoff(Duration::from_millis(500), Duration::from_secs(4));
    }
    b
}

/// Runs one case; panics on a broken invariant.
fn run_case(f: Features, ops: Vec<Op>) {
    let _others = support::with_others();
    fastrand::seed(f.seed);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let mock = M::new();
        let pool = build_pool(mock.clone(), &f).build().await.unwrap();
        let mut m = Model {
            mock: mock.clone(),
            held: Vec::new(),
            pending: Vec::new(),
            gates: Vec::new(),
            detached: Vec::new(),
            features: f.clone(),
            drained: HashSet::new(),
        };
        check_settled(&pool, &m);
        for op in ops {
            match op {
                Op::Get(k) => m.pending.push((k, spawn_get(&pool, k))),
                Op::Abort(i) => {
                    if !m.pending.is_empty() {
                        let i = i % m.pending.len();
                        let (_, h) = m.pending.remove(i);
                        h.abort();
                        // A getter that already had its connection in hand
                        // (finished, uncollected) drops it with the task
                        // output; either way it is gone for the test.
                    }
                }
                Op::Settle => {}
                Op::Return(i) => {
                    if !m.held.is_empty() {
                        let i = i % m.held.len();
                        drop(m.held.remove(i));
                    }
                }
                Op::Broken(i) => {
                    if !m.held.is_empty() {
                        let i = i % m.held.len();
                        let mut c = m.held.remove(i);
                        Pooled::mark_broken(&mut c);
                        m.drained.insert(c.id);
                        drop(c);
                    }
                }
                Op::Detach(i) => {
                    if !m.held.is_empty() {
                        let i = i % m.held.len();
                        let raw = Pooled::detach(m.held.remove(i));
                        // A detached handle leaves its shared connection
                        // to the pool.
                        if !f.shared() {
                            m.detached.push(raw.id);
                        }
                    }
                }
                Op::Kill(i) => {
                    if !m.held.is_empty() {
                        let i = i % m.held.len();
                        m.held[i].kill();
                    }
                }
                Op::FailNext(k) => mock.push(k, Step::Fail("scripted")),
                Op::GateNext(k) => m.gates.push(mock.gate(k)),
                Op::OpenGate(i, ok) => {
                    if !m.gates.is_empty() {
                        let i = i % m.gates.len();
                        let g = m.gates.remove(i);
                        if ok {
                            g.succeed()
                        } else {
                            g.fail("gate failed")
                        }
                    }
                }
                Op::Advance(ms) => tokio::time::advance(Duration::from_millis(ms)).await,
            }
            let settles = matches!(op, Op::Settle | Op::Advance(_));
            if settles {
                settle().await;
                m.collect(false).await;
                check_settled(&pool, &m);
            } else {
                check_step(&pool, &m);
            }
        }

        // End: close, return everything, open every gate, and drain.
        settle().await;
        m.collect(false).await;
        check_settled(&pool, &m);
        let closer = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.close_timeout(Duration::from_secs(60)).await })
        };
        settle().await;
        m.collect(true).await;
        assert!(m.pending.is_empty(), "getters still pending after close");
        m.held.clear();
        for g in m.gates.drain(..) {
            g.succeed();
        }
        settle().await;
        closer
            .await
            .unwrap()
            .expect("close did not drain within 60 s");
        settle().await;
        let s = pool.state();
        assert_eq!(Counts::from(&s), ZERO, "after close");
        assert_eq!(s.closing, 0, "after close: {s:?}");
        assert_eq!(
            mock.connects() as u64,
            s.counters.dials,
            "dials vs connects"
        );
        let made = s.counters.dials - s.counters.dial_failures;
        let closed = mock.closed();
        let mut seen = HashSet::new();
        for id in closed.iter().chain(&m.detached) {
            assert!(
                seen.insert(*id),
                "conn {id} closed twice or closed and detached"
            );
            assert!((1..=made).contains(id), "unknown conn {id} (made {made})");
        }
        assert_eq!(
            made,
            (closed.len() + m.detached.len()) as u64,
            "made {made}, closed {closed:?}, detached {:?}",
            m.detached
        );
        assert_eq!(
            s.counters.closed_total(),
            closed.len() as u64,
            "close counters"
        );
    });
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

proptest! {
    #![proptest_config(config())]

    /// Random operation sequences keep every invariant of the model.
    #[test]
    fn random_ops_keep_the_invariants(
        f in features(),
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        run_case(f, ops);
    }
}

/// One step of the FIFO property: a getter arrives, one gives up, or a
/// borrower returns.
#[derive(Debug, Clone)]
enum FifoOp {
    Get,
    Abort(usize),
    Return(usize),
}

fn fifo_op() -> impl Strategy<Value = FifoOp> {
    prop_oneof![
        4 => Just(FifoOp::Get),
        1 => any::<usize>().prop_map(FifoOp::Abort),
        3 => any::<usize>().prop_map(FifoOp::Return),
    ]
}

/// A pool at its cap (2 connections, pre-warmed; `share` borrowers each):
/// every place a return frees goes to the getter that has waited longest,
/// whatever the arrivals, cancellations and returns before it.
fn run_fifo_case(share: usize, ops: Vec<FifoOp>) {
    let _others = support::with_others();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let mock = Mock::<()>::new();
        mock.share(share);
        let pool = mock
            .core_pool(|b| b.max_open(2).initial(2).checkout_timeout(None))
            .await;
        let mut held = Vec::new();
        // Waiting getters, oldest first.
        let mut waiting: std::collections::VecDeque<JoinHandle<Got<Mock<()>>>> =
            std::collections::VecDeque::new();
        for op in ops {
            match op {
                FifoOp::Get => {
                    let h = spawn_get(&pool, ());
                    settle().await;
                    if h.is_finished() {
                        assert!(waiting.is_empty(), "served past {} waiters", waiting.len());
                        held.push(h.await.unwrap().expect("served"));
                    } else {
                        waiting.push_back(h);
                    }
                }
                FifoOp::Abort(i) => {
                    if !waiting.is_empty() {
                        let h = waiting.remove(i % waiting.len()).unwrap();
                        h.abort();
                        settle().await;
                    }
                }
                FifoOp::Return(i) => {
                    if held.is_empty() {
                        continue;
                    }
                    drop(held.swap_remove(i % held.len()));
                    settle().await;
                    let served: Vec<usize> = (0..waiting.len())
                        .filter(|&j| waiting[j].is_finished())
                        .collect();
                    if waiting.is_empty() {
                        assert!(served.is_empty());
                    } else {
                        assert_eq!(served, vec![0], "the oldest waiter, and only it");
                        let h = waiting.pop_front().unwrap();
                        held.push(h.await.unwrap().expect("served"));
                    }
                }
            }
            let s = pool.state();
            assert_eq!(s.waiting, waiting.len(), "{s:?}");
        }
        for h in waiting {
            h.abort();
        }
    });
}

proptest! {
    #![proptest_config(config())]

    /// FIFO service order at the cap, exclusive and shared.
    #[test]
    fn waiters_at_the_cap_are_served_in_arrival_order(
        share in prop_oneof![Just(0usize), Just(2usize), Just(3usize)],
        ops in proptest::collection::vec(fifo_op(), 0..80),
    ) {
        run_fifo_case(share, ops);
    }
}
