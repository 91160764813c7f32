//! The wait queue: a FIFO made of two slices, as Go's `wantConnQueue`.
//!
//! `head` is read from the front (at `head_pos`), `tail` is pushed onto. When
//! `head` runs dry the two are swapped, so both backing vectors are reused
//! forever: under a steady push/pop load the queue reaches its working size
//! once and never allocates again (a `Vec` used as a FIFO with `remove(0)`
//! would be O(n), and a ring buffer that is popped lazily would have to be
//! compacted; the two slices need neither).
//!
//! Entries are never removed from the middle. A waiter that gives up leaves a
//! stale entry behind; whoever pops skips entries its `is_live` predicate
//! rejects, and [`WaitQueue::compact`] drops them in bulk when the owner sees
//! that stale entries outnumber live ones.

/// A FIFO of `T` backed by two reusable vectors.
#[derive(Debug)]
pub(crate) struct WaitQueue<T> {
    /// Entries to pop, from `head_pos` on; `head[..head_pos]` is spent.
    head: Vec<T>,
    head_pos: usize,
    /// Entries pushed since `head` was last refilled.
    tail: Vec<T>,
}

impl<T> Default for WaitQueue<T> {
    fn default() -> Self {
        Self {
            head: Vec::new(),
            head_pos: 0,
            tail: Vec::new(),
        }
    }
}

impl<T: Copy> WaitQueue<T> {
    /// Number of entries, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.head.len() - self.head_pos + self.tail.len()
    }

    /// True when no entry (live or stale) is queued.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `item` at the back.
    pub(crate) fn push(&mut self, item: T) {
        self.tail.push(item);
    }

    /// Removes and returns the front entry.
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.head_pos == self.head.len() {
            if self.tail.is_empty() {
                return None;
            }
            // `head` is spent: reuse its allocation as the next `tail`.
            self.head.clear();
            self.head_pos = 0;
            std::mem::swap(&mut self.head, &mut self.tail);
        }
        let item = self.head[self.head_pos];
        self.head_pos += 1;
        Some(item)
    }

    /// Pops entries until one satisfies `is_live` and returns it; the stale
    /// entries before it are dropped.
    pub(crate) fn pop_live(&mut self, mut is_live: impl FnMut(T) -> bool) -> Option<T> {
        while let Some(item) = self.pop() {
            if is_live(item) {
                return Some(item);
            }
        }
        None
    }

    /// Drops every entry that `is_live` rejects, keeping the order of the rest.
    pub(crate) fn compact(&mut self, mut is_live: impl FnMut(T) -> bool) {
        self.head.drain(..self.head_pos);
        self.head_pos = 0;
        self.head.retain(|&item| is_live(item));
        self.tail.retain(|&item| is_live(item));
        self.head.append(&mut self.tail);
    }

    /// Drops every entry, keeping both allocations.
    pub(crate) fn clear(&mut self) {
        self.head.clear();
        self.head_pos = 0;
        self.tail.clear();
    }

    /// Bytes reserved by both vectors (for the memory figures in the stats).
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.head.capacity() + self.tail.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::WaitQueue;

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
        // Warm up to a working size of 8 outstanding entries.
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
}
