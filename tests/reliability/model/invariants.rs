//! The invariants checked against the model: after every step
//! (`check_step`), and once every task has run (`check_settled`).

use std::collections::HashSet;

use connpool::Pool;

use crate::support::check_counts;

use super::{KEYS, M, MAX_IDLE, MAX_IDLE_PER_KEY, MAX_OPEN, MAX_OPEN_PER_KEY, Model};

/// Invariants that hold after every step, settled or not.
#[track_caller]
pub(super) fn check_step(pool: &Pool<M>, model: &Model) {
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
pub(super) fn check_settled(pool: &Pool<M>, model: &Model) {
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
