//! The ids that name things in the store: a key, a waiter, a connection's
//! record. Each is a slab index (plus a generation where slots are reused
//! while an id may still be held); what keeps each one valid is in its doc.

/// Index of a key's state in the registry.
///
/// Stable while the key has an open connection or a live waiter: everything
/// that holds a `KeyId` (an idle entry, a lent guard, a dial, a waiter) is
/// counted in `open` or `waiting`, and the registry only forgets a key when
/// both are zero, so no `KeyId` outlives its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct KeyId(u32);

impl KeyId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }

    pub(crate) fn from_index(index: usize) -> Self {
        KeyId(u32::try_from(index).expect("more than 2^32 live keys"))
    }
}

/// A waiter's slot and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaiterId {
    pub(crate) slot: usize,
    pub(crate) generation: u64,
}

/// Names a connection the idle set holds, idle or not, until it is removed.
/// A connection lent exclusively keeps its entry (and its life record)
/// here: the borrower takes only the connection, and gives it back to the
/// same entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnId(pub(crate) u32);
