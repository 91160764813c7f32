//! The cancellation matrix: a `get` future given up at every await point,
//! by every means, with every outcome of the dial involved, alone or with a
//! second waiter queued behind it.
//!
//! Each cell builds a fresh pool and mock, arms a getter `G`, optionally
//! queues a second waiter `W2` (a spawned task) behind it, drives `G` to its
//! point, cancels it, then lets the rest of the story happen (the dial
//! resolves, the borrower lets go). After the cancel and after the rest it
//! asserts the exact counts (open, idle, lent, dialing, pinging, waiting), that no
//! connection was lost (it reached `W2` or the idle list, with the expected
//! id), that no connection was closed that should not have been, that the pool
//! still serves, and that `close` closes every connection the mock ever made
//! exactly once.
//!
//! Dimensions (see the enums): [`Point`] × [`Dial`] × [`Second`] × [`Cancel`];
//! one `#[tokio::test]` per point runs its sub-matrix and reports every
//! failing cell by name.
//!
//! Timeline of a cell, in virtual time from `t0` (the first poll of `G`):
//! `W2` arrives at 5 s (checkout deadline 15 s), a `tokio::time::timeout`
//! wrapper around `G` fires at 8 s, `G`'s own checkout deadline is 10 s.
//! Dials that must still be in flight at the cancel take 12 s (slow) or hang
//! until 13 s (`connect_timeout`); dials that must be delivered before it take
//! 6 s / 7 s; dials started after the cancel take 3 s / 4 s.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use connpool::{ConnectError, Error, Pool, Pooled};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::support;
use crate::support::{Counts, Gate, Mock, MockError, Step, ZERO, check_counts, counts, settle};

type M = Mock<u32>;
type Conn = Pooled<'static, M>;
type GetResult = Result<Conn, Error<MockError>>;
/// A get under test; `None` when a `tokio::time::timeout` wrapper elapsed.
type GetFuture<'a> = Pin<Box<dyn Future<Output = Option<GetResult>> + Send + 'a>>;

/// The key of the getter under test (and of the second waiter).
const K: u32 = 1;
/// Another key (the borrower's, when the pool's cap is what blocks `G`).
const OTHER: u32 = 2;
/// The pool's `checkout_timeout`.
const CHECKOUT: Duration = Duration::from_secs(10);
/// The `tokio::time::timeout` wrapped around `G` by [`Cancel::Timeout`].
const WRAPPER: Duration = Duration::from_secs(8);
/// When the second waiter arrives.
const SECOND_ARRIVES: Duration = Duration::from_secs(5);
/// A cell that takes longer than this (virtual time) is reported as stuck.
const CELL_LIMIT: Duration = Duration::from_secs(3600);
/// The message of a scripted dial failure.
const REFUSED: &str = "refused";

/// Where `G` is when it is given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
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
    fn delivered(self) -> bool {
        matches!(
            self,
            Point::HandedOff | Point::HandedOffAtCap | Point::Dialed
        )
    }

    fn uses_dial(self) -> bool {
        self != Point::HandedOffAtCap
    }

    /// `(connect_timeout, slow dial delay)`: see the module docs' timeline.
    fn timing(self) -> (Duration, Duration) {
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
enum Dial {
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
    const ALL: [Dial; 4] = [Dial::Ok, Dial::Fail, Dial::Hang, Dial::Slow];

    fn succeeds(self) -> bool {
        matches!(self, Dial::Ok | Dial::Slow)
    }

    /// Scripts the next dial of `key`.
    fn script(self, mock: &M, key: u32, slow: Duration) -> Option<Gate> {
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
    async fn finish(self, gate: Option<Gate>, started: Instant, world: &World) {
        match self {
            Dial::Ok => gate.expect("gate of an Ok dial").succeed(),
            Dial::Fail => gate.expect("gate of a Fail dial").fail(REFUSED),
            Dial::Hang => advance_to_raw(started + world.connect_timeout).await,
            Dial::Slow => advance_to_raw(started + world.slow).await,
        }
    }

    /// Whether `e` is the error this (failing) dial produces.
    fn is_its_error(self, e: &Error<MockError>, connect_timeout: Duration) -> bool {
        match (self, e) {
            (Dial::Fail, Error::Connect(ConnectError::Manager(m))) => m.0 == REFUSED,
            (Dial::Hang, Error::Connect(ConnectError::Timeout(d))) => *d == connect_timeout,
            _ => false,
        }
    }
}

/// Whether a second getter of the same key waits behind `G`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Second {
    Alone,
    Waiter,
}

impl Second {
    const ALL: [Second; 2] = [Second::Alone, Second::Waiter];
}

/// How `G` gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cancel {
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
    const ALL: [Cancel; 4] = [
        Cancel::Drop,
        Cancel::Deadline,
        Cancel::Timeout,
        Cancel::Select,
    ];
}

/// One cell of the matrix.
#[derive(Clone, Copy, Debug)]
struct Cell {
    point: Point,
    dial: Dial,
    second: Second,
    cancel: Cancel,
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
enum SecondGets {
    /// The connection with this id.
    Conn(u64),
    /// The error of the cell's dial.
    DialError,
}

impl Cell {
    /// 1 if a second waiter is present.
    fn s(self) -> usize {
        usize::from(self.second == Second::Waiter)
    }

    fn ok(self) -> bool {
        self.dial.succeeds()
    }

    /// Whether `G` is expected to receive what reached its slot (a late
    /// deadline or wrapper timeout does not beat a delivered outcome).
    fn receives(self) -> bool {
        self.point.delivered() && matches!(self.cancel, Cancel::Deadline | Cancel::Timeout)
    }

    /// Whether this cell scripts a dial at all.
    fn scripts_dial(self) -> bool {
        match self.point {
            // The dial only happens for the second waiter.
            Point::AtKeyCap | Point::AtPoolCap => self.second == Second::Waiter,
            Point::HandedOffAtCap => false,
            Point::Dialing | Point::HandedOff | Point::Dialed => true,
        }
    }

    /// Counts once `G` is armed (before `W2`), and dials made by then.
    fn armed(self) -> (Counts, usize) {
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
    fn after_cancel(self) -> Counts {
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
    fn final_idle(self) -> usize {
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
    fn dials_made(self) -> usize {
        let s = self.s();
        let failed_with_second = usize::from(!self.ok() && self.second == Second::Waiter);
        match self.point {
            Point::AtKeyCap | Point::AtPoolCap => 1 + s,
            Point::Dialing | Point::Dialed => 1 + failed_with_second,
            Point::HandedOff => 2,
            Point::HandedOffAtCap => 1,
        }
    }

    fn dial_failures(self) -> u64 {
        u64::from(self.scripts_dial() && !self.ok())
    }

    /// Ids the pool closed before `close` (the borrower's broken connection,
    /// or the one evicted for `W2`).
    fn closed_early(self) -> Vec<u64> {
        match self.point {
            Point::AtKeyCap => vec![1],
            Point::AtPoolCap if self.second == Second::Waiter => vec![1],
            _ => vec![],
        }
    }

    fn second_gets(self) -> Option<SecondGets> {
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

/// How `G` ended.
enum Getter {
    Cancelled,
    Got(GetResult),
}

/// One cell's pool, mock and actors.
struct World {
    cell: Cell,
    mock: M,
    pool: Pool<M>,
    t0: Instant,
    connect_timeout: Duration,
    slow: Duration,
    /// The borrower `H` (points where one holds the cap or hands off).
    holder: Option<Conn>,
    gate: Option<Gate>,
    second: Option<JoinHandle<GetResult>>,
}

fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Advances the paused clock to `t` (yielding once, as `advance` does).
async fn advance_to_raw(t: Instant) {
    let now = Instant::now();
    assert!(t >= now, "the test's timeline runs backwards");
    if t > now {
        tokio::time::advance(t - now).await;
    }
}

/// Advances the paused clock to `t` and lets the woken tasks run.
async fn advance_to(t: Instant) {
    advance_to_raw(t).await;
    settle().await;
}

#[track_caller]
fn expect_counts(pool: &Pool<M>, cell: Cell, stage: &str, want: Counts) {
    assert_eq!(
        counts(pool),
        want,
        "{cell} {stage} (state {:?})",
        pool.state()
    );
    check_counts(pool, &[K, OTHER]);
}

impl World {
    async fn setup(cell: Cell) -> World {
        let (connect_timeout, slow) = cell.point.timing();
        let mock = M::new();
        let (max_open, max_open_per_key) = match cell.point {
            Point::AtPoolCap => (1, 1),
            Point::HandedOff => (10, 2),
            _ => (10, 1),
        };
        let pool = support::core_builder(mock.clone())
            .max_open(max_open)
            .max_open_per_key(max_open_per_key)
            .connect_timeout(connect_timeout)
            .checkout_timeout(CHECKOUT)
            .build()
            .await
            .unwrap_or_else(|e| panic!("{cell}: build: {e}"));
        let holder_key = match cell.point {
            Point::AtKeyCap | Point::HandedOff | Point::HandedOffAtCap => Some(K),
            Point::AtPoolCap => Some(OTHER),
            Point::Dialing | Point::Dialed => None,
        };
        let holder = match holder_key {
            Some(key) => {
                let h = pool
                    .get_for(&key)
                    .await
                    .map(Pooled::into_owned)
                    .unwrap_or_else(|e| panic!("{cell}: holder's get: {e}"));
                assert_eq!(h.id, 1, "{cell}: the holder has the first connection");
                Some(h)
            }
            None => None,
        };
        let gate = if cell.scripts_dial() {
            cell.dial.script(&mock, K, slow)
        } else {
            None
        };
        World {
            cell,
            mock,
            pool,
            t0: Instant::now(),
            connect_timeout,
            slow,
            holder,
            gate,
            second: None,
        }
    }

    /// After `G`'s first poll: checks what arming it did, then (at 5 s)
    /// queues the second waiter if the cell has one.
    async fn after_arm(&mut self) {
        let cell = self.cell;
        settle().await;
        let (mut want, dials) = cell.armed();
        expect_counts(&self.pool, cell, "armed", want);
        assert_eq!(self.mock.connects(), dials, "{cell} armed: dials made");
        advance_to(self.t0 + SECOND_ARRIVES).await;
        if cell.second == Second::Waiter {
            let pool = self.pool.clone();
            self.second = Some(tokio::spawn(async move {
                pool.get_for(&K).await.map(Pooled::into_owned)
            }));
            settle().await;
        }
        want.waiting += cell.s();
        expect_counts(&self.pool, cell, "second waiter queued", want);
        assert_eq!(
            self.mock.connects(),
            dials,
            "{cell}: the second waiter waits at the cap without dialing"
        );
    }

    /// Brings `G` to its point. Ends right where an outcome reached `G`'s
    /// slot, with no await after it, so a `select!` completing here drops
    /// the `get` before it is polled again.
    async fn drive(&mut self) {
        let cell = self.cell;
        let s = cell.s();
        match cell.point {
            Point::AtKeyCap | Point::AtPoolCap | Point::Dialing => {}
            Point::HandedOff | Point::HandedOffAtCap => {
                // Returning is synchronous: G's slot holds the connection now.
                drop(self.holder.take().expect("holder"));
                let want = if cell.point == Point::HandedOff {
                    Counts { open: 2, lent: 1, dialing: 1, waiting: s, ..ZERO }
                } else {
                    Counts { open: 1, lent: 1, waiting: s, ..ZERO }
                };
                expect_counts(&self.pool, cell, "handed off", want);
            }
            Point::Dialed => {
                let waiting = self.pool.state().waiting;
                let gate = self.gate.take();
                cell.dial.finish(gate, self.t0, self).await;
                let mut served = false;
                for _ in 0..1000 {
                    // Checked first on every resume: nothing polls G in between.
                    if self.pool.state().waiting < waiting {
                        served = true;
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                assert!(served, "{cell}: G's dial never delivered to it");
                if cell.ok() {
                    expect_counts(
                        &self.pool,
                        cell,
                        "dial delivered",
                        Counts { open: 1, lent: 1, waiting: s, ..ZERO },
                    );
                }
            }
        }
    }

    /// Checks what `G` ended with; gives back a connection it received.
    fn check_getter(&self, g: Getter) {
        let cell = self.cell;
        match g {
            Getter::Cancelled => assert!(
                !cell.receives() && cell.cancel != Cancel::Deadline,
                "{cell}: G was cancelled, but should have completed"
            ),
            Getter::Got(r) if cell.receives() => match r {
                Ok(conn) => {
                    assert!(
                        cell.point != Point::Dialed || cell.ok(),
                        "{cell}: G got connection {} from a failed dial",
                        conn.id
                    );
                    assert_eq!(
                        (conn.id, conn.key),
                        (1, K),
                        "{cell}: G received the wrong connection"
                    );
                    drop(conn);
                }
                Err(e) => assert!(
                    cell.point == Point::Dialed && cell.dial.is_its_error(&e, self.connect_timeout),
                    "{cell}: G received an unexpected error: {e:?}"
                ),
            },
            Getter::Got(r) if cell.cancel == Cancel::Deadline => match r {
                Err(Error::Timeout {
                    waited,
                    last_connect_error: None,
                    foreign_runtime: false,
                    ..
                }) => assert!(
                    waited >= CHECKOUT && waited < CHECKOUT + Duration::from_secs(1),
                    "{cell}: G timed out after {waited:?}"
                ),
                other => panic!("{cell}: G should have timed out, got {other:?}"),
            },
            Getter::Got(r) => panic!("{cell}: G should have been cancelled, got {r:?}"),
        }
    }

    fn check_after_cancel(&self) {
        let cell = self.cell;
        expect_counts(&self.pool, cell, "after the cancel", cell.after_cancel());
        let key_waiting = self.pool.key_state(&K).map_or(0, |k| k.waiting);
        let want = if cell.point.delivered() { 0 } else { cell.s() };
        assert_eq!(key_waiting, want, "{cell} after the cancel: key waiting");
        if cell.point == Point::AtPoolCap && cell.second == Second::Alone {
            assert_eq!(
                self.pool.key_state(&K),
                None,
                "{cell}: a key with no connection and no waiter is still tracked"
            );
        }
        let timeouts = u64::from(cell.cancel == Cancel::Deadline && !cell.point.delivered());
        assert_eq!(
            self.pool.state().counters.timeouts,
            timeouts,
            "{cell}: timeouts counted"
        );
    }

    /// What happens after the cancel: the borrower lets go, the dial resolves.
    async fn rest(&mut self) {
        let cell = self.cell;
        match cell.point {
            Point::AtKeyCap => {
                let mut h = self.holder.take().expect("holder");
                Pooled::mark_broken(&mut h);
                drop(h);
                settle().await;
            }
            Point::AtPoolCap => {
                drop(self.holder.take().expect("holder"));
                settle().await;
            }
            _ => {}
        }
        match cell.point {
            Point::AtKeyCap | Point::AtPoolCap => {
                if cell.second == Second::Waiter {
                    let gate = self.gate.take();
                    cell.dial.finish(gate, Instant::now(), self).await;
                } else {
                    assert_eq!(
                        self.mock.connects(),
                        1,
                        "{cell}: a slot freed with nobody waiting started a dial"
                    );
                }
            }
            Point::Dialing | Point::HandedOff => {
                let gate = self.gate.take();
                cell.dial.finish(gate, self.t0, self).await;
            }
            Point::HandedOffAtCap | Point::Dialed => {}
        }
        settle().await;
    }

    async fn check_second(&mut self) {
        let cell = self.cell;
        let Some(handle) = self.second.take() else {
            return;
        };
        assert!(
            handle.is_finished(),
            "{cell}: the second waiter was never served (state {:?})",
            self.pool.state()
        );
        let got = handle.await.expect("second waiter's task");
        match (cell.second_gets().expect("second waiter"), got) {
            (SecondGets::Conn(id), Ok(conn)) => {
                assert_eq!(
                    (conn.id, conn.key),
                    (id, K),
                    "{cell}: the second waiter got the wrong connection"
                );
            }
            (SecondGets::DialError, Err(e)) => assert!(
                cell.dial.is_its_error(&e, self.connect_timeout),
                "{cell}: the second waiter got {e:?}"
            ),
            (want, got) => panic!("{cell}: the second waiter should get {want:?}, got {got:?}"),
        }
        settle().await;
    }

    async fn check_final(&mut self) {
        let cell = self.cell;
        let n = cell.final_idle();
        expect_counts(
            &self.pool,
            cell,
            "at the end",
            Counts { open: n, idle: n, ..ZERO },
        );
        let state = self.pool.state();
        assert_eq!(state.closing, 0, "{cell}: closes still running");
        assert_eq!(
            self.mock.connects(),
            cell.dials_made(),
            "{cell}: dials made"
        );
        assert_eq!(
            state.counters.dial_failures,
            cell.dial_failures(),
            "{cell}: dial failures counted"
        );
        let mut closed = self.mock.closed();
        closed.sort_unstable();
        assert_eq!(
            closed,
            cell.closed_early(),
            "{cell}: connections closed before the pool was"
        );

        // The pool still serves: from the idle list if it holds one of K.
        let reuse = self.pool.key_state(&K).is_some_and(|k| k.idle > 0);
        let before = self.mock.connects();
        let fresh = self
            .pool
            .get_for(&K)
            .await
            .unwrap_or_else(|e| panic!("{cell}: a fresh get failed: {e}"));
        assert_eq!(fresh.key, K, "{cell}: fresh get");
        assert_eq!(
            self.mock.connects(),
            before + usize::from(!reuse),
            "{cell}: the fresh get should {} dial",
            if reuse { "not" } else { "" }
        );
        drop(fresh);
        settle().await;
        check_counts(&self.pool, &[K, OTHER]);

        // Close: every connection ever made is closed exactly once.
        tokio::time::timeout(CELL_LIMIT, self.pool.close())
            .await
            .unwrap_or_else(|_| panic!("{cell}: close never finished: {:?}", self.pool.state()));
        let state = self.pool.state();
        assert!(state.closed, "{cell}: closed flag");
        assert_eq!(
            (state.open, state.closing, state.waiting),
            (0, 0, 0),
            "{cell}: after close"
        );
        assert_eq!(
            self.mock.connects() as u64,
            state.counters.dials,
            "{cell}: dials counted"
        );
        let made = state.counters.dials - state.counters.dial_failures;
        let mut closed = self.mock.closed();
        closed.sort_unstable();
        assert_eq!(
            closed,
            (1..=made).collect::<Vec<_>>(),
            "{cell}: every connection made must be closed exactly once"
        );
    }
}

async fn run_cell(cell: Cell) {
    let mut world = World::setup(cell).await;
    let pool = world.pool.clone();
    let getter = if cell.cancel == Cancel::Select {
        tokio::select! {
            biased;
            () = async {
                // Let the `get` branch make its first poll (arming G).
                tokio::task::yield_now().await;
                world.after_arm().await;
                world.drive().await;
            } => Getter::Cancelled,
            got = pool.get_for(&K) => Getter::Got(got.map(Pooled::into_owned)),
        }
    } else {
        let mut fut: GetFuture<'_> = if cell.cancel == Cancel::Timeout {
            Box::pin(async {
                tokio::time::timeout(WRAPPER, pool.get_for(&K))
                    .await
                    .ok()
                    .map(|got| got.map(Pooled::into_owned))
            })
        } else {
            Box::pin(async { Some(pool.get_for(&K).await.map(Pooled::into_owned)) })
        };
        assert!(
            poll_once(fut.as_mut()).is_pending(),
            "{cell}: G should have to wait"
        );
        world.after_arm().await;
        world.drive().await;
        let at = match cell.cancel {
            Cancel::Deadline => Some(CHECKOUT),
            Cancel::Timeout => Some(WRAPPER),
            Cancel::Drop | Cancel::Select => None,
        };
        match at {
            None => {
                drop(fut);
                Getter::Cancelled
            }
            Some(at) => {
                advance_to(world.t0 + at).await;
                match poll_once(fut.as_mut()) {
                    Poll::Ready(Some(got)) => Getter::Got(got),
                    Poll::Ready(None) => {
                        drop(fut);
                        Getter::Cancelled
                    }
                    Poll::Pending => panic!("{cell}: G still pending after {at:?}"),
                }
            }
        }
    };
    world.check_getter(getter);
    settle().await;
    world.check_after_cancel();
    world.rest().await;
    world.check_second().await;
    world.check_final().await;
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "non-string panic".to_owned()),
        Err(e) => e.to_string(),
    }
}

/// Runs every cell of `point` (each in its own task, so one failing cell
/// does not hide the others) and reports the failing ones.
async fn run_point(point: Point) {
    let dials: &[Dial] = if point.uses_dial() {
        &Dial::ALL
    } else {
        &[Dial::Ok]
    };
    let mut failures = Vec::new();
    let mut cells = 0;
    for &dial in dials {
        for second in Second::ALL {
            for cancel in Cancel::ALL {
                let cell = Cell { point, dial, second, cancel };
                cells += 1;
                match tokio::spawn(tokio::time::timeout(CELL_LIMIT, run_cell(cell))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => failures.push(format!("{cell}: stuck")),
                    Err(e) => failures.push(panic_message(e)),
                }
            }
        }
    }
    assert_eq!(cells, dials.len() * Second::ALL.len() * Cancel::ALL.len());
    assert!(
        failures.is_empty(),
        "{} of {cells} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One test per point, each running its sub-matrix.
macro_rules! points {
    ($($test:ident: $point:ident,)*) => {$(
        #[tokio::test(start_paused = true)]
        async fn $test() {
            run_point(Point::$point).await;
        }
    )*};
}

points! {
    cancel_while_waiting_at_key_cap: AtKeyCap,
    cancel_while_waiting_at_pool_cap: AtPoolCap,
    cancel_while_own_dial_in_flight: Dialing,
    cancel_after_hand_off_with_own_dial_in_flight: HandedOff,
    cancel_after_hand_off_at_key_cap: HandedOffAtCap,
    cancel_after_own_dial_delivered: Dialed,
}

// Beyond the matrix: cancellation through real tasks and wakers, and at scale.

/// Closes `pool`, failing (instead of hanging) if it never drains.
async fn close(pool: &Pool<M>) {
    tokio::time::timeout(CELL_LIMIT, pool.close())
        .await
        .unwrap_or_else(|_| panic!("close never finished: {:?}", pool.state()));
}

/// A getter whose task is aborted after a hand-off woke it but before it ran
/// again: the connection goes to the next waiter, or idle.
#[tokio::test(start_paused = true)]
async fn aborting_a_task_after_its_hand_off_passes_the_connection_on() {
    for second in Second::ALL {
        let (mock, pool) = M::pool(|b| b.max_open_per_key(1)).await;
        let holder = pool.get_for(&K).await.unwrap();
        let p = pool.clone();
        let getter = tokio::spawn(async move { p.get_for(&K).await.map(|c| c.id) });
        settle().await;
        let w2 = (second == Second::Waiter).then(|| {
            let p = pool.clone();
            tokio::spawn(async move { p.get_for(&K).await.map(Pooled::into_owned) })
        });
        settle().await;
        let s = usize::from(w2.is_some());
        assert_eq!(
            counts(&pool),
            Counts { open: 1, lent: 1, waiting: 1 + s, ..ZERO },
            "{second:?}: queued"
        );
        // Hands connection 1 to the getter's slot and wakes its task...
        drop(holder);
        // ...which is aborted before it runs again.
        getter.abort();
        let joined = getter.await;
        assert!(
            joined.as_ref().is_err_and(|e| e.is_cancelled()),
            "{second:?}: the abort should have hit before the getter ran: {joined:?}"
        );
        settle().await;
        assert_eq!(
            counts(&pool),
            Counts { open: 1, idle: 1 - s, lent: s, ..ZERO },
            "{second:?}: after abort"
        );
        if let Some(w2) = w2 {
            assert!(w2.is_finished(), "{second:?}: second waiter not served");
            let conn = w2.await.unwrap().unwrap();
            assert_eq!(conn.id, 1, "{second:?}: second waiter");
        }
        settle().await;
        assert_eq!(
            counts(&pool),
            Counts { open: 1, idle: 1, ..ZERO },
            "{second:?}: at the end"
        );
        assert_eq!(mock.connects(), 1, "{second:?}: no extra dial");
        close(&pool).await;
        assert_eq!(mock.closed(), vec![1], "{second:?}: closed once");
    }
}

/// Cancelled getters leave stale queue entries; the live ones between them
/// are still served in FIFO order, one connection passed down the line.
#[tokio::test(start_paused = true)]
async fn live_waiters_between_cancelled_ones_are_served_in_order() {
    let (mock, pool) = M::pool(|b| b.max_open_per_key(1)).await;
    let holder = pool.get_for(&K).await.unwrap();
    let order = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut cancelled = Vec::new();
    let mut live = Vec::new();
    for i in 0..6 {
        if i % 2 == 0 {
            let mut fut: GetFuture<'_> =
                Box::pin(async { Some(pool.get_for(&K).await.map(Pooled::into_owned)) });
            assert!(poll_once(fut.as_mut()).is_pending(), "getter {i} waits");
            cancelled.push(fut);
        } else {
            let p = pool.clone();
            let order = std::sync::Arc::clone(&order);
            live.push(tokio::spawn(async move {
                let conn = p.get_for(&K).await.unwrap();
                order.lock().push((i, conn.id));
                // Dropping it hands it to the next live waiter.
            }));
        }
        settle().await;
    }
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 6, ..ZERO },
        "all queued"
    );
    drop(cancelled);
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 3, ..ZERO },
        "cancelled ones gone"
    );
    drop(holder);
    settle().await;
    for h in live {
        assert!(h.is_finished(), "a live waiter was not served");
        h.await.unwrap();
    }
    assert_eq!(*order.lock(), vec![(1, 1), (3, 1), (5, 1)], "FIFO order");
    assert_eq!(
        counts(&pool),
        Counts { open: 1, idle: 1, ..ZERO },
        "at the end"
    );
    assert_eq!(mock.connects(), 1, "one connection served everybody");
    close(&pool).await;
    assert_eq!(mock.closed(), vec![1]);
}

/// A cancelled waiter no longer counts against `max_waiters`.
#[tokio::test(start_paused = true)]
async fn a_cancelled_getter_frees_its_place_under_max_waiters() {
    let (mock, pool) = M::pool(|b| b.max_open_per_key(1).max_waiters(1)).await;
    let holder = pool.get_for(&K).await.unwrap();
    for round in 0..3 {
        let mut fut = Box::pin(pool.get_for(&K));
        assert!(poll_once(fut.as_mut()).is_pending(), "round {round}: waits");
        let refused = pool.get_for(&K).await;
        assert!(
            matches!(refused, Err(Error::TooManyWaiters { max_waiters: 1, .. })),
            "round {round}: a second waiter should be refused: {refused:?}"
        );
        drop(fut);
        assert_eq!(pool.state().waiting, 0, "round {round}: waiting after drop");
    }
    assert_eq!(pool.state().counters.rejections, 3);
    let p = pool.clone();
    let waiter = tokio::spawn(async move { p.get_for(&K).await.map(|c| c.id) });
    settle().await;
    assert_eq!(pool.state().waiting, 1, "a new waiter is admitted");
    drop(holder);
    settle().await;
    assert!(waiter.is_finished(), "the admitted waiter was not served");
    assert_eq!(waiter.await.unwrap().unwrap(), 1);
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    close(&pool).await;
    assert_eq!(mock.closed(), vec![1]);
}

/// Many getters wrapped in `tokio::time::timeout`, in tasks of their own,
/// give up together (enough stale entries to make the pool compact its
/// queues); the one live getter behind them still gets the connection.
#[tokio::test(start_paused = true)]
async fn a_crowd_of_timed_out_getters_leaves_the_live_one_served() {
    const CROWD: usize = 40;
    let (mock, pool) = M::pool(|b| b.max_open_per_key(1).checkout_timeout(None)).await;
    let holder = pool.get_for(&K).await.unwrap();
    let crowd: Vec<_> = (0..CROWD)
        .map(|_| {
            let p = pool.clone();
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(1), p.get_for(&K))
                    .await
                    .is_err()
            })
        })
        .collect();
    settle().await;
    let p = pool.clone();
    let live = tokio::spawn(async move { p.get_for(&K).await.map(|c| c.id) });
    settle().await;
    assert_eq!(pool.state().waiting, CROWD + 1);
    advance_to(Instant::now() + Duration::from_secs(1)).await;
    for h in crowd {
        assert!(h.await.unwrap(), "a crowd getter should have timed out");
    }
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, waiting: 1, ..ZERO },
        "only the live getter waits"
    );
    assert_eq!(pool.key_state(&K).map(|k| k.waiting), Some(1));
    drop(holder);
    settle().await;
    assert!(live.is_finished(), "the live getter was not served");
    assert_eq!(live.await.unwrap().unwrap(), 1, "the live getter is served");
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    assert_eq!(mock.connects(), 1);
    close(&pool).await;
    assert_eq!(mock.closed(), vec![1]);
}

/// A getter whose dial failed is dropped before it picks the error up, and
/// the dial the freed slot starts for the next waiter panics: that waiter
/// sees `ConnectError::Aborted`, and nothing stays counted.
#[tokio::test(start_paused = true)]
async fn a_panicking_dial_behind_a_dropped_getter_leaks_nothing() {
    for second in Second::ALL {
        let (mock, pool) = M::pool(|b| b.max_open_per_key(1)).await;
        let gate = mock.gate(K);
        let mut fut = Box::pin(pool.get_for(&K));
        assert!(poll_once(fut.as_mut()).is_pending(), "{second:?}: waits");
        settle().await;
        let w2 = (second == Second::Waiter).then(|| {
            let p = pool.clone();
            tokio::spawn(async move { p.get_for(&K).await.map(Pooled::into_owned) })
        });
        settle().await;
        let s = usize::from(w2.is_some());
        assert_eq!(
            counts(&pool),
            Counts { open: 1, dialing: 1, waiting: 1 + s, ..ZERO },
            "{second:?}: dialing"
        );
        // G's dial fails; the slot it frees dials for W2 (if any), and
        // that dial panics.
        if s == 1 {
            mock.push(K, Step::Panic);
        }
        gate.fail("refused");
        settle().await;
        // G holds its dial's error; W2 (if any) got the freed slot, whose
        // dial panicked and was reported as aborted.
        drop(fut);
        settle().await;
        assert_eq!(counts(&pool), ZERO, "{second:?}: after drop");
        // The key is remembered for its failed dials, with nothing counted.
        let ks = pool.key_state(&K).expect("remembered for its failures");
        assert_eq!(ks.dial_failures_in_a_row, 1 + s as u32, "{second:?}");
        if let Some(w2) = w2 {
            assert!(w2.is_finished(), "{second:?}: second waiter not served");
            let got = w2.await.unwrap();
            assert!(
                matches!(got, Err(Error::Connect(ConnectError::Panicked(_)))),
                "{second:?}: second waiter should see the panicked dial: {got:?}"
            );
        }
        assert_eq!(mock.connects(), 1 + s, "{second:?}: dials");
        let fresh = pool.get_for(&K).await.unwrap();
        assert_eq!(fresh.id, 1, "{second:?}: the first connection made");
        drop(fresh);
        close(&pool).await;
        assert_eq!(mock.closed(), vec![1], "{second:?}: closed once");
    }
}
