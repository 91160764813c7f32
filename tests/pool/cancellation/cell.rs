//! The matrix's dimensions ([`Point`], [`Dial`], [`Second`], [`Cancel`]) and
//! what each [`Cell`] expects.

use std::fmt;
use std::time::Duration;

use connpool::{ConnectError, Error};
use tokio::time::Instant;

use crate::support::{Counts, Gate, MockError, Step, ZERO};

use super::world::World;
use super::{M, REFUSED, advance_to_raw};

/// Where `G` is when it is given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Point {
    /// Waiting at its key's cap (a borrower `H` holds the key's only slot), no
    /// dial of its own. Dial dimension: after the cancel `H` breaks its
    /// connection, and the freed slot dials for `W2`.
    AtKeyCap,
    /// Waiting at the pool's cap (`max_open = 1`, held by a borrower of
    /// another key), no dial of its own. Dial dimension: after the cancel the
    /// borrower returns its connection, which is evicted to dial for `W2`.
    AtPoolCap,
    /// Its own dial in flight. Dial dimension: that dial, resolving after the
    /// cancel.
    Dialing,
    /// Its own dial in flight and a borrower's returned connection handed to
    /// its slot, not yet picked up. Dial dimension: its own dial, resolving
    /// after the cancel.
    HandedOff,
    /// Waiting at its key's cap, no dial of its own, and the borrower's
    /// returned connection handed to its slot, not yet picked up. No dial.
    HandedOffAtCap,
    /// Its own dial finished and delivered to its slot (a connection or an
    /// error), not yet picked up. Dial dimension: that dial.
    Dialed,
}

impl Point {
    /// Whether an outcome reached `G`'s slot before the cancel.
    pub(super) fn delivered(self) -> bool {
        matches!(
            self,
            Point::HandedOff | Point::HandedOffAtCap | Point::Dialed
        )
    }

    pub(super) fn uses_dial(self) -> bool {
        self != Point::HandedOffAtCap
    }

    /// `(connect_timeout, slow dial delay)`: see the module docs' timeline.
    pub(super) fn timing(self) -> (Duration, Duration) {
        let s = Duration::from_secs;
        match self {
            // Dials started after the cancel, done before W2's deadline.
            Point::AtKeyCap | Point::AtPoolCap | Point::HandedOffAtCap => (s(4), s(3)),
            // Still in flight at the latest cancel (10 s), done before 15 s.
            Point::Dialing | Point::HandedOff => (s(13), s(12)),
            // Delivered after W2 arrived (5 s), before the earliest timed cancel (8 s).
            Point::Dialed => (s(7), s(6)),
        }
    }
}

/// What the dial of the cell does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dial {
    /// Succeeds when the test opens its gate.
    Ok,
    /// Fails when the test opens its gate.
    Fail,
    /// Never answers: ends with `connect_timeout`.
    Hang,
    /// Succeeds after a delay.
    Slow,
}

impl Dial {
    pub(super) const ALL: [Dial; 4] = [Dial::Ok, Dial::Fail, Dial::Hang, Dial::Slow];

    pub(super) fn succeeds(self) -> bool {
        matches!(self, Dial::Ok | Dial::Slow)
    }

    /// Scripts the next dial of `key`.
    pub(super) fn script(self, mock: &M, key: u32, slow: Duration) -> Option<Gate> {
        match self {
            Dial::Ok | Dial::Fail => Some(mock.gate(key)),
            Dial::Hang => {
                mock.push(key, Step::Hang);
                None
            }
            Dial::Slow => {
                mock.push(key, Step::Delay(slow));
                None
            }
        }
    }

    /// Makes the scripted dial, started at `started`, finish. Only advances
    /// the clock (or opens the gate): the caller decides when tasks run.
    pub(super) async fn finish(self, gate: Option<Gate>, started: Instant, world: &World) {
        match self {
            Dial::Ok => gate.expect("gate of an Ok dial").succeed(),
            Dial::Fail => gate.expect("gate of a Fail dial").fail(REFUSED),
            Dial::Hang => advance_to_raw(started + world.connect_timeout).await,
            Dial::Slow => advance_to_raw(started + world.slow).await,
        }
    }

    /// Whether `e` is the error this (failing) dial produces.
    pub(super) fn is_its_error(self, e: &Error<MockError>, connect_timeout: Duration) -> bool {
        match (self, e) {
            (Dial::Fail, Error::Connect(ConnectError::Manager(m))) => m.0 == REFUSED,
            (Dial::Hang, Error::Connect(ConnectError::Timeout(d))) => *d == connect_timeout,
            _ => false,
        }
    }
}

/// Whether a second getter of the same key waits behind `G`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Second {
    Alone,
    Waiter,
}

impl Second {
    pub(super) const ALL: [Second; 2] = [Second::Alone, Second::Waiter];
}

/// How `G` gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cancel {
    /// The future (polled once by hand) is dropped at the point.
    Drop,
    /// Its checkout deadline passes at the point; then it is polled. Where
    /// something was delivered, the delivery wins over the late deadline.
    Deadline,
    /// A `tokio::time::timeout` wrapper elapses at the point; then it is
    /// polled (and dropped if it elapsed).
    Timeout,
    /// A `biased` `tokio::select!` whose first branch drives `G` to the point
    /// and completes there, so the `get` branch is dropped without being
    /// polled again (with a real waker, unlike the hand-polled cases).
    Select,
}

impl Cancel {
    pub(super) const ALL: [Cancel; 4] = [
        Cancel::Drop,
        Cancel::Deadline,
        Cancel::Timeout,
        Cancel::Select,
    ];
}

/// One cell of the matrix.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cell {
    pub(super) point: Point,
    pub(super) dial: Dial,
    pub(super) second: Second,
    pub(super) cancel: Cancel,
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[point={:?} dial={:?} second={:?} cancel={:?}]",
            self.point, self.dial, self.second, self.cancel
        )
    }
}

/// What the second waiter should end up with.
#[derive(Debug)]
pub(super) enum SecondGets {
    /// The connection with this id.
    Conn(u64),
    /// The error of the cell's dial.
    DialError,
}

impl Cell {
    /// 1 if a second waiter is present.
    pub(super) fn s(self) -> usize {
        usize::from(self.second == Second::Waiter)
    }

    pub(super) fn ok(self) -> bool {
        self.dial.succeeds()
    }

    /// Whether `G` is expected to receive what reached its slot (a late
    /// deadline or wrapper timeout does not beat a delivered outcome).
    pub(super) fn receives(self) -> bool {
        self.point.delivered() && matches!(self.cancel, Cancel::Deadline | Cancel::Timeout)
    }

    /// Whether this cell scripts a dial at all.
    pub(super) fn scripts_dial(self) -> bool {
        match self.point {
            // The dial only happens for the second waiter.
            Point::AtKeyCap | Point::AtPoolCap => self.second == Second::Waiter,
            Point::HandedOffAtCap => false,
            Point::Dialing | Point::HandedOff | Point::Dialed => true,
        }
    }

    /// Counts once `G` is armed (before `W2`), and dials made by then.
    pub(super) fn armed(self) -> (Counts, usize) {
        match self.point {
            Point::AtKeyCap | Point::AtPoolCap | Point::HandedOffAtCap => {
                (Counts { open: 1, lent: 1, waiting: 1, ..ZERO }, 1)
            }
            Point::Dialing | Point::Dialed => {
                (Counts { open: 1, dialing: 1, waiting: 1, ..ZERO }, 1)
            }
            Point::HandedOff => (
                Counts { open: 2, lent: 1, dialing: 1, waiting: 1, ..ZERO },
                2,
            ),
        }
    }

    /// Counts right after the cancel (and the tasks it woke) settled.
    pub(super) fn after_cancel(self) -> Counts {
        let s = self.s();
        let alone = 1 - s;
        match self.point {
            Point::AtKeyCap | Point::AtPoolCap => Counts { open: 1, lent: 1, waiting: s, ..ZERO },
            Point::Dialing => Counts { open: 1, dialing: 1, waiting: s, ..ZERO },
            Point::HandedOff => Counts { open: 2, idle: alone, lent: s, dialing: 1, ..ZERO },
            Point::HandedOffAtCap => Counts { open: 1, idle: alone, lent: s, ..ZERO },
            Point::Dialed if self.ok() => Counts { open: 1, idle: alone, lent: s, ..ZERO },
            // The failed dial freed the slot; W2 dialed in it.
            Point::Dialed => Counts { open: s, lent: s, ..ZERO },
        }
    }

    /// Idle connections at the end, once every borrower let go.
    pub(super) fn final_idle(self) -> usize {
        let (s, ok) = (self.second == Second::Waiter, self.ok());
        usize::from(match self.point {
            Point::AtKeyCap => s && ok,
            Point::AtPoolCap => !s || ok,
            Point::Dialing | Point::Dialed => ok || s,
            Point::HandedOff => return 1 + usize::from(ok),
            Point::HandedOffAtCap => true,
        })
    }

    /// Calls to `connect` in the whole story (before the final fresh get).
    pub(super) fn dials_made(self) -> usize {
        let s = self.s();
        let failed_with_second = usize::from(!self.ok() && self.second == Second::Waiter);
        match self.point {
            Point::AtKeyCap | Point::AtPoolCap => 1 + s,
            Point::Dialing | Point::Dialed => 1 + failed_with_second,
            Point::HandedOff => 2,
            Point::HandedOffAtCap => 1,
        }
    }

    pub(super) fn dial_failures(self) -> u64 {
        u64::from(self.scripts_dial() && !self.ok())
    }

    /// Ids the pool closed before `close` (the borrower's broken connection,
    /// or the one evicted for `W2`).
    pub(super) fn closed_early(self) -> Vec<u64> {
        match self.point {
            Point::AtKeyCap => vec![1],
            Point::AtPoolCap if self.second == Second::Waiter => vec![1],
            _ => vec![],
        }
    }

    pub(super) fn second_gets(self) -> Option<SecondGets> {
        if self.second == Second::Alone {
            return None;
        }
        Some(match self.point {
            // Id 1 is the borrower's; W2's own dial makes id 2.
            Point::AtKeyCap | Point::AtPoolCap if self.ok() => SecondGets::Conn(2),
            Point::AtKeyCap | Point::AtPoolCap => SecondGets::DialError,
            // G's dial's connection, or (if it failed) W2's own first one.
            Point::Dialing | Point::Dialed => SecondGets::Conn(1),
            // The borrower's connection, passed on by G.
            Point::HandedOff | Point::HandedOffAtCap => SecondGets::Conn(1),
        })
    }
}
