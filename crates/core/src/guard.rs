//! The guard a borrower holds: [`Pooled`] gives the connection back on drop.

use std::borrow::Cow;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::engine::{Back, KeyId, Lent};
use crate::inner::PoolInner;
use crate::manager::{Health, Manager};
use crate::reason::CloseReason;

/// A connection lent by the pool. Dereferences to the connection; dropping it
/// gives the connection back (to the next waiter of its key, or to the idle
/// list, or — if [`Manager::health`] says it is broken, or it was marked
/// broken, or it reached its `max_lifetime` or `max_uses`, or the idle caps
/// are full — to a close).
///
/// For a shared connection (see [`Lending`](crate::Lending)), the guard holds
/// this borrower's own handle (a clone of the connection) and dropping it
/// gives back one borrower's place: the connection serves the next waiter,
/// and rests in the idle list once its last borrower is gone. Marking it
/// broken drains it: no new borrower, closed when the last one returns.
///
/// The guard borrows the [`Pool`](crate::Pool) it came from (`'a`), as
/// bb8's `get` does: giving the connection back then costs no reference
/// count, which is a third of a get + return's atomic operations on the
/// hot path. [`Pooled::into_owned`] turns it into a `Pooled<'static, M>`
/// that keeps the pool alive itself, for a task or a response body that
/// outlives the borrow.
///
/// Its operations are associated functions (`Pooled::detach(conn)`), so they
/// never shadow a method of the connection itself.
pub struct Pooled<'a, M: Manager> {
    /// The pool the connection goes back to: borrowed from the
    /// [`Pool`](crate::Pool) handle the get was called on, or kept alive by
    /// the guard ([`Pooled::into_owned`]).
    inner: Cow<'a, Arc<PoolInner<M>>>,
    /// `Some` until the guard is dropped or detached.
    conn: Option<Lent<M::Connection>>,
    /// Set: closed for this reason instead of returned.
    close: Option<CloseReason>,
    /// Closed by its server under its first request (`mark_refused`).
    refused: bool,
}

impl<'a, M: Manager> Pooled<'a, M> {
    pub(crate) fn new(inner: &'a Arc<PoolInner<M>>, conn: Lent<M::Connection>) -> Self {
        Self {
            inner: Cow::Borrowed(inner),
            conn: Some(conn),
            close: None,
            refused: false,
        }
    }

    /// The same guard, keeping the pool alive itself instead of borrowing
    /// the [`Pool`](crate::Pool) handle: for a connection moved into a
    /// spawned task, stored, or returned past the handle's scope. Costs one
    /// reference count now and one when the guard drops.
    pub fn into_owned(mut this: Self) -> Pooled<'static, M> {
        Pooled {
            inner: Cow::Owned(Arc::clone(&this.inner)),
            conn: this.conn.take(),
            close: this.close,
            refused: this.refused,
        }
    }

    /// What the guard holds (an associated function: a method would
    /// shadow the connection's own through `Deref`).
    fn lent(this: &Self) -> &Lent<M::Connection> {
        this.conn.as_ref().expect("connection present until drop")
    }

    pub(crate) fn key_id(this: &Self) -> KeyId {
        Pooled::lent(this).back.key()
    }

    /// The shared set's slot, for a handle to a shared connection.
    pub(crate) fn shared_slot(this: &Self) -> Option<usize> {
        match this.conn.as_ref().map(|lent| &lent.back) {
            Some(Back::Handle(_, slot)) => Some(*slot),
            _ => None,
        }
    }

    /// Sets what happens if the guard drops now: closed for `reason`, or
    /// (`None`) returned.
    pub(crate) fn set_close(this: &mut Self, reason: Option<CloseReason>) {
        this.close = reason;
    }

    /// Drops the guard, closing the connection for `reason`; `health`, if
    /// given, is what [`Manager::health`] just said of it, acted on without
    /// asking again.
    pub(crate) fn close_for(mut this: Self, reason: CloseReason, health: Option<Health>) {
        this.close = Some(reason);
        if let Some(health) = health {
            let conn = this.conn.take().expect("connection present until drop");
            this.inner.close_checked(conn, reason, health);
        }
    }

    /// Takes the connection out of the pool for good. Its slot is freed at
    /// once (a waiter may dial in its place); closing it is now the caller's job.
    ///
    /// For a shared connection, the handle is detached: the caller keeps it,
    /// and the pool counts one borrower less but keeps (and in time closes)
    /// the connection, which other borrowers use too.
    pub fn detach(mut this: Self) -> M::Connection {
        let lent = this.conn.take().expect("connection present until drop");
        this.inner.detach(lent.back);
        lent.conn
    }

    /// Marks the connection broken: it is closed instead of reused when the
    /// guard drops (for example after an I/O error left it in an unknown state).
    pub fn mark_broken(this: &mut Self) {
        this.close = Some(CloseReason::Broken);
    }

    /// Marks the connection broken because its server closed it before
    /// answering the request sent on it. On a connection lent for the
    /// first time (and exclusively), this is a failed dial of its key: a
    /// server that accepts connections and closes them unanswered (a load
    /// balancer in front of a backend that is down, a server at its
    /// connection limit) backs off like one that refuses them, where
    /// otherwise every retry would be a new connection. Its key then has
    /// one connection at a time, a trial, until one comes back unrefused:
    /// each failure grows the backoff, and the pool's probes find the
    /// server when it answers again (see [`Error::Backoff`](crate::Error::Backoff)).
    /// `HttpService` calls it for HTTP/1.1; a user's service over its own
    /// protocol calls it where the protocol has no round trip of its own in
    /// the dial.
    pub fn mark_refused(this: &mut Self) {
        this.close = Some(CloseReason::Broken);
        this.refused = Pooled::uses(this) == 1 && !Pooled::is_shared(this);
    }

    /// Counts a request sent again elsewhere after meeting this connection
    /// closed by its server, or refused unprocessed (in the pool's and its
    /// key's [`retries`](crate::Counters::retries)): for a service that
    /// retries requests on another connection.
    pub fn count_retry(this: &Self) {
        this.inner.state.lock().count_retry(Pooled::key_id(this));
    }

    /// Whether [`mark_broken`](Pooled::mark_broken) was called.
    pub fn is_marked_broken(this: &Self) -> bool {
        this.close == Some(CloseReason::Broken)
    }

    /// How many times this connection was lent, this time included (for a
    /// shared connection: borrowers it had, this one included).
    pub fn uses(this: &Self) -> u64 {
        this.conn.as_ref().map_or(0, |lent| lent.uses)
    }

    /// Whether this is a handle to a shared connection (other borrowers may
    /// be using the same connection at the same time).
    pub fn is_shared(this: &Self) -> bool {
        Pooled::shared_slot(this).is_some()
    }
}

impl<M: Manager> Deref for Pooled<'_, M> {
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        &Pooled::lent(self).conn
    }
}

impl<M: Manager> DerefMut for Pooled<'_, M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self
            .conn
            .as_mut()
            .expect("connection present until drop")
            .conn
    }
}

impl<M: Manager> Drop for Pooled<'_, M> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.inner.give_back(conn, self.close, self.refused);
        }
    }
}

impl<M: Manager> fmt::Debug for Pooled<'_, M>
where
    M::Connection: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pooled")
            .field("conn", &self.conn.as_ref().map(|_| &**self))
            .field("close", &self.close)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::{Manager, Pool, Pooled, async_trait};

    struct Sevens;

    #[async_trait]
    impl Manager for Sevens {
        type Key = ();
        type Connection = u64;
        type Error = std::io::Error;

        async fn connect(&self, _key: &()) -> Result<u64, std::io::Error> {
            Ok(7)
        }
    }

    /// A guard borrows its pool handle: a get and its return write no
    /// reference count; an owned guard keeps the pool alive until it drops.
    #[tokio::test(start_paused = true)]
    async fn a_guard_borrows_its_pool_until_made_owned() {
        let pool = Pool::builder(Sevens).initial(1).build().await.unwrap();
        let handles = Arc::strong_count(&pool.inner);
        let conn = pool.get().await.unwrap();
        assert_eq!(Arc::strong_count(&pool.inner), handles, "borrowed");
        let owned: Pooled<'static, Sevens> = Pooled::into_owned(conn);
        assert_eq!(Arc::strong_count(&pool.inner), handles + 1, "owned");
        assert_eq!(*owned, 7);
        assert_eq!(pool.state().lent, 1, "still lent once made owned");
        drop(owned);
        assert_eq!(Arc::strong_count(&pool.inner), handles);
        assert_eq!(pool.state().lent, 0);
        assert_eq!(pool.state().idle, 1);
    }
}
