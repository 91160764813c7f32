use super::Records;
use crate::engine::KeyId;

fn k(i: usize) -> KeyId {
    KeyId::from_index(i)
}

#[test]
fn per_key_lifo_and_global_lru() {
    let mut idle = Records::default();
    idle.push(k(0), "a0");
    idle.push(k(1), "b0");
    idle.push(k(0), "a1");
    idle.push(k(1), "b1");
    assert_eq!(idle.len(), 4);
    assert_eq!(idle.len_of(k(0)), 2);
    // LIFO within a key.
    assert_eq!(idle.pop_newest(k(0)), Some("a1"));
    // LRU across keys: a0 is the oldest left.
    assert_eq!(idle.pop_lru(), Some((k(0), "a0")));
    assert_eq!(idle.len_of(k(0)), 0);
    assert_eq!(idle.pop_newest(k(0)), None);
    assert_eq!(idle.pop_lru(), Some((k(1), "b0")));
    assert_eq!(idle.pop_newest(k(1)), Some("b1"));
    assert_eq!(idle.pop_lru(), None);
    assert_eq!(idle.len(), 0);
    // Unknown key.
    assert_eq!(idle.pop_newest(k(7)), None);
    assert_eq!(idle.len_of(k(7)), 0);
}

#[test]
fn refs_name_one_idle_stay_only() {
    let mut idle = Records::default();
    let a = idle.push(k(0), "a");
    let b = idle.push(k(1), "b");
    assert_eq!(idle.get(a), Some((k(0), &"a")));
    assert_eq!(idle.take(b), Some((k(1), "b")));
    assert_eq!(idle.take(b), None, "taken once");
    assert_eq!(idle.pop_newest(k(0)), Some("a"));
    // The slot is reused by a new stay: the old ref does not name it.
    let c = idle.push(k(0), "c");
    assert!(!idle.contains(a) && idle.contains(c));
    assert_eq!(idle.len(), 1);
}

#[test]
fn fresh_entries_are_drained_once_newest_first_and_only_while_idle() {
    let mut idle = Records::default();
    let refs: Vec<_> = (0..5).map(|i| idle.push(k(i % 2), i)).collect();
    // Lent again before the drain: never visited.
    assert_eq!(idle.pop_newest(k(1)), Some(3));
    let mut seen = Vec::new();
    idle.drain_fresh(|r, &c| seen.push((r, c)));
    assert_eq!(
        seen,
        vec![(refs[4], 4), (refs[2], 2), (refs[1], 1), (refs[0], 0)]
    );
    // Drained entries keep their refs, and are not drained again.
    assert!(
        refs.iter()
            .enumerate()
            .all(|(i, &r)| i == 3 || idle.contains(r))
    );
    let mut again = Vec::new();
    idle.drain_fresh(|_, &c| again.push(c));
    assert!(again.is_empty());
    // New entries (a returned one among them) are fresh; older ones stop the walk.
    let r5 = idle.push(k(1), 5);
    assert_eq!(idle.take(refs[0]), Some((k(0), 0)));
    let r6 = idle.push(k(0), 6);
    idle.drain_fresh(|r, &c| again.push(c + 100 * usize::from(r == r5 || r == r6)));
    assert_eq!(again, vec![106, 105]);
}

#[test]
fn stamps_wrap_without_touching_the_fresh_bit_or_the_not_idle_stamp() {
    let mut idle = Records {
        next_stamp: super::FRESH - 2,
        ..Records::default()
    };
    let a = idle.push(k(0), "a");
    // `FRESH - 1` with the fresh bit is `NOT_IDLE`: skipped.
    let b = idle.push(k(0), "b");
    assert_eq!((a.stamp, b.stamp), (super::FRESH - 2, 0));
    assert!(idle.contains(a) && idle.contains(b));
    idle.drain_fresh(|_, _| {});
    assert!(idle.contains(a) && idle.contains(b));
    // Both are idle, so holding them (to lend them) unlinks them.
    let (b_id, _) = idle.newest(k(0)).unwrap();
    idle.hold(b_id);
    let (a_id, _) = idle.newest(k(0)).unwrap();
    idle.hold(a_id);
    assert_eq!((idle.len(), idle.newest(k(0))), (0, None));
}

#[test]
fn a_held_entry_is_not_idle_keeps_its_value_and_parks_as_a_new_stay() {
    let mut idle = Records::default();
    let a = idle.push(k(0), "a");
    let b = idle.push(k(0), "b");
    // Holding the newest (to lend it) takes it out of both lists and the
    // counts, its ref no longer names it, but its entry and value stay.
    let (id, &value) = idle.newest(k(0)).unwrap();
    assert_eq!(value, "b");
    *idle.hold(id) = "b lent";
    assert_eq!((idle.len(), idle.len_of(k(0))), (1, 1));
    assert!(!idle.contains(b) && idle.take(b).is_none());
    assert_eq!(idle.newest(k(0)).map(|(_, v)| *v), Some("a"));
    assert_eq!(*idle.value(id), "b lent");
    // Holding again is harmless; nothing drains it.
    idle.hold(id);
    let mut fresh = Vec::new();
    idle.drain_fresh(|_, &v| fresh.push(v));
    assert_eq!(fresh, vec!["a"]);
    // Parked back: the newest again, fresh again, under a new ref.
    assert_eq!(idle.park(id, |&v| v), "b lent");
    assert_eq!((idle.len(), idle.len_of(k(0))), (2, 2));
    assert_eq!(idle.newest(k(0)).map(|(i, _)| i), Some(id));
    let mut refs = Vec::new();
    idle.drain_fresh(|r, _| refs.push(r));
    assert_eq!(refs.len(), 1);
    assert!(refs[0] != b && idle.contains(refs[0]) && !idle.contains(b));
    // Removed while held: gone for good, the idle ones untouched.
    idle.hold(id);
    assert_eq!(idle.remove(id), (k(0), "b lent"));
    assert!(idle.contains(a));
    assert_eq!(idle.pop_lru(), Some((k(0), "a")));
    assert_eq!(idle.pop_lru(), None);
    // A connection held from the start (dialed) is not idle either.
    let c = idle.insert(k(1), "c");
    assert_eq!((idle.len(), idle.len_of(k(1))), (0, 0));
    assert_eq!(idle.pop_lru(), None);
    idle.park(c, |_| ());
    assert_eq!(idle.pop_newest(k(1)), Some("c"));
}

#[test]
fn unlink_from_the_middle_keeps_both_lists_consistent() {
    let mut idle = Records::default();
    for i in 0..10 {
        idle.push(k(i % 3), i);
    }
    // Take from the middle of the LRU order via per-key pops.
    assert_eq!(idle.pop_newest(k(1)), Some(7));
    assert_eq!(idle.pop_newest(k(2)), Some(8));
    let mut order = Vec::new();
    while let Some((key, c)) = idle.pop_lru() {
        assert_eq!(key, k(c % 3));
        order.push(c);
    }
    assert_eq!(order, vec![0, 1, 2, 3, 4, 5, 6, 9]);
}

mod support {
    use super::super::*;

    impl<C> Records<C> {
        /// Adds `value` as the most recently used idle connection of `key` and
        /// of the pool: [`insert`](Records::insert), then [`park`](Records::park).
        pub(crate) fn push(&mut self, key: KeyId, value: C) -> IdleRef {
            let id = self.insert(key, value);
            self.park_ref(id)
        }

        /// Removes the most recently parked idle connection of `key` (LIFO).
        pub(crate) fn pop_newest(&mut self, key: KeyId) -> Option<C> {
            let (id, _) = self.newest(key)?;
            Some(self.remove(id).1)
        }
    }
}

mod conn_support {
    use super::super::*;

    impl<C, X: Default> Conn<C, X> {
        /// A connection with no lifecycle limits, for unit tests.
        pub(crate) fn bare(conn: C) -> Self {
            Self {
                conn,
                expires: Tick::NEVER,
                uses: 0,
                since: Tick::now(),
                site: None,
                ext: X::default(),
            }
        }
    }
}

mod conn {
    /// The record beside the connection and the features' record: kept
    /// per idle connection, moved on every checkout and return (`since` is
    /// the idle time or the time it was lent, never both at once).
    #[test]
    fn the_record_is_32_bytes_beside_the_connection_and_the_features() {
        assert_eq!(std::mem::size_of::<super::super::Conn<(), ()>>(), 32);
    }
}
