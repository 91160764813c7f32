//! What a borrower is lent, and what it gives back.

use super::counts::LentSlot;
use super::ids::{ConnId, KeyId};

/// What a borrower gives back, under the lock: a connection lent
/// exclusively (its slot in the lent count, its record's id and itself),
/// or its place in a shared connection (the handle itself is dropped
/// before the lock is taken).
#[derive(Debug)]
pub(crate) enum Back<C> {
    Own(LentSlot, ConnId, C),
    /// Of this key, in this slot of the shared set.
    Handle(KeyId, usize),
}

/// What a borrower holds: the connection itself, or a handle to a shared one.
///
/// An exclusively lent connection carries its [`LentSlot`], which its
/// return gives back; a handle carries none (the shared set holds the
/// connection's).
#[derive(Debug)]
pub(crate) enum Lent<C> {
    /// Lent exclusively: the borrower holds the connection; its record stays
    /// in its idle-set entry `id`.
    Own {
        conn: C,
        id: ConnId,
        /// Its place in the lent count.
        lent: LentSlot,
        /// The connection's `uses`, this lending included.
        uses: u64,
    },
    /// A handle to the shared connection in `slot`.
    Handle {
        conn: C,
        slot: usize,
        /// The connection's key.
        key: KeyId,
        /// The connection's `uses` when this handle was made.
        uses: u64,
    },
}

impl<C> Lent<C> {
    /// The key of the connection lent.
    #[inline]
    pub(crate) fn key(&self) -> KeyId {
        match self {
            Lent::Own { lent, .. } => lent.key(),
            Lent::Handle { key, .. } => *key,
        }
    }
}
