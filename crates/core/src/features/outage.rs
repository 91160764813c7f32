//! A key's record of its failed dials: its backoff, its probes, its
//! trial, and how long it is remembered for them. The transitions that
//! change it are `backoff`'s; this type answers the questions about
//! one key's record at an instant.

use std::time::Duration;

use crate::clock::Tick;

/// One key's failed dials.
///
/// `failures` counts consecutive failed dials; while `until` is in the
/// future no dial of the key starts but the pool's probes, and getters
/// that find no idle connection fail with the key's last dial error (at
/// once, or when the probe they wait for fails).
#[derive(Debug, Default)]
pub(crate) struct Outage {
    /// When its backoff ends (`None`: not in one).
    pub(crate) until: Option<Tick>,
    pub(crate) failures: u32,
    /// Failures in a row carried over dials that succeeded, while the
    /// server behind them has not answered yet: set when a new connection
    /// was refused under its first request (`Pooled::mark_refused`), so
    /// that accepting connections does not end the backoff's growth; 0
    /// again when a connection of the key comes back otherwise. While it
    /// is non-zero the key has one connection at a time, a trial.
    pub(crate) carried: u32,
    /// A getter found the key in backoff since its last probe: the pool
    /// dials the key itself when the next probe is due.
    pub(crate) wanted: bool,
    /// A dial of it succeeded since the pool began tracking it.
    pub(crate) connected: bool,
    /// When the key's next probe is due: within its probe delay, or at its
    /// backoff's end (the backoff timers of earlier failures fire too:
    /// only this one probes).
    pub(crate) probe_at: Option<Tick>,
    /// When its last dial failed (`None` once one succeeds): the key, its
    /// last dial error and `failures` are remembered `memory` past it.
    pub(crate) failed_at: Option<Tick>,
    /// When its current run of failed dials began (`None` once one
    /// succeeds): how long the key has been down, which spaces its probes.
    pub(crate) down_since: Option<Tick>,
    /// When its server was last found changed (`Health::ServerChanged`)
    /// and its connections closed: a clear soon after it is a failed dial.
    pub(crate) cleared_at: Option<Tick>,
    /// When a dial of it last failed, kept after one succeeds: for the
    /// failure memory past it (or past `cleared_at`) the key is recovering
    /// (see [`untried`](Outage::untried)).
    pub(crate) last_failed_at: Option<Tick>,
}

impl Outage {
    /// How long its backoff lasts after `now`, if it is in one.
    #[inline]
    pub(crate) fn backoff_left(&self, now: Tick) -> Option<Duration> {
        let until = self.until?;
        (until > now).then(|| until.saturating_duration_since(now))
    }

    /// Whether a dial may start at `now` with `open` connections and
    /// `dialing` dials of the key: not in backoff, and one connection at a
    /// time while on trial, one dial at a time while down.
    #[inline]
    pub(crate) fn allows_dial(&self, now: Tick, open: usize, dialing: usize) -> bool {
        self.backoff_left(now).is_none()
            && (self.carried == 0 || open == 0)
            && (self.down_since.is_none() || dialing == 0)
    }

    /// Whether the key has not made a connection yet (its first tells
    /// whether its connections are shared, and how widely), or failed a
    /// dial or was cleared within `memory`: then an unset `max_connecting`
    /// caps its dials at once (see `Config::max_connecting`).
    pub(crate) fn untried(&self, now: Tick, memory: Duration) -> bool {
        let recent = |at: Option<Tick>| at.is_some_and(|at| now < at + memory);
        !self.connected
            || self.down_since.is_some()
            || recent(self.last_failed_at)
            || recent(self.cleared_at)
    }

    /// Whether it is worth remembering at `now` (with no connection and
    /// no waiter): during its backoff and `memory` after it, `memory`
    /// after a failure without backoff, and `memory` after a clear.
    /// Forgetting it would forget the backoff, the count of failures in a
    /// row that makes the next backoff longer, and the last dial error a
    /// checkout timeout reports.
    pub(crate) fn remembered(&self, now: Tick, memory: Duration) -> bool {
        let within = |at: Option<Tick>| at.is_some_and(|at| now < at + memory);
        within(self.until) || within(self.failed_at) || within(self.cleared_at)
    }

    /// A dial succeeded: the backoff and the failures end. Returns whether
    /// a backoff ended (the getters that waited for its probe dial now).
    pub(crate) fn connected(&mut self) -> bool {
        let ended_backoff = self.until.is_some();
        self.failed_at = None;
        self.connected = true;
        self.failures = 0;
        self.until = None;
        self.wanted = false;
        self.probe_at = None;
        ended_backoff
    }
}
