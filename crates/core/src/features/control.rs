//! **Runtime control** ([`Transition::resize`], [`Transition::close_keys`],
//! [`Transition::close_idle`]): the caps change under the lock like any
//! other state, and the pool is brought under them with the same
//! hand-off rules as ever.
//!
//! *Shrinking*: idle connections over an idle cap go first (a key's oldest
//! over `max_idle_per_key`, then the pool's least recently used over
//! `max_idle`), then idle connections of keys over an open cap. What is
//! still over an open cap is lent (or dialing, or out for a ping): the
//! state is marked `retiring`, and while it is, a connection that comes
//! free for a key or a pool over its open cap is closed instead of placed
//! (`Transition::over_open_cap`); the mark goes when nothing is over
//! (while it is on, a connection coming free for a key under its cap, in a
//! pool under its own, costs a scan of the keys to find that out). No dial
//! starts meanwhile: the dial checks already compare with the caps; a dial
//! already in flight serves its getter.
//!
//! *Growing*: the first getters waiting for a dial slot get their dials,
//! and keys below `min_idle` are refilled.
//!
//! *Closing a key on demand*: its idle connections close now; those lent
//! exclusively are retired ([`Conn::retire`](crate::engine::Conn::retire):
//! their lifetime ends, so their return closes them), shared ones drain;
//! its epoch is bumped, so dials and keepalive pings in flight close what
//! they bring back (`dial_done`, `keepalive_done`).

use super::{State, Transition};
use crate::engine::{Due, KeyId};
use crate::error::ConnectError;
use crate::limits::Limits;
use crate::manager::Manager;
use crate::reason::CloseReason;
use crate::stats::KeyState;

impl<M: Manager> State<M> {
    /// Every tracked key with its snapshot (for `retain`).
    pub(crate) fn key_snapshots(&self) -> Vec<(M::Key, KeyState)> {
        self.keys
            .ids()
            .into_iter()
            .filter_map(|id| {
                let key = self.keys.get(id).key.clone();
                let state = self.key_snapshot(&key)?;
                Some((key, state))
            })
            .collect()
    }

    /// Whether `id` or the pool is over its open cap.
    fn is_over(&self, id: KeyId) -> bool {
        self.counts().open > self.limits.max_open
            || self.keys.get(id).counts().open > self.limits.max_open_per_key
    }

    /// Whether any key or the pool is over its open cap.
    fn any_over(&self) -> bool {
        self.counts().open > self.limits.max_open
            || self
                .keys
                .ids()
                .into_iter()
                .any(|id| self.keys.get(id).counts().open > self.limits.max_open_per_key)
    }
}

impl<M: Manager> Transition<'_, M> {
    /// The caps become `limits` (checked by the caller): see the module docs.
    pub(crate) fn resize(mut self, limits: Limits) {
        let st = &mut *self.st;
        st.limits = limits;
        st.keys.ext.set_min_idle(limits.min_idle);
        st.keys
            .update_ext(|keys, key, ext| ext.min_idle = keys.min_idle_of(key));
        if !st.closed {
            self.shed_idle();
            self.st.retiring = self.st.any_over();
            self.grow();
        }
        self.finish();
    }

    /// `key`'s own `min_idle` becomes `n` (checked by the caller).
    pub(crate) fn set_min_idle_for(mut self, key: &M::Key, n: usize) {
        self.st.keys.ext.set_min_idle_for(key, n);
        let id = self.st.keys.id_or_insert(key);
        self.st.keys.get_mut(id).ext.min_idle = n;
        self.refill(id);
        self.st.unused(id);
        self.finish();
    }

    /// Closes every connection of each of `keys` (see the module docs).
    pub(crate) fn close_keys<'k>(mut self, keys: impl Iterator<Item = &'k M::Key>)
    where
        M::Key: 'k,
    {
        if !self.st.closed {
            for key in keys {
                if let Some(id) = self.st.keys.id(key) {
                    self.close_key(id);
                }
            }
        }
        self.finish();
    }

    /// A connection of `id` found its server changed: every connection of
    /// the key is closed as on demand (see
    /// [`Health::ServerChanged`](crate::Health::ServerChanged)). Within the
    /// key's failure memory of its last clear, by a connection dialed since
    /// (one from before was retired and clears nothing), the dials reached
    /// a server still changed: a refused dial too, so the key backs off and
    /// is probed, one connection at a time, instead of redialing into the
    /// same server at every clear.
    pub(crate) fn clear_key(&mut self, id: KeyId) {
        self.st.tally_with(id, |c| c.key_clears += 1);
        let memory = self.st.keys.ext.failure_memory;
        let outage = &mut self.st.keys.get_mut(id).ext.outage;
        let again = outage
            .cleared_at
            .is_some_and(|at| self.now.saturating_duration_since(at) < memory);
        outage.cleared_at = Some(self.now);
        // The key is remembered that long (`Keys::forget_if_unused`).
        self.schedule(self.now + memory, Due::Key(id));
        self.close_key(id);
        if again {
            self.refused(id, ConnectError::ServerChanged);
        }
    }

    fn close_key(&mut self, id: KeyId) {
        let entry = self.st.keys.get_mut(id);
        entry.epoch = entry.epoch.wrapping_add(1);
        self.st.records.for_each_held(|key, conn| {
            if key == id {
                conn.retire();
            }
        });
        self.st.ext.borrowed.drain_key(id, CloseReason::Retired);
        while let Some(cid) = self.st.records.newest(id).map(|(cid, _)| cid) {
            let conn = self.st.remove_conn(cid);
            self.close_conn(id, conn.conn, CloseReason::Retired);
        }
        self.st.unused(id);
    }

    /// Closes every idle connection now (lent ones, dials and pings are
    /// left alone); keys with `min_idle` refill.
    pub(crate) fn close_idle(mut self) {
        if !self.st.closed {
            while let Some((id, conn)) = self.st.records.pop_lru() {
                let conn = conn.conn.expect("an idle connection is present");
                self.close_conn(id, conn, CloseReason::Retired);
            }
        }
        self.finish();
    }

    /// Whether `id` or the pool is over an open cap after a shrink; clears
    /// the mark once nothing is.
    pub(crate) fn over_open_cap(&mut self, id: KeyId) -> bool {
        if self.st.is_over(id) {
            return true;
        }
        self.st.retiring = self.st.any_over();
        false
    }

    /// Closes idle connections over the caps: the idle caps, then the open
    /// caps (as far as idle connections go).
    fn shed_idle(&mut self) {
        let limits = self.st.limits;
        for id in self.st.keys.ids() {
            while let Some(cid) = self.st.records.oldest(id)
                && (self.st.records.len_of(id) > limits.max_idle_per_key
                    || self.st.keys.get(id).counts().open > limits.max_open_per_key)
            {
                let conn = self.st.remove_conn(cid);
                self.close_for_room(id, conn.conn, CloseReason::Retired);
            }
        }
        while self.st.records.len() > limits.max_idle || self.st.counts().open > limits.max_open {
            let Some((id, conn)) = self.st.records.pop_lru() else {
                break;
            };
            let conn = conn.conn.expect("an idle connection is present");
            self.close_for_room(id, conn, CloseReason::Retired);
        }
    }

    /// Hands the room larger caps made to getters waiting for a dial, and
    /// refills `min_idle`.
    fn grow(&mut self) {
        for id in self.st.keys.ids() {
            while self.start_queued_dial(id) {}
        }
        while self.st.counts().open < self.st.limits.max_open
            && let Some((w, id)) = self.pop_global_waiter()
        {
            self.start_dial(id, Some(w));
        }
        for id in self.st.keys.ids() {
            self.refill(id);
        }
    }
}
