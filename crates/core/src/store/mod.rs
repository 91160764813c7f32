//! The data structures the pool's state is made of, each keeping its own
//! invariants (in its type's docs). The core decides what happens to the
//! pool; the store keeps the structures consistent and answers questions
//! about them (which key is unused, when a connection retires), given the
//! configuration.

mod borrowed;
mod conn;
mod counts;
mod deadlines;
mod ids;
mod keys;
mod lent;
mod queue;
mod records;
mod waiters;

pub(crate) use borrowed::Borrowed;
pub(crate) use conn::{Conn, IdleTimeout, Site};
pub(crate) use counts::{Change, Counts, LentSlot, Place, Slot};
pub(crate) use deadlines::{Deadlines, Due};
pub(crate) use ids::{ConnId, KeyId, WaiterId};
pub(crate) use keys::Keys;
pub(crate) use lent::{Back, Lent};
pub(crate) use queue::WaitQueue;
pub(crate) use records::{IdleRef, Records};
pub(crate) use waiters::Waiters;
