//! FIFO service at the cap: every place a return frees goes to the getter
//! that has waited longest, exclusive and shared.

use proptest::prelude::*;
use tokio::task::JoinHandle;

use crate::support;
use crate::support::{Got, Mock, settle, spawn_get};

use super::config;

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
