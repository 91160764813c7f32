//! The features, each in its own file, attached to the engine at its
//! points ([`Features`], in `attach`, implements
//! [`Points`](crate::engine::Points)). The rest of the crate uses the
//! engine through [`State`] and [`Transition`], the engine's with the
//! features attached.

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
