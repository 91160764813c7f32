//! The data structures the pool's state is made of, each keeping its own
//! invariants (in its type's docs). They know nothing of the pool's rules:
//! the core decides, the store keeps.

mod borrowed;
mod conn;
mod deadlines;
mod ids;
mod keys;
mod lent;
mod queue;
mod recent;
mod records;
mod waiters;

pub(crate) use borrowed::Borrowed;
pub(crate) use conn::{Conn, Site};
pub(crate) use deadlines::{Deadlines, Due};
pub(crate) use ids::{ConnId, KeyId, WaiterId};
pub(crate) use keys::Keys;
pub(crate) use lent::Lent;
pub(crate) use queue::WaitQueue;
pub(crate) use recent::Recent;
pub(crate) use records::{IdleRef, Records};
pub(crate) use waiters::Waiters;
