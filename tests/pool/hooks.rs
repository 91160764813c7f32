//! Hooks: `after_connect` (inside the dial), `before_lend` (before a
//! connection from the idle list is lent), `after_return` (after a return,
//! in a task, before the connection is lent again or parked). Each runs
//! when it should and not otherwise, its error does what it should, and a
//! hook that hangs is bounded (`close()` still drains). Panics are in the
//! matrix of `user_code`.
//!
//! Paused clock, current-thread runtime, pools from `core_builder` (every
//! lifecycle feature off) plus the hook under test. The hooks record the
//! ids of the connections they ran on and behave as the test scripts them.

use std::sync::Arc;
use std::time::Duration;

use connpool::{ConnectError, Error, Pooled};
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::support::*;

type U = Mock<()>;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// What a scripted hook does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Does {
    Pass,
    Fail,
    /// Never finishes.
    Hang,
    /// Waits until [`Script::release`].
    Hold,
}

/// A scripted hook's behaviour and record.
struct Script {
    does: Mutex<Does>,
    ran_on: Mutex<Vec<u64>>,
    release: Notify,
}

impl Script {
    fn new(does: Does) -> Arc<Self> {
        Arc::new(Self {
            does: Mutex::new(does),
            ran_on: Mutex::new(Vec::new()),
            release: Notify::new(),
        })
    }

    fn set(&self, does: Does) {
        *self.does.lock() = does;
    }

    /// Ids of the connections the hook ran on, in order.
    fn ran_on(&self) -> Vec<u64> {
        self.ran_on.lock().clone()
    }

    fn release(&self) {
        self.release.notify_one();
    }

    /// The hook, for the builder.
    fn hook(
        self: &Arc<Self>,
    ) -> impl for<'a> Fn(&'a mut MockConn<()>, &'a ()) -> BoxFuture<'a, Result<(), MockError>>
    + Send
    + Sync
    + 'static {
        let script = Arc::clone(self);
        move |conn, _| {
            let script = Arc::clone(&script);
            let id = conn.id;
            Box::pin(async move {
                script.ran_on.lock().push(id);
                let does = *script.does.lock();
                match does {
                    Does::Pass => Ok(()),
                    Does::Fail => Err(MockError("the hook says no".into())),
                    Does::Hang => std::future::pending().await,
                    Does::Hold => {
                        script.release.notified().await;
                        Ok(())
                    }
                }
            })
        }
    }
}

// ---- after_connect ----

#[tokio::test(start_paused = true)]
async fn after_connect_runs_once_per_new_connection_before_it_is_lent() {
    let script = Script::new(Does::Pass);
    let (mock, pool) = U::pool(|b| b.max_open(2).after_connect(script.hook())).await;
    let a = pool.get().await.unwrap();
    assert_eq!(
        script.ran_on(),
        [a.id],
        "ran before the connection was lent"
    );
    let b = pool.get().await.unwrap();
    assert_eq!(script.ran_on(), [a.id, b.id]);
    drop((a, b));
    drop(pool.get().await.unwrap()); // from the idle list: no new run
    assert_eq!(script.ran_on(), [1, 2]);
    assert_eq!(mock.connects(), 2);
    pool.close().await;
}

#[tokio::test(start_paused = true)]
async fn after_connect_runs_on_prewarmed_connections() {
    let script = Script::new(Does::Pass);
    let (_mock, pool) = U::pool(|b| b.initial(2).after_connect(script.hook())).await;
    assert_eq!(script.ran_on().len(), 2);
    assert_eq!(counts(&pool), Counts { open: 2, idle: 2, ..ZERO });
    pool.close().await;
}

#[tokio::test(start_paused = true)]
async fn an_after_connect_error_fails_the_dial_with_it_and_closes_the_connection() {
    let script = Script::new(Does::Fail);
    let (mock, pool) = U::pool(|b| b.after_connect(script.hook())).await;
    match pool.get().await {
        Err(e @ Error::Connect(ConnectError::Manager(_))) => {
            assert_eq!(
                e.manager_error(),
                Some(&MockError("the hook says no".into()))
            );
            assert!(e.to_string().contains("the hook says no"), "{e}");
        }
        other => panic!("expected the hook's error, got {other:?}"),
    }
    settle().await;
    assert_eq!(
        mock.closed(),
        [1],
        "the connection made is closed, never lent"
    );
    let s = pool.state();
    assert_eq!(Counts::from(&s), ZERO);
    assert_eq!(s.counters.dial_failures, 1);
    assert_eq!(s.counters.closed_broken, 1);
    script.set(Does::Pass);
    assert_eq!(pool.get().await.unwrap().id, 2);
    pool.close().await;
}

#[tokio::test(start_paused = true)]
async fn an_after_connect_that_hangs_times_the_dial_out() {
    let script = Script::new(Does::Hang);
    let (mock, pool) = U::pool(|b| b.connect_timeout(secs(2)).after_connect(script.hook())).await;
    match pool.get().await {
        Err(Error::Connect(ConnectError::Timeout(t))) => assert_eq!(t, secs(2)),
        other => panic!("expected a dial timeout, got {other:?}"),
    }
    settle().await;
    assert_eq!(mock.closed(), [1]);
    assert_eq!(counts(&pool), ZERO);
    pool.close().await;
}

// ---- before_lend ----

#[tokio::test(start_paused = true)]
async fn before_lend_runs_on_idle_checkouts_not_on_dials_or_hand_offs() {
    let script = Script::new(Does::Pass);
    let (_mock, pool) = U::pool(|b| b.max_open(1).before_lend(script.hook())).await;
    let g = pool.get().await.unwrap(); // dialed
    assert_eq!(script.ran_on(), [0_u64; 0]);
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|g| g.id) }
    });
    settle().await;
    drop(g); // handed straight to the waiter
    assert_eq!(waiter.await.unwrap().unwrap(), 1);
    assert_eq!(script.ran_on(), [0_u64; 0]);
    drop(pool.get().await.unwrap()); // from the idle list
    assert_eq!(script.ran_on(), [1]);
    let c = pool.state().counters;
    assert_eq!((c.before_lend_checks, c.before_lend_failures), (1, 0));
    pool.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_before_lend_error_closes_the_connection_and_another_serves_the_getter() {
    let script = Script::new(Does::Fail);
    let (mock, pool) = U::pool(|b| b.max_open(1).before_lend(script.hook())).await;
    drop(pool.get().await.unwrap());
    let g = pool.get().await.expect("served by a new dial");
    assert_eq!(g.id, 2);
    assert_eq!(script.ran_on(), [1]);
    settle().await;
    assert_eq!(mock.closed(), [1]);
    let c = pool.state().counters;
    assert_eq!((c.before_lend_checks, c.before_lend_failures), (1, 1));
    assert_eq!(c.closed_broken, 1);
    drop(g);
    pool.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_before_lend_that_hangs_is_bounded_by_the_ping_timeout() {
    let script = Script::new(Does::Pass);
    let (mock, pool) = U::pool(|b| {
        b.max_open(1)
            .ping_timeout(secs(1))
            .before_lend(script.hook())
    })
    .await;
    drop(pool.get().await.unwrap());
    script.set(Does::Hang);
    let g = pool.get().await.expect("served by a new dial");
    assert_eq!(g.id, 2);
    settle().await;
    assert_eq!(mock.closed(), [1]);
    assert_eq!(pool.state().counters.before_lend_failures, 1);
    drop(g);
    pool.close().await;
}

// ---- after_return ----

#[tokio::test(start_paused = true)]
async fn after_return_runs_off_the_borrowers_path_before_the_next_lending() {
    let script = Script::new(Does::Hold);
    let (_mock, pool) = U::pool(|b| b.max_open(1).after_return(script.hook())).await;
    drop(pool.get().await.unwrap()); // the drop does not wait for the hook
    settle().await;
    assert_eq!(script.ran_on(), [1]);
    assert_eq!(
        counts(&pool),
        Counts { open: 1, recycling: 1, ..ZERO },
        "lent to nobody"
    );
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|g| g.id) }
    });
    settle().await;
    assert!(!waiter.is_finished(), "a recycling connection is not lent");
    script.release();
    assert_eq!(
        waiter.await.unwrap().unwrap(),
        1,
        "recycled, then handed over"
    );
    settle().await;
    let s = pool.state();
    assert_eq!(
        Counts::from(&s),
        Counts { open: 1, recycling: 1, ..ZERO },
        "the waiter's return"
    );
    assert_eq!((s.counters.recycles, s.counters.recycle_failures), (1, 0));
    script.release();
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    pool.close().await;
}

#[tokio::test(start_paused = true)]
async fn an_after_return_error_closes_the_connection_as_broken() {
    let script = Script::new(Does::Fail);
    let (mock, pool) = U::pool(|b| b.max_open(1).after_return(script.hook())).await;
    drop(pool.get().await.unwrap());
    settle().await;
    assert_eq!(mock.closed(), [1]);
    let s = pool.state();
    assert_eq!(Counts::from(&s), ZERO);
    assert_eq!((s.counters.recycles, s.counters.recycle_failures), (1, 1));
    assert_eq!(s.counters.closed_broken, 1);
    assert_eq!(pool.get().await.unwrap().id, 2, "its slot is free");
    pool.close().await;
}

#[tokio::test(start_paused = true)]
async fn an_after_return_that_hangs_does_not_hang_close() {
    let script = Script::new(Does::Hang);
    let (mock, pool) = U::pool(|b| b.ping_timeout(secs(3)).after_return(script.hook())).await;
    drop(pool.get().await.unwrap());
    settle().await;
    assert_eq!(counts(&pool).recycling, 1);
    tokio::time::timeout(secs(4), pool.close())
        .await
        .expect("close() drains once the hook's time limit passes");
    assert_eq!(mock.closed(), [1]);
    assert_eq!(pool.state().counters.closed_broken, 1);
}

#[tokio::test(start_paused = true)]
async fn after_return_skips_connections_that_close_and_shared_ones() {
    let script = Script::new(Does::Pass);
    let (mock, pool) = U::pool(|b| b.max_uses(2).after_return(script.hook())).await;
    let mut g = pool.get().await.unwrap();
    Pooled::mark_broken(&mut g);
    drop(g);
    drop(pool.get().await.unwrap()); // conn 2, first use: recycled
    settle().await;
    drop(pool.get().await.unwrap()); // conn 2, used up: closed
    settle().await;
    assert_eq!(script.ran_on(), [2]);
    assert_eq!(mock.closed(), [1, 2]);
    pool.close().await;

    let script = Script::new(Does::Pass);
    let (mock, pool) = U::pool(|b| b.after_return(script.hook())).await;
    mock.share(4);
    drop(pool.get().await.unwrap());
    settle().await;
    assert_eq!(
        script.ran_on(),
        [0_u64; 0],
        "a shared connection is not recycled"
    );
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    pool.close().await;
}

#[tokio::test(start_paused = true)]
async fn without_hooks_a_return_parks_at_once() {
    let (_mock, pool) = U::pool(|b| b).await;
    drop(pool.get().await.unwrap());
    // No task ran in between: nothing is recycling.
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    let c = pool.state().counters;
    assert_eq!((c.recycles, c.before_lend_checks), (0, 0));
    pool.close().await;
}

/// Run-time control meets recycling: a connection out for its recycle when
/// its key is closed on demand comes back to be closed (`Retired`), not
/// parked; after a shrink below what is open, it closes instead of resting
/// over the cap.
#[tokio::test(start_paused = true)]
async fn a_recycling_connection_of_a_closed_key_or_over_a_shrunk_cap_is_retired() {
    let script = Script::new(Does::Hold);
    let (mock, pool) = U::pool(|b| b.max_open(2).after_return(script.hook())).await;
    drop(pool.get().await.unwrap());
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 1, recycling: 1, ..ZERO });
    pool.close_key(&());
    script.release();
    settle().await;
    assert_eq!(mock.closed(), [1]);
    assert_eq!(pool.state().counters.closed_retired, 1);
    assert_eq!(counts(&pool), ZERO);

    let (a, b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    drop(a);
    settle().await;
    let one = pool
        .limits()
        .max_open(1)
        .max_open_per_key(1)
        .max_idle(1)
        .max_idle_per_key(1);
    pool.resize(one).unwrap();
    script.release();
    settle().await;
    assert_eq!(pool.state().counters.closed_retired, 2, "over the new cap");
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    drop(b);
    script.release();
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 1, idle: 1, ..ZERO });
    pool.close().await;
}
