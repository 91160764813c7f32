//! Runtime control of a running pool: its caps ([`Limits`],
//! [`Pool::resize`]), `min_idle` per key, and closing connections on demand
//! ([`Pool::retain`], [`Pool::close_key`], [`Pool::close_idle`]).
//!
//! **Waiters** are never failed by any of these: a getter waiting for a key
//! whose connections are closed is served by the next connection of the key
//! that comes free, or by a new dial once the caps allow one (every close
//! frees a slot and hands it to the first getter waiting for a dial).
//!
//! **Dials in flight** of a key that is closed ([`Pool::close_key`], or
//! [`Pool::retain`] returning `false`) run on; the connection each makes is
//! closed on arrival, and a getter it was dialed for gets a new dial in its
//! place. Connections out for a keepalive ping are closed when the ping ends.
//!
//! **`min_idle`** is kept: a key below it after a close is refilled with new
//! dials, within the caps and the dial backoff, as after any other close.
//! That is what failover and credential rotation want (fresh connections to
//! the new primary, with the new credentials). For a destination that is
//! gone for good, set its `min_idle` to 0 ([`Pool::set_min_idle_for`]) before
//! closing it: nothing then dials it again until a getter asks for it, and
//! the pool forgets the key once nothing of it is left.

use crate::clock::Tick;
use crate::error::Error;
use crate::limits::Limits;
use crate::manager::Manager;
use crate::pool::Pool;
use crate::stats::KeyState;

impl<M: Manager> Pool<M> {
    /// The pool's caps now (as built, or as last [`resize`](Pool::resize)d).
    pub fn limits(&self) -> Limits {
        self.inner.state.lock().limits
    }

    /// Changes the caps of the running pool, all at once, after checking
    /// them as [`build`](crate::Builder::build) does (an [`Error::Config`]
    /// names the setting; the pool is then unchanged). Per-key `min_idle`
    /// values set with [`set_min_idle_for`](Pool::set_min_idle_for) must
    /// fit under the new `max_idle_per_key` too.
    ///
    /// Growing takes effect at once: getters waiting for a dial slot get
    /// their dials, and keys below a larger `min_idle` are refilled.
    /// Shrinking closes idle connections first (the least recently used,
    /// per key and across keys) until the idle caps and, as far as idle
    /// connections go, the open caps hold; connections still lent over an
    /// open cap are closed as they come back (instead of serving a waiter
    /// or resting idle), and no dial starts until the pool is under the cap.
    /// Connections closed to get under a cap are counted as
    /// [`Counters::closed_retired`](crate::Counters::closed_retired).
    ///
    /// ```
    /// # use connpool::{Manager, Pool, Limits, async_trait};
    /// # struct Echo;
    /// # #[async_trait]
    /// # impl Manager for Echo {
    /// #     type Key = (); type Connection = (); type Error = std::io::Error;
    /// #     async fn connect(&self, _: &()) -> Result<(), std::io::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = Pool::builder(Echo).max_open(8).build().await?;
    /// pool.resize(pool.limits().max_open(16).max_idle(16))?;
    /// assert_eq!(pool.limits().max_open, 16);
    /// # Ok(())
    /// # }
    /// ```
    pub fn resize(&self, limits: Limits) -> Result<(), Error<M::Error>> {
        limits.check(&Limits::named)?;
        let now = Tick::now();
        let state = self.inner.state.lock();
        // A key's own `min_idle` must fit under the new caps too.
        let most = state.keys.ext.max_min_idle_for();
        limits.check_min_idle("min_idle_for", most, &Limits::named)?;
        self.inner.transition_in(state, now, |t| t.resize(limits));
        self.inner.metrics.limits(&limits);
        Ok(())
    }

    /// Sets `min_idle` for `key` alone (the pool-wide value, from
    /// [`Builder::min_idle`](crate::Builder::min_idle) or
    /// [`resize`](Pool::resize), applies to the other keys): the pool starts
    /// tracking `key` now and refills it in the background. At most
    /// `max_idle_per_key`. A key with a non-zero `min_idle` is never
    /// forgotten; with 0 it is forgotten once unused, like any key, and the
    /// value is kept for when it comes back.
    pub fn set_min_idle_for(&self, key: &M::Key, n: usize) -> Result<(), Error<M::Error>> {
        let now = Tick::now();
        let state = self.inner.state.lock();
        (state.limits).check_min_idle("min_idle_for", n, &Limits::named)?;
        self.inner
            .transition_in(state, now, |t| t.set_min_idle_for(key, n));
        Ok(())
    }

    /// Closes every connection of the keys for which `keep(key, state)`
    /// returns `false` (`state` is the key's snapshot, as
    /// [`key_state`](Pool::key_state) gives it): idle ones now, lent ones
    /// when they come back, dials in flight when they end, connections out
    /// for a keepalive ping when it ends.
    ///
    /// `keep` runs outside the pool's lock, on a snapshot of the keys: a key
    /// the pool starts tracking meanwhile is kept. If it panics, the panic
    /// propagates and nothing is closed. Waiters, dials in flight and
    /// `min_idle` fare as with [`close_key`](Pool::close_key).
    pub fn retain(&self, mut keep: impl FnMut(&M::Key, &KeyState) -> bool) {
        let keys = self.inner.state.lock().key_snapshots();
        let doomed: Vec<M::Key> = keys
            .into_iter()
            .filter_map(|(key, state)| (!keep(&key, &state)).then_some(key))
            .collect();
        if !doomed.is_empty() {
            self.inner
                .transition(Tick::now(), |t| t.close_keys(doomed.iter()));
        }
    }

    /// Closes every connection of `key` ([`retain`](Pool::retain) for one
    /// key): after a failover, a credential rotation, or when a host leaves
    /// service discovery. Idle connections close now, lent ones when they
    /// come back (a handle to a shared connection: the connection takes no
    /// new borrower and closes after its last), keepalive pings when they
    /// end. Dials in flight run on, and the connection each makes is closed
    /// on arrival. Closes are counted as
    /// [`Counters::closed_retired`](crate::Counters::closed_retired).
    ///
    /// Getters waiting for the key are not failed: each freed slot goes to
    /// the first getter waiting for a dial, and a getter whose dial's
    /// connection is closed on arrival gets a new dial in its place. So
    /// they are served by new connections.
    ///
    /// The key's `min_idle` is kept: it is refilled with new dials, within
    /// the caps and the backoff, as after any other close. That is what a
    /// failover or a credential rotation wants (fresh connections, to the
    /// new primary, with the new credentials). For a destination gone for
    /// good, set its `min_idle` to 0 first
    /// ([`set_min_idle_for`](Pool::set_min_idle_for)): nothing then dials
    /// it until a getter asks for it, and the pool forgets the key once
    /// nothing of it is left.
    pub fn close_key(&self, key: &M::Key) {
        self.inner
            .transition(Tick::now(), |t| t.close_keys(std::iter::once(key)));
    }

    /// Closes every idle connection of every key now (Go's
    /// `CloseIdleConnections`); lent connections, dials in flight and
    /// connections out for a keepalive ping are left alone. Keys with a
    /// `min_idle` are refilled with new connections.
    pub fn close_idle(&self) {
        self.inner.transition(Tick::now(), |t| t.close_idle());
    }
}
