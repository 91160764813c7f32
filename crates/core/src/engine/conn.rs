//! A pooled connection and its life record: when it was born, when it must
//! die, how often it was lent, since when it is idle or lent.
//!
//! The record stays with the connection (its idle entry, which keeps it
//! while the connection is lent exclusively; the shared set; a ping task),
//! so every lifecycle decision is a comparison of instants the pool already
//! holds: no per-connection timer or task exists.

use std::panic::Location;
use std::time::Duration;

use crate::clock::{self, Tick};
use crate::config::Config;
use crate::stats::CloseReason;

/// Where a borrower took a connection: the call site of its `get`, for
/// leak reports (`None`: not tracked, or already reported).
pub(crate) type Site = Option<&'static Location<'static>>;

/// A connection with its life record, and what the features keep for it
/// (`ext`).
#[derive(Debug)]
pub(crate) struct Conn<C, X> {
    pub(crate) conn: C,
    /// When it must be closed, and why.
    pub(crate) expiry: Expiry,
    /// Times it was lent (saturating; `max_uses` fits in 32 bits).
    pub(crate) uses: u32,
    /// When it last changed hands: while idle, when it was returned (or
    /// dialed), which is what `idle_timeout` measures; while lent
    /// exclusively, when it was lent. Read through
    /// [`idle_since`](Conn::idle_since) and [`lent_at`](Conn::lent_at).
    since: Tick,
    /// While lent exclusively: the call site of the `get` that took it
    /// (`None`: not tracked, or no longer wanted by the features).
    pub(crate) site: Site,
    /// What the features keep for the connection.
    pub(crate) ext: X,
}

impl<C, X> Conn<C, X> {
    /// A connection dialed at `now`, with the features' record `ext`.
    pub(crate) fn new(conn: C, now: Tick, config: &Config, ext: X) -> Self {
        Self {
            conn,
            expiry: config.set.max_lifetime.map_or(Expiry::NEVER, |life| {
                Expiry::lifetime_ends(now + jittered(life, config.set.jitter))
            }),
            uses: 0,
            since: now,
            site: None,
            ext,
        }
    }

    /// The same record with `f(conn)` for its connection.
    #[inline]
    pub(crate) fn map<D>(self, f: impl FnOnce(C) -> D) -> Conn<D, X> {
        Conn {
            conn: f(self.conn),
            expiry: self.expiry,
            uses: self.uses,
            since: self.since,
            site: self.site,
            ext: self.ext,
        }
    }

    /// It is lent exclusively at `now`, by a `get` at `site`.
    #[inline]
    pub(crate) fn lend_at(&mut self, now: Tick, site: Site) {
        self.uses = self.uses.saturating_add(1);
        self.since = now;
        self.site = site;
    }

    /// While lent exclusively: when it was lent.
    pub(crate) fn lent_at(&self) -> Tick {
        self.since
    }

    /// While idle: since when.
    pub(crate) fn idle_since(&self) -> Tick {
        self.since
    }

    /// Closes it at the next look (its return, or a checkout or the
    /// maintenance task finding it idle), for [`CloseReason::Retired`].
    pub(crate) fn retire(&mut self) {
        self.expiry = Expiry::RETIRED;
    }

    /// Whether it was retired on demand.
    pub(crate) fn is_retired(&self) -> bool {
        self.expiry == Expiry::RETIRED
    }

    /// Whether it reached its expiry at `now`.
    pub(crate) fn is_expired(&self, now: Tick) -> bool {
        self.expiry.is_due(now)
    }

    /// Whether it was idle `idle_timeout` or longer at `now`.
    pub(crate) fn is_stale(&self, now: Tick, config: &Config) -> bool {
        config.idle_timed_out(self.since, now)
    }

    /// Whether it was lent `max_uses` times.
    pub(crate) fn is_used_up(&self, config: &Config) -> bool {
        config
            .set
            .max_uses
            .is_some_and(|max| u64::from(self.uses) >= max)
    }

    /// Why it must not be lent again at `now`: past its lifetime, or lent
    /// `max_uses` times.
    pub(crate) fn retirement(&self, now: Tick, config: &Config) -> Option<CloseReason> {
        if self.is_expired(now) {
            Some(self.expiry.reason())
        } else if self.is_used_up(config) {
            Some(CloseReason::Uses)
        } else {
            None
        }
    }

    /// It is idle from `now` on: its idle timeout starts over (the
    /// features' record starts over through [`Points::rest`]).
    pub(crate) fn rest(&mut self, now: Tick) {
        self.since = now;
    }

    /// The first instant the maintenance task must look at it while idle:
    /// its lifetime, its idle timeout (counted as `idle` says) or the
    /// features' deadline `ext_due`, whichever is first.
    pub(crate) fn deadline(
        &self,
        now: Tick,
        idle: IdleTimeout,
        config: &Config,
        ext_due: Tick,
    ) -> Option<Tick> {
        let idle = match (config.idle_timeout_ns, idle) {
            (u64::MAX, _) => Tick::NEVER,
            (t, IdleTimeout::Deferred) => now.add_nanos(t),
            (t, IdleTimeout::Runs) => self.since.add_nanos(t),
        };
        let first = self.expiry.at().min(idle).min(ext_due);
        (first != Tick::NEVER).then_some(first)
    }
}

/// How a connection's idle timeout counts towards its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdleTimeout {
    /// From when it went idle: it is closed once the timeout has passed.
    Runs,
    /// Put off by a whole timeout from now: its key is at `min_idle`, so it
    /// is looked at again, not closed.
    Deferred,
}

/// When a connection must be closed, and why: at the end of its lifetime,
/// never, or at once, retired on demand.
///
/// One word, an instant, for the record's size (it is moved on every
/// checkout and return, and kept per idle connection): `NEVER` is
/// [`Tick::NEVER`], and a retired connection's instant is
/// [`Tick::BEFORE_ALL`], which no lifetime ends at. The representation
/// stays in this type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expiry(Tick);

impl Expiry {
    /// No lifetime.
    pub(crate) const NEVER: Expiry = Expiry(Tick::NEVER);

    /// Retired on demand: due at once.
    const RETIRED: Expiry = Expiry(Tick::BEFORE_ALL);

    /// Its lifetime ends at `at`.
    pub(crate) fn lifetime_ends(at: Tick) -> Self {
        debug_assert!(at != Tick::BEFORE_ALL);
        Expiry(at)
    }

    /// Whether it is due at `now`.
    #[inline]
    pub(crate) fn is_due(self, now: Tick) -> bool {
        self.0 <= now
    }

    /// When it is due ([`Tick::NEVER`]: never).
    #[inline]
    pub(crate) fn at(self) -> Tick {
        self.0
    }

    /// Why a connection that reached it is closed.
    pub(crate) fn reason(self) -> CloseReason {
        if self == Expiry::RETIRED {
            CloseReason::Retired
        } else {
            CloseReason::Lifetime
        }
    }
}

/// `d` shortened by a random fraction of at most `jitter` (so never longer
/// than `d`): connections opened or returned together spread out.
pub(crate) fn jittered(d: Duration, jitter: f64) -> Duration {
    if jitter == 0.0 {
        return d;
    }
    clock::scaled(d, 1.0 - jitter * fastrand::f64())
}

#[cfg(test)]
mod test_support {
    use super::*;

    impl<C, X: Default> Conn<C, X> {
        /// A connection with no lifecycle limits, for unit tests.
        pub(crate) fn bare(conn: C) -> Self {
            Self {
                conn,
                expiry: Expiry::NEVER,
                uses: 0,
                since: Tick::now(),
                site: None,
                ext: X::default(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::jittered;
    use std::time::Duration;

    #[test]
    fn jitter_stays_in_its_band() {
        let d = Duration::from_secs(100);
        assert_eq!(jittered(d, 0.0), d);
        let (mut lo, mut hi) = (d, Duration::ZERO);
        for _ in 0..10_000 {
            let j = jittered(d, 0.1);
            assert!(j <= d && j >= Duration::from_secs(90), "{j:?}");
            lo = lo.min(j);
            hi = hi.max(j);
        }
        // It really spreads: the extremes of 10k draws come near the band's ends.
        assert!(lo < Duration::from_secs(91) && hi > Duration::from_secs(99));
    }

    /// The record beside the connection and the features' record: kept
    /// per idle connection, moved on every checkout and return (`since` is
    /// the idle time or the lending time, never both at once).
    #[test]
    fn the_record_is_32_bytes_beside_the_connection_and_the_features() {
        assert_eq!(std::mem::size_of::<super::Conn<(), ()>>(), 32);
    }
}
