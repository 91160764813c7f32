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

    fn drain(q: &mut WaitQueue<u32>) -> Vec<u32> {
        std::iter::from_fn(|| q.pop_live(|_| true)).collect()
    }

    #[test]
    fn pop_live_skips_stale_entries_in_fifo_order() {
        let mut q = WaitQueue::default();
        for i in 0..6 {
            q.push(i);
        }
        let cancelled = [0, 1, 3];
        let live = |i: u32| !cancelled.contains(&i);
        assert_eq!(q.pop_live(live), Some(2));
        q.push(6);
        assert_eq!(q.pop_live(live), Some(4));
        assert_eq!(drain(&mut q), vec![5, 6]);
        assert_eq!(q.pop_live(live), None);
    }

    #[test]
    fn tidy_drops_stale_entries_only_past_its_bound_and_keeps_the_order() {
        let mut q = WaitQueue::default();
        for i in 0..40 {
            q.push(i);
        }
        let live = |i: u32| i.is_multiple_of(10);
        q.tidy(12, live);
        assert_eq!(q.0.len(), 40, "within the bound: untouched");
        q.tidy(4, live);
        assert_eq!(drain(&mut q), vec![0, 10, 20, 30]);
        q.push(1);
        q.tidy(0, |_| true);
        assert_eq!(q.pop_live(|_| true), None, "nobody waits: emptied");
    }

    #[test]
    fn steady_push_pop_reuses_the_buffer() {
        let mut q = WaitQueue::default();
        for i in 0..8 {
            q.push(i);
        }
        q.push(8);
        q.pop_live(|_| true);
        let warmed = q.0.capacity();
        for i in 9..100_000 {
            q.push(i);
            assert!(q.pop_live(|_| true).is_some());
        }
        assert_eq!(
            q.0.capacity(),
            warmed,
            "steady load must not grow the queue"
        );
    }
}
