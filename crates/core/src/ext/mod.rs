//! What the features keep in the pool's records, below the core that holds
//! it: per key, [`KeyExt`]. The core keeps it with its own record and
//! never reads it; the features read and change it at their points (see
//! `core::points`).

mod outage;

use std::time::Duration;

use crate::clock::Tick;

pub(crate) use outage::Outage;

/// What the features keep per key.
#[derive(Debug, Default)]
pub(crate) struct KeyExt {
    /// Its failed dials: backoff, probes, trial.
    pub(crate) outage: Outage,
}

impl KeyExt {
    /// Whether the features let a dial of the key start at `now`, with
    /// `open` connections and `dialing` dials of it.
    #[inline]
    pub(crate) fn allows_dial(&self, now: Tick, open: usize, dialing: usize) -> bool {
        self.outage.allows_dial(now, open, dialing)
    }

    /// Whether the key is new, or recovering, at `now`: an unset
    /// `max_connecting` caps its dials then (see
    /// [`Outage::untried`]).
    pub(crate) fn untried(&self, now: Tick, memory: Duration) -> bool {
        self.outage.untried(now, memory)
    }

    /// Whether the key is worth remembering at `now` with nothing open and
    /// nobody waiting (see [`Outage::remembered`]).
    pub(crate) fn remembered(&self, now: Tick, memory: Duration) -> bool {
        self.outage.remembered(now, memory)
    }

    /// The pool closed: nothing will dial again, so no failure is worth
    /// remembering.
    pub(crate) fn pool_closed(&mut self) {
        self.outage.failed_at = None;
    }
}
