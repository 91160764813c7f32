//! The waiter slots and the wait queue.

mod waiters {
    use crate::clock::Tick;
    use crate::engine::KeyId;
    use crate::engine::Waiters;
    use std::task::Waker;

    #[test]
    fn a_reused_slot_does_not_answer_for_a_stale_id() {
        let mut w = Waiters::<u32>::default();
        let now = Tick::now();
        let a = w.insert(KeyId::from_index(0), now, None);
        assert!(w.is_live(a));
        let (_, outcome) = w.remove(a);
        assert_eq!(outcome, None);
        let b = w.insert(KeyId::from_index(0), now, None);
        assert!(!w.is_live(a), "stale id must not see the new occupant");
        assert!(w.is_live(b));
        assert!(w.serve(b, 7).is_none());
        assert!(!w.is_live(b), "a served waiter is no longer live");
        let (_, outcome) = w.poll(b, Waker::noop()).expect("served");
        assert_eq!(outcome, 7);
    }
}

mod queue {
    use crate::engine::WaitQueue;

    impl<T: Copy> WaitQueue<T> {
        /// True when no entry (live or stale) is queued.
        fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Bytes reserved by both vectors (for the memory figures).
        fn capacity(&self) -> usize {
            self.head.capacity() + self.tail.capacity()
        }
    }

    #[test]
    fn fifo_order_across_swaps() {
        let mut q = WaitQueue::default();
        for i in 0..5 {
            q.push(i);
        }
        assert_eq!(q.pop(), Some(0));
        assert_eq!(q.pop(), Some(1));
        // Pushed while `head` still holds 2..5: must come out after them.
        q.push(5);
        q.push(6);
        let rest: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(rest, vec![2, 3, 4, 5, 6]);
        assert!(q.is_empty());
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn steady_push_pop_reuses_capacity() {
        let mut q = WaitQueue::default();
        // Reach a working size of 8 outstanding entries.
        for i in 0..8 {
            q.push(i);
        }
        for i in 8..100 {
            q.push(i);
            q.pop();
        }
        let warmed = q.capacity();
        for i in 100..100_000 {
            q.push(i);
            assert!(q.pop().is_some());
        }
        assert_eq!(q.capacity(), warmed, "steady load must not grow the queue");
        assert_eq!(q.len(), 8);
    }

    #[test]
    fn pop_live_skips_stale_entries() {
        let mut q = WaitQueue::default();
        for i in 0..6 {
            q.push(i);
        }
        let cancelled = [0, 1, 3];
        let live = |i: i32| !cancelled.contains(&i);
        assert_eq!(q.pop_live(live), Some(2));
        assert_eq!(q.pop_live(live), Some(4));
        assert_eq!(q.pop_live(live), Some(5));
        assert_eq!(q.pop_live(live), None);
        assert!(q.is_empty());
    }

    #[test]
    fn compact_keeps_order_of_live_entries() {
        let mut q = WaitQueue::default();
        for i in 0..4 {
            q.push(i);
        }
        q.pop(); // 0 spent in head
        for i in 4..8 {
            q.push(i); // in tail
        }
        q.compact(|i| i % 2 == 1);
        assert_eq!(q.len(), 4);
        let rest: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(rest, vec![1, 3, 5, 7]);
    }

    #[test]
    fn clear_empties_both_slices() {
        let mut q = WaitQueue::default();
        q.push(1);
        q.push(2);
        q.pop();
        q.push(3);
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.pop(), None);
    }

    /// Model-based property test: random push / pop / pop_live / compact /
    /// clear sequences against a `VecDeque`, with a random liveness set
    /// (entries "cancelled" while queued). After every step the lengths
    /// agree; every pop returns the model's front (FIFO across the two
    /// slices); the backing storage never exceeds what the largest queue
    /// seen needs (each vector at most twice the most entries ever queued,
    /// Vec's doubling); and a steady push/pop phase afterwards allocates
    /// nothing once warmed up.
    mod model {
        use std::collections::{HashSet, VecDeque};

        use proptest::prelude::*;

        use crate::engine::WaitQueue;

        #[derive(Debug, Clone)]
        enum Op {
            /// Push the next id.
            Push,
            /// Push this many ids in a row.
            PushMany(u8),
            Pop,
            PopLive,
            /// Mark the i-th queued entry (modulo the length) stale.
            Cancel(usize),
            Compact,
            Clear,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                8 => Just(Op::Push),
                1 => (1u8..40).prop_map(Op::PushMany),
                6 => Just(Op::Pop),
                4 => Just(Op::PopLive),
                4 => any::<usize>().prop_map(Op::Cancel),
                1 => Just(Op::Compact),
                1 => Just(Op::Clear),
            ]
        }

        /// Vec's smallest non-zero capacity for 4-byte elements is 4; 8
        /// leaves room for any allocator rounding rule of the std.
        fn storage_bound(most_queued: usize) -> usize {
            2 * (2 * most_queued).max(8)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn behaves_like_a_vecdeque(
                ops in proptest::collection::vec(op(), 1..300),
                steady in 1usize..20,
            ) {
                let mut q = WaitQueue::<u32>::default();
                let mut model = VecDeque::<u32>::new();
                let mut stale = HashSet::<u32>::new();
                let mut next = 0u32;
                let mut most_queued = 0usize;
                for op in ops {
                    match op {
                        Op::Push => {
                            q.push(next);
                            model.push_back(next);
                            next += 1;
                        }
                        Op::PushMany(n) => {
                            for _ in 0..n {
                                q.push(next);
                                model.push_back(next);
                                next += 1;
                            }
                        }
                        Op::Pop => prop_assert_eq!(q.pop(), model.pop_front()),
                        Op::PopLive => {
                            let want = loop {
                                match model.pop_front() {
                                    Some(id) if stale.contains(&id) => continue,
                                    other => break other,
                                }
                            };
                            let mut asked = Vec::new();
                            let got = q.pop_live(|id| {
                                asked.push(id);
                                !stale.contains(&id)
                            });
                            prop_assert_eq!(got, want);
                            // The predicate saw the entries in FIFO order, each once.
                            prop_assert!(asked.windows(2).all(|w| w[0] < w[1]), "{:?}", asked);
                        }
                        Op::Cancel(i) => {
                            if !model.is_empty() {
                                stale.insert(model[i % model.len()]);
                            }
                        }
                        Op::Compact => {
                            q.compact(|id| !stale.contains(&id));
                            model.retain(|id| !stale.contains(id));
                        }
                        Op::Clear => {
                            q.clear();
                            model.clear();
                        }
                    }
                    most_queued = most_queued.max(model.len());
                    prop_assert_eq!(q.len(), model.len());
                    prop_assert_eq!(q.is_empty(), model.is_empty());
                    prop_assert!(
                        q.capacity() <= storage_bound(most_queued),
                        "capacity {} with at most {} queued",
                        q.capacity(),
                        most_queued
                    );
                }

                // Steady load: `steady` entries outstanding, one push per pop.
                while model.len() < steady {
                    q.push(next);
                    model.push_back(next);
                    next += 1;
                }
                while model.len() > steady {
                    prop_assert_eq!(q.pop(), model.pop_front());
                }
                let round = |q: &mut WaitQueue<u32>, model: &mut VecDeque<u32>, next: &mut u32| {
                    q.push(*next);
                    model.push_back(*next);
                    *next += 1;
                    (q.pop(), model.pop_front())
                };
                // Two full swaps of both slices reach the working size.
                for _ in 0..4 * (steady + 1) {
                    let (got, want) = round(&mut q, &mut model, &mut next);
                    prop_assert_eq!(got, want);
                }
                let warmed = q.capacity();
                for _ in 0..2_000 {
                    let (got, want) = round(&mut q, &mut model, &mut next);
                    prop_assert_eq!(got, want);
                }
                prop_assert_eq!(q.capacity(), warmed, "steady load grew the queue");
                prop_assert_eq!(q.len(), steady);
                let rest: Vec<u32> = std::iter::from_fn(|| q.pop()).collect();
                prop_assert_eq!(rest, Vec::from(model));
            }
        }
    }
}
