//! **Backoff**: a failed dial puts its key in backoff
//! ([`Transition::dial_failed`], [`Transition::enter_backoff`]): the
//! getters queued for a dial of it fail at once with [`Error::Backoff`],
//! and no getter dials it until its next probe.
//!
//! **Probes** ([`Transition::probe`]): a key in backoff that getters want
//! is dialed by the pool itself, one dial at a time, at its probe time:
//! within its probe delay ([`probe_delay`]: [`PROBE_EVERY`], or a quarter
//! of the outage so far) of the last failure, or at the backoff's end if
//! that comes first, as a half-open circuit breaker lets one trial
//! through. A getter that finds its key in backoff and nothing idle
//! ([`Transition::awaits_probe`]) sets the probe's time if none is coming
//! (one passed with nobody wanting the key), then waits for the probe in
//! the key's dial queue, as for a dial, only if it is in flight or due
//! within [`PROBE_EVERY`] and before the getter's deadline; otherwise it
//! fails at once with [`Error::Backoff`], as a gRPC channel in transient
//! failure fails a call: the probes' schedule spares the server, and the
//! getters do not pay for it. A probe that succeeds ends the backoff at
//! once for every getter: its connection serves the first, and the
//! others' dials start. One that fails fails the waiters with
//! [`Error::Backoff`] and extends the backoff as any failed dial does, the
//! next probe due within the probe delay again. So a server that comes
//! back is found within about `PROBE_EVERY` after a short outage (at most
//! a backoff cap after a long one), however long the backoff had grown,
//! without a dial per getter; one that is down fails each getter within
//! `PROBE_EVERY` (at once when no probe is near); a long outage is probed
//! less and less often (never less often than the backoff cap). A key
//! nobody asked for during its backoff is not probed: after it, the next
//! getter dials.
//!
//! **Refusals** ([`Transition::refused`]): a dial that succeeds proves
//! little where the protocol has no round trip of its own in the dial
//! (HTTP/1.1 behind a load balancer whose backend is down: the balancer
//! accepts and closes). A connection lent for the first time whose
//! borrower reports it closed unanswered (`Pooled::mark_refused`) is a
//! failed dial, with one failure more than the key had carried over the
//! dials that succeeded meanwhile (`carried`), so the backoff grows as for
//! refused dials. Until a connection of the key comes back otherwise, the
//! key is on trial: one connection at a time (a getter that would dial
//! waits in the dial queue instead), and the return that ends the trial
//! starts the queued getters' dials. A server that is back is found by the
//! next probe and its trial, one round trip later than a refused dial's.
//!

use std::time::Duration;

use super::{Act, Action};
use super::{State, Transition};
use crate::clock::{self, Tick};

use crate::engine::{Due, KeyId, Round, WaiterId};
use crate::error::{ConnectError, Error};
use crate::manager::Manager;

/// The longest time from a failed dial of a wanted key to the pool's next
/// dial of it (a probe), before jitter: probes come every 200–400 ms
/// while a server is down, so one that is back is found within half a
/// second. A refused dial costs a round trip on the network; one that
/// hangs is bounded by `connect_timeout`, and only one runs at a time.
pub(crate) const PROBE_EVERY: Duration = Duration::from_millis(400);

/// The longest time from a failed dial of a key down for `down_for` to the
/// pool's next probe of it, before jitter: [`PROBE_EVERY`], or a quarter
/// of the outage so far once that is longer (the key's backoff, at most
/// its cap, ends first if it is shorter). A short outage is found within
/// half a second; a long one costs each client a few dozen dials a minute
/// at most, not one per `PROBE_EVERY`: a fleet of clients does not keep a
/// server that is down (or starting) busy with connection attempts.
pub(crate) fn probe_delay(down_for: Duration) -> Duration {
    PROBE_EVERY.max(down_for / 4)
}

impl<M: Manager> State<M> {
    /// Whether `id` is in dial backoff at `now`.
    pub(crate) fn in_backoff(&self, id: KeyId, now: Tick) -> bool {
        self.keys.get(id).ext.outage.backoff_left(now).is_some()
    }

    /// Whether a probe of `id`, in backoff, is on its way at `now`: due
    /// later, or dialing now (the only dial a key in backoff has). A probe
    /// time that passed with nobody wanting the key was skipped: none is
    /// coming.
    pub(crate) fn probe_coming(&self, id: KeyId, now: Tick) -> bool {
        let entry = self.keys.get(id);
        entry.ext.outage.probe_at.is_some_and(|at| at > now) || entry.counts().dialing > 0
    }
}

impl<M: Manager> Transition<'_, M> {
    /// A getter of `id` found nothing to lend: it may wait, unless the key
    /// is in backoff and no probe it can wait for is near (see
    /// [`awaits_probe`](Transition::awaits_probe)).
    pub(crate) fn may_wait(&mut self, id: KeyId, round: Round) -> Result<(), Error<M::Error>> {
        if !self.st.in_backoff(id, self.now) {
            return Ok(());
        }
        let began = match round {
            Round::First => self.now,
            Round::Retry(began) => began,
        };
        let deadline = self.config.set.checkout_timeout.map(|t| began + t);
        match self.awaits_probe(id, deadline) {
            true => Ok(()),
            false => Err(self.backoff_rejection(id)),
        }
    }

    /// A dial of `id` succeeded: its backoff and failures end. Returns
    /// whether a backoff ended (then every getter queued for a dial of the
    /// key dials now).
    pub(crate) fn connected(&mut self, id: KeyId) -> bool {
        let ended_backoff = self.st.keys.get_mut(id).ext.outage.connected();
        self.report_back(id);
        ended_backoff
    }

    /// Reports how long `id` was down if it is back: up, and not on trial
    /// (a key whose new connections were refused stays down until one
    /// answers).
    fn report_back(&mut self, id: KeyId) {
        let entry = self.st.keys.get_mut(id);
        if entry.ext.outage.carried == 0
            && let Some(since) = entry.ext.outage.down_since.take()
        {
            let down_for = self.now.saturating_duration_since(since);
            let report = Action::Ext(Act::Recovered(entry.key.clone(), down_for));
            self.fx.actions.push(report);
        }
    }

    /// Fails the queued waiter `w` if its key `id` is in backoff; true if
    /// it did.
    pub(crate) fn turned_away(&mut self, w: WaiterId, id: KeyId) -> bool {
        let turned = self.st.in_backoff(id, self.now);
        if turned {
            self.reject_for_backoff(w, id);
        }
        turned
    }

    /// The key's deadline: its probe's time, its backoff's end, or the end
    /// of its failure memory. Probes it if due; the getters that waited
    /// for a probe dial.
    pub(crate) fn backoff_due(&mut self, id: KeyId) {
        self.probe(id);
        while self.start_queued_dial(id) {}
    }

    /// Sets `id`'s next probe: within its probe delay, or at the end of its
    /// backoff if that comes first.
    pub(crate) fn schedule_probe(&mut self, id: KeyId) {
        let outage = &mut self.st.keys.get_mut(id).ext.outage;
        let down_for = outage.down_since.map_or(Duration::ZERO, |since| {
            self.now.saturating_duration_since(since)
        });
        let ends = outage.until.unwrap_or(self.now);
        let jitter = 0.5 + 0.5 * fastrand::f64();
        let at = ends.min(self.now + clock::scaled(probe_delay(down_for), jitter));
        outage.probe_at = Some(at);
        // The end has its timer already.
        if at < ends {
            self.schedule(at, Due::Key(id));
        }
    }

    /// A dial of `id` failed (or a new connection was refused under its
    /// first request): the key remembers the error and backs off, for one
    /// failure more than it had in a row (counting those carried over
    /// accepted connections that went unanswered).
    pub(crate) fn dial_failed(&mut self, id: KeyId, err: ConnectError<M::Error>) {
        // Aborted: the runtime is going away, the backend is not to blame.
        let aborted = matches!(err, ConnectError::Aborted);
        let closed = self.st.closed;
        let entry = self.st.keys.get_mut(id);
        entry.last_error = Some(err);
        let outage = &mut entry.ext.outage;
        outage.down_since.get_or_insert(self.now);
        // A closed pool has nothing to remember it for.
        outage.failed_at = (!closed).then_some(self.now);
        outage.last_failed_at = Some(self.now);
        outage.failures = outage.failures.max(outage.carried).saturating_add(1);
        let failures = outage.failures;
        self.st.tally_with(id, |c| c.dial_failures += 1);
        if let Some(backoff) = self.config.set.backoff
            && !closed
            && !aborted
        {
            self.enter_backoff(id, backoff.delay(failures));
        } else if !closed {
            // Remember the failure a while, then forget the key.
            let forget_at = self.now + self.st.keys.ext.failure_memory;
            self.schedule(forget_at, Due::Key(id));
        }
    }

    /// A connection of `id` was refused: under its first request
    /// ([`ConnectError::Refused`]), or by a server still changed right
    /// after a clear ([`ConnectError::ServerChanged`]). A failed dial, whose
    /// count the next dials carry until a connection of the key comes back
    /// otherwise: a dial that succeeds proves nothing then.
    pub(crate) fn refused(&mut self, id: KeyId, err: ConnectError<M::Error>) {
        self.dial_failed(id, err);
        let outage = &mut self.st.keys.get_mut(id).ext.outage;
        outage.carried = outage.failures;
    }

    /// A connection of `id` came back without being refused: its server
    /// answers, and the key's trial, if it is on one, ends
    /// ([`answered`](Transition::answered)).
    #[inline]
    pub(crate) fn served(&mut self, id: KeyId) {
        if self.st.keys.get(id).ext.outage.carried != 0 {
            self.answered(id);
        }
    }

    /// The key's trial ends, and its queued getters dial.
    fn answered(&mut self, id: KeyId) {
        self.st.keys.get_mut(id).ext.outage.carried = 0;
        self.report_back(id);
        while self.start_queued_dial(id) {}
    }

    /// Fails the waiter `w` of `id`, in backoff, with the key's error.
    pub(crate) fn reject_for_backoff(&mut self, w: WaiterId, id: KeyId) {
        let err = self.backoff_rejection(id);
        self.serve(w, Err(err));
    }

    /// A getter of `id`, in backoff, turned away: counted, and the key
    /// wanted (its next probe dials it). Its error says how long the
    /// backoff lasts and the dial error that started it.
    pub(crate) fn backoff_rejection(&mut self, id: KeyId) -> Error<M::Error> {
        self.st.tally_with(id, |c| c.backoff_rejections += 1);
        let entry = self.st.keys.get_mut(id);
        entry.ext.outage.wanted = true;
        // The key's name is the getter's to add (`Pool::get_for`): naming
        // it is the manager's code, which never runs under the lock.
        Error::Backoff {
            key: None,
            retry_in: entry.ext.outage.backoff_left(self.now).unwrap_or_default(),
            last_connect_error: entry.last_error.clone().unwrap_or(ConnectError::Aborted),
        }
    }

    /// Whether a getter of `id`, in backoff with nothing to lend, waits
    /// for the key's probe: only for a dial of it in flight, or a probe
    /// due within [`PROBE_EVERY`] and before the getter's `deadline`.
    /// Otherwise it fails at once: a probe spaced out by a long outage is
    /// the pool's to wait for, not the getter's. Either way the key is
    /// wanted, and gets a probe if none is coming.
    pub(crate) fn awaits_probe(&mut self, id: KeyId, deadline: Option<Tick>) -> bool {
        self.st.keys.get_mut(id).ext.outage.wanted = true;
        if !self.st.probe_coming(id, self.now) {
            self.schedule_probe(id);
        }
        let entry = self.st.keys.get(id);
        entry.counts().dialing > 0
            || entry.ext.outage.probe_at.is_some_and(|at| {
                at <= self.now + PROBE_EVERY && deadline.is_none_or(|deadline| at < deadline)
            })
    }

    /// Dials `id` for nobody if it is a probe's turn: its probe time came
    /// (in the backoff or at its end), a getter wanted it since the last
    /// probe, no dial of it is in flight, and the caps leave room (a probe
    /// evicts nothing). Its success ends the backoff
    /// ([`dial_done`](Transition::dial_done)).
    pub(crate) fn probe(&mut self, id: KeyId) {
        let entry = self.st.keys.get(id);
        if self.st.closed
            || !entry.ext.outage.wanted
            || entry.ext.outage.probe_at.is_none_or(|at| at > self.now)
            || entry.counts().dialing > 0
            || entry.counts().open >= self.st.limits.max_open_per_key
            || self.st.counts().open >= self.st.limits.max_open
        {
            return;
        }
        let outage = &mut self.st.keys.get_mut(id).ext.outage;
        outage.wanted = false;
        outage.probe_at = None;
        self.st.tally_with(id, |c| c.probes += 1);
        self.start_dial(id, None);
    }

    /// Puts `id` in backoff for a random time in `[delay/2, delay]` and fails
    /// the getters waiting for a dial of it.
    pub(crate) fn enter_backoff(&mut self, id: KeyId, delay: Duration) {
        let delay = clock::scaled(delay, 0.5 + 0.5 * fastrand::f64());
        let until = self.now + delay;
        self.st.tally_with(id, |c| c.backoffs += 1);
        let entry = self.st.keys.get_mut(id);
        entry.ext.outage.until = entry.ext.outage.until.max(Some(until));
        let error = entry.last_error.clone().unwrap_or(ConnectError::Aborted);
        let failures = entry.ext.outage.failures;
        let report = Action::Ext(Act::Backoff(entry.key.clone(), error, delay, failures));
        self.fx.actions.push(report);
        while let Some(w) = self
            .st
            .keys
            .get_mut(id)
            .dial_waiters
            .pop_live(|w| self.st.waiters.is_live(w))
        {
            self.reject_for_backoff(w, id);
        }
        // At its end: refill `min_idle`; a backoff cap later: forget the
        // key if nobody used it since. Its probe: at the end at the latest.
        self.schedule_probe(id);
        self.schedule(until, Due::Key(id));
        let forget_at = until + self.st.keys.ext.failure_memory;
        self.schedule(forget_at, Due::Key(id));
    }
}
