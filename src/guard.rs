//! The guard a borrower holds: [`Pooled`] gives the connection back on drop.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::conn::Conn;
use crate::keys::KeyId;
use crate::manager::Manager;
use crate::pool::Shared;
use crate::stats::CloseReason;

/// A connection lent by the pool. Dereferences to the connection; dropping it
/// gives the connection back (to the next waiter of its key, or to the idle
/// list, or — if [`Manager::is_broken`] says so, or it was marked broken, or
/// it reached its `max_lifetime` or `max_uses`, or the idle caps are full —
/// to a close).
///
/// Its operations are associated functions (`Pooled::detach(conn)`), so they
/// never shadow a method of the connection itself.
pub struct Pooled<M: Manager> {
    shared: Arc<Shared<M>>,
    key: KeyId,
    /// `Some` until the guard is dropped or detached.
    conn: Option<Conn<M::Connection>>,
    /// Set: closed for this reason instead of returned.
    close: Option<CloseReason>,
}

impl<M: Manager> Pooled<M> {
    pub(crate) fn new(shared: Arc<Shared<M>>, key: KeyId, conn: Conn<M::Connection>) -> Self {
        Self {
            shared,
            key,
            conn: Some(conn),
            close: None,
        }
    }

    /// The connection with its life record.
    pub(crate) fn record(this: &mut Self) -> &mut Conn<M::Connection> {
        this.conn.as_mut().expect("connection present until drop")
    }

    pub(crate) fn key_id(this: &Self) -> KeyId {
        this.key
    }

    /// Sets what happens if the guard drops now: closed for `reason`, or
    /// (`None`) returned.
    pub(crate) fn set_close(this: &mut Self, reason: Option<CloseReason>) {
        this.close = reason;
    }

    /// Drops the guard, closing the connection for `reason`.
    pub(crate) fn close_for(mut this: Self, reason: CloseReason) {
        this.close = Some(reason);
    }

    /// Takes the connection out of the pool for good. Its slot is freed at
    /// once (a waiter may dial in its place); closing it is now the caller's job.
    pub fn detach(mut this: Self) -> M::Connection {
        let conn = this.conn.take().expect("connection present until drop");
        this.shared.detach(this.key);
        conn.conn
    }

    /// Marks the connection broken: it is closed instead of reused when the
    /// guard drops (for example after an I/O error left it in an unknown state).
    pub fn mark_broken(this: &mut Self) {
        this.close = Some(CloseReason::Broken);
    }

    /// Whether [`mark_broken`](Pooled::mark_broken) was called.
    pub fn is_marked_broken(this: &Self) -> bool {
        this.close == Some(CloseReason::Broken)
    }

    /// How many times this connection was lent, this time included.
    pub fn uses(this: &Self) -> u64 {
        this.conn.as_ref().map_or(0, |c| c.uses)
    }
}

impl<M: Manager> Deref for Pooled<M> {
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        &self
            .conn
            .as_ref()
            .expect("connection present until drop")
            .conn
    }
}

impl<M: Manager> DerefMut for Pooled<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self
            .conn
            .as_mut()
            .expect("connection present until drop")
            .conn
    }
}

impl<M: Manager> Drop for Pooled<M> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.shared.give_back(self.key, conn, self.close);
        }
    }
}

impl<M: Manager> fmt::Debug for Pooled<M>
where
    M::Connection: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pooled")
            .field("conn", &self.conn.as_ref().map(|c| &c.conn))
            .field("close", &self.close)
            .finish_non_exhaustive()
    }
}
