//! The features, attached to the engine at its points: [`Features`]
//! implements [`Points`](crate::engine::Points) (in `attach`, whose table
//! says which feature acts at which point). The rest of the crate uses the
//! engine through [`State`], [`Transition`], [`Conn`] and [`Effects`]: the
//! engine's, with the features attached.
//!
//! | feature | its transitions | its records |
//! |---|---|---|
//! | backoff, probes and trials after failed dials | `backoff` | `outage` ([`Outage`], per key) |
//! | shared lending (one connection, many borrowers) | `shared` | `shared_set` ([`Borrowed`]); `ext` (a key's hint, a connection's borrowers) |
//! | keepalive pings and recycles of idle and returned connections | `tending` | `ext` (a connection's ping schedule and misses) |
//! | `min_idle` and pre-warm | `warm` | `ext` ([`KeysExt`]: the values per key) |
//! | run-time control: resize, closing keys, server-changed clears | `control` | the engine's `retiring` flag and key epochs |
//! | leak reports | `leaks` | the engine's call sites of lent connections |
//! | snapshots and counters | `snapshot` | `ext` (the counters, per key and for the pool) |
//!
//! Elsewhere in the crate, above the engine: the health check and the
//! `before_lend` hook before lending (`vetting`), the hooks (`hooks`),
//! metrics (`metrics`), the warnings about borrowers (`reports`), a keyed
//! manager as a manager of one key (`single`).

mod attach;
mod backoff;
mod control;
mod ext;
mod leaks;
mod outage;
mod shared;
mod shared_set;
mod snapshot;
mod tending;
mod warm;

pub(crate) use attach::{Act, Note};
pub(crate) use ext::{ConnExt, KeysExt, PoolExt};
pub(crate) use outage::Outage;
pub(crate) use shared_set::Borrowed;
pub(crate) use tending::{PingResult, Tended, Tending};

/// How a check of a connection by user code (a health check, a recycle, a
/// `before_lend` hook) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    Passed,
    Failed,
}

impl Check {
    /// `Passed` if `ok`.
    pub(crate) fn passed_if(ok: bool) -> Self {
        if ok { Check::Passed } else { Check::Failed }
    }
}

/// The features, as the engine's [`Points`](crate::engine::Points).
pub(crate) struct Features;

/// The engine's state, with the features attached.
pub(crate) type State<M> = crate::engine::State<M, Features>;

/// A transition of the engine's state, with the features attached.
pub(crate) type Transition<'a, M> = crate::engine::Transition<'a, M, Features>;

/// A connection with its life record and the features' record.
pub(crate) type Conn<C> = crate::engine::Conn<C, ConnExt>;

/// What a transition decided, with the features attached.
pub(crate) type Effects<M> = crate::engine::Effects<M, Features>;

/// Something a transition decided, with the features attached.
pub(crate) type Action<M> = crate::engine::Action<M, Features>;

/// What a dial produced, with the features attached: the connection and
/// how its manager lends it.
pub(crate) type Dialed<M> = crate::engine::Dialed<M, Features>;
