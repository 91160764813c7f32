//! The model run: a pool built with a case's features, its operations
//! applied one by one with the invariants checked after each, then close
//! and drain.

use std::collections::HashSet;
use std::time::Duration;

use connpool::Pooled;
use proptest::prelude::*;

use crate::support;
use crate::support::{Counts, Step, ZERO, settle, spawn_get};

use super::invariants::{check_settled, check_step};
use super::{
    CHECKOUT_TIMEOUT, CONNECT_TIMEOUT, Features, M, MAX_IDLE, MAX_IDLE_PER_KEY, MAX_OPEN,
    MAX_OPEN_PER_KEY, Model, Op, config, features, op,
};

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
            .ping_timeout(Duration::from_secs(1));
    }
    if f.health_always {
        b = b.health_check(Duration::ZERO);
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
