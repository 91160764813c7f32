//! The connection a single-key pool got back last, kept outside the lock:
//! the next checkout takes it without locking anything.
//!
//! A pool whose key type is zero-sized (`()`: one key value, as in bb8 or
//! deadpool) spends most of a get + return on its lock: two lock/unlock
//! pairs, four atomic read-modify-writes on lines every borrower writes. So
//! a return that would only park its connection (nobody waits, the pool is
//! open, the idle caps cannot bind, the maintenance task wakes in time for
//! it) leaves it here, [`Rested`] since now, still counted as lent
//! (snapshots count it idle); a checkout takes it if the idle path would
//! lend it as it is (lifetime, idle timeout, health-check policy, not
//! retired). Neither takes the lock: the slot is a one-place lock-free
//! queue (one atomic read-modify-write to put, one to take) and its gate an
//! atomic.
//!
//! Parking is deferred, not skipped: every transition starts by parking
//! what the slot holds ([`Recent::take_rested`]), so it sees the pool as if
//! that return had parked its connection, and ends by setting the gate for
//! the pool as it leaves it ([`Recent::set_gate`]; a transition leaves it
//! alone where nothing changed, so that the line it is on stays shared). A
//! return that rests its connection while a transition runs is one that
//! came after it; if that transition closes the gate (or makes it later),
//! it parks what rests here once more. The record of
//! a connection passed on through the slot is not touched meanwhile: what
//! the slot needs of it (its lifetime, its keepalive interval, the
//! retirement generation it was lent in) is stamped here when the lock
//! lends it ([`Recent::stamp`]); what changes (its `uses`, when it came to
//! rest) travels with it and reaches the record when it is parked. So the
//! gets served from here are counted then (by the counters'
//! `State::count_fast_gets`), not at once.
//!
//! Invariants:
//! * what rests here is a connection of the one key, lent exclusively, its
//!   idle-set entry held without it, its [`LentSlot`] in the entry, its
//!   stamp current;
//! * one place, so what rests here is newer than every parked connection
//!   (a return that finds it full goes through the lock, whose transition
//!   parks it first): taking it is the LIFO order of the idle set;
//! * a return leaves its connection here only while the gate is open, and
//!   the gate is open only while the pool is open and not shrinking, nobody
//!   waits and the maintenance task wakes by the connection's first
//!   deadline (lifetime, idle timeout, keepalive ping): so it is closed or
//!   pinged on time, exactly as if it were parked. A return that finds the
//!   gate changed after leaving its connection (a transition ended
//!   meanwhile) runs a transition itself, which parks it; otherwise the
//!   transition that changed the gate parks it: either way a getter that
//!   began waiting in that transition gets it (the gate's store and the
//!   slot's push are ordered by `SeqCst`: one of the two sees the other);
//! * a connection lent before its key was closed (`Pool::close_key`) is
//!   of an older generation: it neither rests here nor is lent from here
//!   (its record, retired, closes it when it is parked).

use crate::clock::Tick;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{ConnId, Expiry, Lent, LentSlot};
use crate::sync::{AtomicU32, AtomicU64, Ordering, Slot};

/// A connection resting in the [`Recent`] slot, with what its record would
/// say that changed since it was lent under the lock (the record is
/// brought up to date when it is parked).
#[derive(Debug)]
pub(crate) struct Rested<C> {
    pub(crate) conn: C,
    pub(crate) id: ConnId,
    pub(crate) lent: LentSlot,
    /// The connection's `uses`.
    pub(crate) uses: u64,
    /// At rest since (its return).
    pub(crate) since: Tick,
}

/// A connection lent exclusively, given back: its slot in the lent count,
/// its record's id, itself and its `uses` (this lending included).
pub(crate) type Back<C> = (LentSlot, ConnId, C, u64);

/// What [`Recent::put`] did.
pub(crate) enum Put<C> {
    /// Kept.
    Kept,
    /// Kept, but a transition began meanwhile: run one, which parks it.
    KeptLate,
    /// Not kept: give it back through the lock.
    Refused(Back<C>),
}

/// What the slot knows of a connection without its record: stamped under
/// the lock each time the connection is lent from there
/// ([`Recent::stamp`]), read by the returns and checkouts that pass it on
/// without the lock (which hold it meanwhile, so nothing else writes here).
/// Never stamped, its lifetime reads as over: it never rests.
#[derive(Debug, Default)]
struct Stamp {
    /// Its lifetime's end (an [`Expiry`]'s tick).
    expiry: AtomicU64,
    /// Its keepalive interval (jitter drawn), in nanoseconds (`u64::MAX`:
    /// none): due that long after it comes to rest.
    ping_every_ns: AtomicU64,
    /// The retirement generation it was lent in.
    generation: AtomicU32,
    /// When it was lent last (for the use-time histogram).
    lent_at: AtomicU64,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Recent<C> {
    /// 0: closed. Otherwise when the maintenance task wakes next (a
    /// [`Tick`]; `NEVER` if it is not due), which a connection's first
    /// deadline must not precede for it to rest here.
    gate: AtomicU64,
    /// The retirement generation: connections lent under an older one were
    /// retired (their key closed) and must not rest here, nor be lent from
    /// here.
    generation: AtomicU32,
    slot: Slot<Rested<C>>,
    /// By connection id (the idle set's, which reuses the smallest free
    /// ones): a connection whose id is past the end never rests here.
    stamps: Box<[Stamp]>,
    /// The idle timeout, in nanoseconds (`u64::MAX`: none).
    idle_ns: u64,
    max_uses: u64,
}

/// At most this many connections (by id) may rest in the slot: the stamps
/// are allocated at build, for the pool's cap up to this.
const MAX_STAMPS: usize = 1024;

impl<C> Recent<C> {
    /// An empty slot, its gate closed, for a pool configured as `config`;
    /// `used` if the pool may use it (one key value), else it takes no room.
    pub(crate) fn new(config: &Config, used: bool) -> Self {
        let stamps = if used {
            config.limits().max_open.min(MAX_STAMPS)
        } else {
            0
        };
        Self {
            gate: AtomicU64::new(0),
            generation: AtomicU32::new(0),
            slot: Slot::new(),
            stamps: (0..stamps).map(|_| Stamp::default()).collect(),
            idle_ns: config.idle_timeout_ns,
            max_uses: config.set.max_uses.unwrap_or(u64::MAX),
        }
    }

    /// Under the lock: the connection `id` is lent exclusively at `now`,
    /// with this lifetime and keepalive interval, in `generation`.
    #[inline]
    pub(crate) fn stamp(
        &self,
        id: ConnId,
        expiry: Expiry,
        ping_every_ns: u64,
        generation: u32,
        now: Tick,
    ) {
        if let Some(stamp) = self.stamps.get(id.index()) {
            stamp.expiry.store(expiry.at().raw(), Ordering::Relaxed);
            stamp.ping_every_ns.store(ping_every_ns, Ordering::Relaxed);
            stamp.generation.store(generation, Ordering::Relaxed);
            if Metrics::ON {
                stamp.lent_at.store(now.raw(), Ordering::Relaxed);
            }
        }
    }

    /// How long the connection `id` (lent exclusively) was lent, at `now`
    /// (for metrics: a single-key pool's lendings from the slot stamp no
    /// record).
    pub(crate) fn held_for(&self, id: ConnId, now: Tick) -> Option<std::time::Duration> {
        let stamp = self.stamps.get(id.index())?;
        Some(now.saturating_duration_since(Tick::from_raw(stamp.lent_at.load(Ordering::Relaxed))))
    }

    /// Checkout: lends what rests here if the idle path would lend it as it
    /// is at `now`; `Err` hands back one it would not (to be parked under
    /// the lock); `Ok(None)` if nothing rests here or the gate is closed.
    #[inline]
    pub(crate) fn take(&self, now: Tick, config: &Config) -> Result<Option<Lent<C>>, Rested<C>> {
        if self.gate.load(Ordering::Relaxed) == 0 {
            return Ok(None);
        }
        let Some(rested) = self.slot.pop() else {
            return Ok(None);
        };
        // (It rests here: it was stamped.)
        let stamp = &self.stamps[rested.id.index()];
        if stamp.expiry.load(Ordering::Relaxed) <= now.raw()
            || config.idle_timed_out(rested.since, now)
            || config.health_check_due(rested.since, now)
            || self.retired(stamp)
        {
            return Err(rested);
        }
        if Metrics::ON {
            stamp.lent_at.store(now.raw(), Ordering::Relaxed);
        }
        Ok(Some(Lent::Own {
            conn: rested.conn,
            id: rested.id,
            lent: rested.lent,
            uses: rested.uses + 1,
        }))
    }

    /// Return: keeps `back` if the gate is open, the slot empty, the
    /// connection stamped and not retiring, and the maintenance task wakes
    /// by its first deadline.
    #[inline]
    pub(crate) fn put(&self, back: Back<C>, now: Tick) -> Put<C> {
        let gate = self.gate.load(Ordering::SeqCst);
        let (lent, id, conn, uses) = back;
        let Some(stamp) = self.stamps.get(id.index()) else {
            return Put::Refused((lent, id, conn, uses));
        };
        let expiry = stamp.expiry.load(Ordering::Relaxed);
        if gate == 0
            || expiry <= now.raw()
            || uses >= self.max_uses
            || self.retired(stamp)
            || gate > self.first_deadline(expiry, stamp, now)
        {
            return Put::Refused((lent, id, conn, uses));
        }
        let rested = Rested {
            conn,
            id,
            lent,
            uses,
            since: now,
        };
        if let Err(back) = self.slot.push(rested) {
            return Put::Refused((back.lent, back.id, back.conn, back.uses));
        }
        // Pairs with `set_gate`'s store and the `take_rested` after it:
        // either this load sees the store, or that take sees this push.
        if self.gate.load(Ordering::SeqCst) == gate {
            Put::Kept
        } else {
            Put::KeptLate
        }
    }

    /// When a connection (its lifetime ending at `expiry`) resting from
    /// `now` on must be looked at first (lifetime, idle timeout, keepalive
    /// ping; as a raw tick, `NEVER` if never), as its record would say.
    #[inline]
    fn first_deadline(&self, expiry: u64, stamp: &Stamp, now: Tick) -> u64 {
        let ping = stamp.ping_every_ns.load(Ordering::Relaxed);
        expiry.min(now.add_nanos(self.idle_ns.min(ping)).raw())
    }

    #[inline]
    fn retired(&self, stamp: &Stamp) -> bool {
        stamp.generation.load(Ordering::Relaxed) != self.generation.load(Ordering::Acquire)
    }

    /// Under the lock (the start of every transition, and `set_gate`'s
    /// caller): hands back what rests here, to be parked.
    #[inline]
    pub(crate) fn take_rested(&self) -> Option<Rested<C>> {
        // (An empty queue's `pop` fences; looking first does not, and these
        // `SeqCst` loads after `set_gate`'s `SeqCst` store still see a push
        // that `put`'s second look at the gate did not see changed.)
        if self.slot.is_empty() {
            return None;
        }
        self.slot.pop()
    }

    /// Under the lock, at the end of a transition: returns may rest here
    /// if `open`, to be looked at by `wake` (the maintenance task's next
    /// wake-up, if any). True if that admits fewer returns than the gate
    /// did: then a return may have left its connection here meanwhile,
    /// under the old gate, and the caller parks what
    /// [`take_rested`](Recent::take_rested) hands back.
    #[inline]
    pub(crate) fn set_gate(&self, open: bool, wake: Option<Tick>) -> bool {
        let new = if open {
            wake.map_or(Tick::NEVER.raw(), |t| t.raw().max(1))
        } else {
            0
        };
        // Only the lock's holder stores it.
        let old = self.gate.load(Ordering::Relaxed);
        if new == old {
            return false;
        }
        self.gate.store(new, Ordering::SeqCst);
        old != 0 && (new == 0 || new > old)
    }

    /// The connections lent so far are retired: none rests here or is lent
    /// from here again. `generation` is the new one (the state's, which
    /// lendings under the lock stamp).
    pub(crate) fn retire_lent(&self, generation: u32) {
        self.generation.store(generation, Ordering::Release);
    }

    /// Whether a connection rests here (for snapshots, which count it idle).
    pub(crate) fn len(&self) -> usize {
        usize::from(!self.slot.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::builder::Builder;
    use crate::manager::NeverDials as Nothing;
    use crate::policy::HealthCheck;
    use crate::store::KeyId;

    const NOW: Tick = Tick::from_raw(1 << 62);

    /// The maintenance task's wake-up: at the idle timeout of a connection
    /// returned `NOW`.
    const WAKE: Tick = Tick::from_raw((1 << 62) + 10_000_000_000);

    fn secs(n: u64) -> u64 {
        Duration::from_secs(n).as_nanos() as u64
    }

    /// Two connections at most, idle timeout 10 s, then `set`.
    fn config(set: impl FnOnce(Builder<Nothing>) -> Builder<Nothing>) -> Config {
        config_of(|b| set(b.idle_timeout(Duration::from_secs(10))))
    }

    fn config_of(set: impl FnOnce(Builder<Nothing>) -> Builder<Nothing>) -> Config {
        set(Builder::new(Nothing).max_open(2))
            .validate()
            .expect("valid")
    }

    /// A slot whose gate is open for the maintenance task waking at
    /// `wake`, with connection 0 stamped (no lifetime, no keepalive).
    fn open_slot(config: &Config, wake: Option<Tick>) -> Recent<u64> {
        let recent = Recent::new(config, true);
        recent.stamp(ConnId(0), Expiry::NEVER, u64::MAX, 0, NOW);
        recent.set_gate(true, wake);
        recent
    }

    /// Connection `id` (which is `conn`), given back after `uses` lendings.
    fn back(id: u32, conn: u64, uses: u64) -> Back<u64> {
        (LentSlot::new(KeyId::from_index(0)), ConnId(id), conn, uses)
    }

    fn kept(put: Put<u64>) -> bool {
        match put {
            Put::Kept => true,
            Put::KeptLate => panic!("no transition began"),
            Put::Refused(_) => false,
        }
    }

    fn lent(taken: Result<Option<Lent<u64>>, Rested<u64>>) -> Option<(u64, u64)> {
        match taken.expect("fit to lend") {
            Some(Lent::Own { conn, uses, .. }) => Some((conn, uses)),
            Some(Lent::Handle { .. }) => panic!("exclusive"),
            None => None,
        }
    }

    #[test]
    fn a_closed_gate_keeps_nothing_and_lends_nothing() {
        let config = config(|b| b);
        let recent = Recent::new(&config, true);
        recent.stamp(ConnId(0), Expiry::NEVER, u64::MAX, 0, NOW);
        assert!(
            !kept(recent.put(back(0, 7, 1), NOW)),
            "closed from the start"
        );
        assert!(!recent.set_gate(true, Some(WAKE)), "opening admits more");
        assert!(kept(recent.put(back(0, 7, 1), NOW)));
        assert!(recent.set_gate(false, None), "closing admits fewer");
        let rested = recent.take_rested().expect("handed back");
        assert_eq!((rested.conn, rested.uses, rested.since), (7, 1, NOW));
        assert!(!kept(recent.put(back(0, 7, 1), NOW)), "closed again");
        assert_eq!(lent(recent.take(NOW, &config)), None);
    }

    #[test]
    fn what_rests_is_lent_once_its_uses_counting_the_lending() {
        let config = config(|b| b);
        let recent = open_slot(&config, Some(WAKE));
        assert!(kept(recent.put(back(0, 7, 1), NOW)));
        assert_eq!(recent.len(), 1);
        assert!(!kept(recent.put(back(0, 8, 1), NOW)), "one place");
        assert_eq!(lent(recent.take(NOW, &config)), Some((7, 2)));
        assert_eq!(lent(recent.take(NOW, &config)), None);
        assert_eq!(recent.len(), 0);
    }

    #[test]
    fn a_return_rests_only_if_the_maintenance_task_wakes_by_its_first_deadline() {
        let config = config(|b| b);
        // Idle timeout 10 s from its return.
        let late = open_slot(&config, Some(NOW.add_nanos(secs(10) + 1)));
        assert!(!kept(late.put(back(0, 7, 1), NOW)));
        let on_time = open_slot(&config, Some(NOW.add_nanos(secs(10))));
        assert!(kept(on_time.put(back(0, 7, 1), NOW)));
        // No wake-up planned: only a connection with no deadline rests.
        assert!(!kept(open_slot(&config, None).put(back(0, 7, 1), NOW)));
        let timeless = config_of(|b| b.idle_timeout(None));
        assert!(kept(open_slot(&timeless, None).put(back(0, 7, 1), NOW)));
        // Its own keepalive interval (5 s) comes first, and its lifetime.
        let pinged = open_slot(&config, Some(NOW.add_nanos(secs(6))));
        pinged.stamp(ConnId(0), Expiry::NEVER, secs(5), 0, NOW);
        assert!(!kept(pinged.put(back(0, 7, 1), NOW)));
        let ending = open_slot(&config, Some(NOW.add_nanos(secs(6))));
        ending.stamp(
            ConnId(0),
            Expiry::lifetime_ends(NOW.add_nanos(secs(5))),
            u64::MAX,
            0,
            NOW,
        );
        assert!(!kept(ending.put(back(0, 7, 1), NOW)));
    }

    #[test]
    fn retired_used_up_expired_or_unstamped_connections_do_not_rest() {
        let config = config(|b| b.max_uses(3));
        let recent = open_slot(&config, Some(WAKE));
        assert!(!kept(recent.put(back(0, 7, 3), NOW)), "used up");
        assert!(!kept(recent.put(back(1, 7, 1), NOW)), "never stamped");
        assert!(!kept(recent.put(back(2, 7, 1), NOW)), "past the stamps");
        recent.stamp(ConnId(0), Expiry::lifetime_ends(NOW), u64::MAX, 0, NOW);
        assert!(
            !kept(recent.put(back(0, 7, 1), NOW)),
            "its lifetime is over"
        );
        recent.stamp(ConnId(0), Expiry::NEVER, u64::MAX, 0, NOW);
        recent.retire_lent(1);
        assert!(
            !kept(recent.put(back(0, 7, 1), NOW)),
            "lent before its key closed"
        );
        recent.stamp(ConnId(0), Expiry::NEVER, u64::MAX, 1, NOW);
        assert!(kept(recent.put(back(0, 7, 1), NOW)), "lent after");
    }

    #[test]
    fn a_checkout_hands_back_what_it_would_not_lend() {
        let stale = config(|b| b);
        let health = config(|b| b.health_check(HealthCheck::IfIdleFor(Duration::from_secs(1))));
        let cases: [(&Config, u64, bool); 3] = [
            (&stale, secs(10), false),
            (&health, secs(1), false),
            (&stale, secs(5), true),
        ];
        for (config, after, retire) in cases {
            let recent = open_slot(config, Some(NOW.add_nanos(secs(10))));
            assert!(kept(recent.put(back(0, 7, 1), NOW)));
            if retire {
                recent.retire_lent(1);
            }
            let taken = recent.take(NOW.add_nanos(after), config);
            let rested = taken.expect_err("handed back");
            assert_eq!(rested.since, NOW, "at rest since its return");
            assert_eq!(recent.len(), 0);
        }
    }
}
