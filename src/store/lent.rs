//! What a borrower is lent.

use super::ids::ConnId;

/// What a borrower holds: the connection itself, or a handle to a shared one.
///
/// `uses` is a `u64` although the record counts in a `u32`. With a `u32`
/// the enum is 24 bytes and packs its tag, the id and `uses` into shared
/// words: the compiler wrote the guard in 4-byte stores and, moving it on
/// to the caller, read it back in 8-byte loads, which the CPU cannot
/// forward from the stores (a stall on every get; `perf` put ~40% of one
/// thread's samples on two such loads). At 32 bytes the guard's words are
/// written and read whole where it was measured: a get + return on one
/// thread went from ~33 to ~27 ns in the pools benchmark (`BENCHMARKS.md`,
/// "Hot path", eighth session). Which moves stall is the compiler's
/// choice: rerun that benchmark after changing this type or
/// [`Pooled`](crate::Pooled).
#[derive(Debug)]
pub(crate) enum Lent<C> {
    /// Lent exclusively: the borrower holds the connection; its record stays
    /// in its idle-set entry `id`.
    Own {
        conn: C,
        id: ConnId,
        /// The connection's `uses`, this lending included.
        uses: u64,
    },
    /// A handle to the shared connection in `slot`.
    Handle {
        conn: C,
        slot: usize,
        /// The connection's `uses` when this handle was made.
        uses: u64,
    },
}
