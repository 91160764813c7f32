//! The features, attached to the engine at its points (`attach`).

mod attach;
mod backoff;
mod borrowed;
mod control;
mod ext;
mod leaks;
mod lending;
mod outage;
mod snapshot;
mod tending;
mod warm;

pub(crate) use borrowed::Borrowed;
pub(crate) use ext::{KeyExt, KeysExt};
pub(crate) use outage::Outage;
pub(crate) use tending::{PingResult, Tended, Tending};
