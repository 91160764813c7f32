//! A pooled connection and its life record: when it was born, when it must
//! die, how often it was lent, since when it is idle, when it is next pinged.
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

/// A connection with its life record.
#[derive(Debug)]
pub(crate) struct Conn<C> {
    pub(crate) conn: C,
    /// When it must be closed, and why.
    pub(crate) expiry: Expiry,
    /// Times it was lent (saturating; `max_uses` fits in 32 bits).
    pub(crate) uses: u32,
    /// When it last changed hands: while idle, when it was returned (or
    /// dialed), which is what `idle_timeout` and the `health_check`
    /// check measure (a keepalive ping does not reset it); while lent
    /// exclusively, when it was lent, which is what leak detection
    /// measures. Read through [`idle_since`](Conn::idle_since) and
    /// [`lent_at`](Conn::lent_at).
    since: Tick,
    /// When background keepalive pings it next, if it stays idle
    /// ([`Tick::NEVER`] without keepalive; a return schedules it anew).
    pub(crate) next_ping: Tick,
    /// While lent exclusively: the call site of the `get` that took it,
    /// until a leak report names it (see the `leaks` module).
    pub(crate) site: Site,
    /// Its current keepalive interval: `keepalive_interval` shortened by
    /// jitter, drawn at birth and again after each keepalive ping. Between
    /// pings it stays put, so the deadlines one connection pushes as it is
    /// lent and returned stay in order (a return does not re-arm the
    /// maintenance task); drawn per ping, an idle connection's pings do not
    /// keep one fixed phase against the others'. In nanoseconds (8 bytes,
    /// not a 16-byte `Duration`: the record is kept per idle connection);
    /// `u64::MAX` without keepalive.
    pub(crate) ping_every_ns: u64,
    /// Keepalive pings failed in a row (saturating; `keepalive_max_missed`
    /// fits in 16 bits).
    pub(crate) missed: u16,
    /// Borrowers it may have at once: 1 is exclusive lending, more is
    /// shared lending (see `core::lending`). Set after the dial, and
    /// again when a borrower returns a handle (the peer may change it).
    /// `max_borrowers` fits in 16 bits. (The three counts are narrow so
    /// that the record is 48 bytes beside the connection.)
    pub(crate) max_borrowers: u16,
}

impl<C> Conn<C> {
    /// A connection dialed at `now`.
    pub(crate) fn new(conn: C, now: Tick, config: &Config) -> Self {
        let ping_every_ns = ping_interval(config);
        Self {
            conn,
            expiry: config.set.max_lifetime.map_or(Expiry::NEVER, |life| {
                Expiry::lifetime_ends(now + jittered(life, config.set.jitter))
            }),
            uses: 0,
            since: now,
            next_ping: now.add_nanos(ping_every_ns),
            site: None,
            ping_every_ns,
            missed: 0,
            max_borrowers: 1,
        }
    }

    /// The same record with `f(conn)` for its connection.
    #[inline]
    pub(crate) fn map<D>(self, f: impl FnOnce(C) -> D) -> Conn<D> {
        Conn {
            conn: f(self.conn),
            expiry: self.expiry,
            uses: self.uses,
            since: self.since,
            next_ping: self.next_ping,
            site: self.site,
            ping_every_ns: self.ping_every_ns,
            missed: self.missed,
            max_borrowers: self.max_borrowers,
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

    /// Whether it is lent shared (to several borrowers at once).
    pub(crate) fn is_shared(&self) -> bool {
        self.max_borrowers > 1
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

    /// It is idle from `now` on: idle timeout and keepalive start over.
    pub(crate) fn rest(&mut self, now: Tick) {
        self.since = now;
        self.missed = 0;
        self.schedule_ping(now);
    }

    /// The next keepalive ping is due one (jittered) interval after `now`.
    fn schedule_ping(&mut self, now: Tick) {
        self.next_ping = now.add_nanos(self.ping_every_ns);
    }

    /// A keepalive ping passed at `now`: the next one is due after a newly
    /// drawn interval.
    pub(crate) fn pinged(&mut self, now: Tick, config: &Config) {
        self.ping_every_ns = ping_interval(config);
        self.schedule_ping(now);
    }

    /// The first instant the maintenance task must look at it while idle:
    /// its lifetime, its idle timeout (counted as `idle` says) or its next
    /// ping, whichever is first.
    pub(crate) fn deadline(&self, now: Tick, idle: IdleTimeout, config: &Config) -> Option<Tick> {
        let idle = match (config.idle_timeout_ns, idle) {
            (u64::MAX, _) => Tick::NEVER,
            (t, IdleTimeout::Deferred) => now.add_nanos(t),
            (t, IdleTimeout::Runs) => self.since.add_nanos(t),
        };
        let first = self.expiry.at().min(idle).min(self.next_ping);
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

/// A keepalive interval with its jitter drawn (`u64::MAX` without
/// keepalive), in nanoseconds.
fn ping_interval(config: &Config) -> u64 {
    config.set.keepalive_interval.map_or(u64::MAX, |every| {
        clock::nanos(jittered(every, config.set.jitter))
    })
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

    impl<C> Conn<C> {
        /// A connection with no lifecycle limits, for unit tests.
        pub(crate) fn bare(conn: C) -> Self {
            Self {
                conn,
                expiry: Expiry::NEVER,
                uses: 0,
                since: Tick::now(),
                next_ping: Tick::NEVER,
                site: None,
                ping_every_ns: u64::MAX,
                missed: 0,
                max_borrowers: 1,
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

    /// The record beside the connection: kept per idle connection, moved
    /// on every checkout and return (`since` is the idle time or the
    /// lending time, never both at once, so that leak detection costs one
    /// field, the call site).
    #[test]
    fn the_record_is_48_bytes_beside_the_connection() {
        assert_eq!(std::mem::size_of::<super::Conn<()>>(), 48);
    }
}
