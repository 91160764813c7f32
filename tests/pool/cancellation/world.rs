//! One cell's pool, mock and actors, and the checks made at each stage of its
//! story.

use std::time::Duration;

use connpool::{Error, Pool, Pooled};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::support;
use crate::support::{Counts, Gate, ZERO, check_counts, counts, settle};

use super::cell::{Cancel, Cell, Point, Second, SecondGets};
use super::{CELL_LIMIT, CHECKOUT, Conn, GetResult, K, M, OTHER, SECOND_ARRIVES, advance_to};

/// How `G` ended.
pub(super) enum Getter {
    Cancelled,
    Got(GetResult),
}

/// One cell's pool, mock and actors.
pub(super) struct World {
    cell: Cell,
    mock: M,
    pub(super) pool: Pool<M>,
    pub(super) t0: Instant,
    pub(super) connect_timeout: Duration,
    pub(super) slow: Duration,
    /// The borrower `H` (points where one holds the cap or hands off).
    holder: Option<Conn>,
    gate: Option<Gate>,
    second: Option<JoinHandle<GetResult>>,
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
    pub(super) async fn setup(cell: Cell) -> World {
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
    pub(super) async fn after_arm(&mut self) {
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
    pub(super) async fn drive(&mut self) {
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
    pub(super) fn check_getter(&self, g: Getter) {
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

    pub(super) fn check_after_cancel(&self) {
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
    pub(super) async fn rest(&mut self) {
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

    pub(super) async fn check_second(&mut self) {
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

    pub(super) async fn check_final(&mut self) {
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
