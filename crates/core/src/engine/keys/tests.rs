use super::Keys;
use crate::clock::Tick;
use crate::engine::{Counts, KeyPoints};

/// No feature: every key is forgotten once unused.
#[derive(Debug)]
struct NoFeatures;

impl KeyPoints<String> for NoFeatures {
    type Key = ();
    fn new_key(&self, _: &String) {}
    fn remembers(&self, (): &(), _: Tick) -> bool {
        false
    }
    fn allows_dial(&self, (): &(), _: Tick, _: &crate::config::Config, _: &Counts) -> bool {
        true
    }
    fn keeps_stale(&self, (): &(), _: usize) -> bool {
        false
    }
    fn count((): &mut (), _: crate::engine::Event) {}
}

fn keys() -> Keys<String, (), NoFeatures> {
    Keys::new(NoFeatures)
}

#[test]
fn a_count_changes_the_key_and_the_pool_together() {
    use crate::engine::Place;
    let mut keys = keys();
    let a = keys.id_or_insert(&"a".to_string());
    let b = keys.id_or_insert(&"b".to_string());
    let dialing = keys.open_slot(a, Place::Dialing);
    let dialed = keys.open_slot(b, Place::Dialing);
    assert_eq!(keys.give_back(dialed), b);
    let (lent, _) = keys.take_slot(b, Place::Lent);
    keys.wait(a);
    assert_eq!(
        (keys.get(a).counts().dialing, keys.get(a).counts().waiting),
        (1, 1)
    );
    assert_eq!(
        (keys.get(b).counts().lent, keys.get(b).counts().open),
        (1, 1)
    );
    let total = keys.total();
    assert_eq!(
        (total.open, total.dialing, total.lent, total.waiting),
        (2, 1, 1, 1)
    );
    // A key is forgotten only once nothing counts in it.
    keys.forget_if_unused(a, Tick::now(), false);
    assert!(keys.contains(a));
    keys.unwait(a);
    assert_eq!(keys.give_back(dialing), a);
    keys.close_idle(a);
    keys.forget_if_unused(a, Tick::now(), false);
    assert!(!keys.contains(a));
    assert_eq!(keys.total().open, 1);
    assert_eq!(keys.give_back(lent), b);
    assert_eq!((keys.total().lent, keys.total().idle()), (0, 1));
}

#[test]
fn a_slot_is_taken_and_given_back_in_its_place() {
    use crate::engine::Place;
    let mut keys = keys();
    let a = keys.id_or_insert(&"a".to_string());
    let dial = keys.open_slot(a, Place::Dialing);
    assert_eq!((dial.key(), dial.place()), (a, Place::Dialing));
    keys.give_back(dial);
    let (out, _) = keys.take_slot(a, Place::Out);
    let counts = *keys.get(a).counts();
    assert_eq!((counts.open, counts.out, counts.idle()), (1, 1, 0));
    assert_eq!(keys.total().out, 1);
    keys.give_back(out);
    let (lent, _) = keys.take_slot(a, Place::Lent);
    assert_eq!(lent.key(), a);
    assert_eq!((keys.total().lent, keys.total().idle()), (1, 0));
    assert_eq!(keys.give_back(lent), a);
    assert_eq!(keys.total().idle(), 1);
    keys.close_idle(a);
    assert!(keys.total().is_zero());
}

#[test]
fn the_last_key_is_found_again_and_other_keys_are_not_mistaken_for_it() {
    let mut keys = keys();
    let a = keys.id_or_insert(&"a".to_string());
    assert_eq!(keys.id_or_insert(&"a".to_string()), a);
    let b = keys.id_or_insert(&"b".to_string());
    assert_ne!(a, b);
    assert_eq!(keys.id_or_insert(&"a".to_string()), a);
    assert_eq!(keys.id_or_insert(&"b".to_string()), b);
    assert_eq!(keys.get(a).key, "a");
    assert_eq!(keys.get(b).key, "b");
}

#[test]
fn a_forgotten_last_key_whose_slot_went_to_another_key_is_registered_anew() {
    let mut keys = keys();
    let a = keys.id_or_insert(&"a".to_string());
    keys.forget_if_unused(a, Tick::now(), false);
    assert!(!keys.contains(a));
    // The slab hands the freed slot to the next key.
    let b = keys.id_or_insert(&"b".to_string());
    assert_eq!(b, a, "the slot is reused");
    keys.id_or_insert(&"b".to_string());
    // "a" must not be taken for the slot it used to have.
    let a2 = keys.id_or_insert(&"a".to_string());
    assert_ne!(a2, b);
    assert_eq!(keys.get(a2).key, "a");
    assert_eq!(keys.get(b).key, "b");
    assert_eq!(keys.len(), 2);
}

#[test]
fn a_forgotten_last_key_is_registered_anew() {
    let mut keys = keys();
    let a = keys.id_or_insert(&"a".to_string());
    keys.forget_if_unused(a, Tick::now(), false);
    let a2 = keys.id_or_insert(&"a".to_string());
    assert!(keys.contains(a2));
    assert_eq!(keys.get(a2).key, "a");
    assert_eq!(keys.len(), 1);
}

impl super::Slot {
    /// A slot that stands for no count, for the unit tests of a feature's
    /// record.
    pub(crate) fn new(key: crate::engine::KeyId, place: crate::engine::Place) -> Self {
        Self { key, place }
    }
}
