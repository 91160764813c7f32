//! A server that accepts connections and closes them unanswered (a load
//! balancer in front of a backend that is down): the borrower reports it
//! with `Pooled::mark_refused`. On a connection lent for the first time
//! that is a failed dial of its key, whose count the next dials carry, so
//! accepted connections do not end the backoff's growth; the key then has
//! one connection at a time until one comes back unrefused. On a reused
//! connection it only breaks the connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use connpool::{ConnectError, Error, Pooled};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use crate::support::*;

use super::{
    BASE, CAP, M, U, assert_in_band, backoff_left, backoff_state, delay, delay_of, ms, secs,
};

/// `retry_in` of an `Error::Backoff` whose last dial error is a refusal.
#[track_caller]
fn refused_backoff(e: &Error<MockError>) -> Duration {
    match e {
        Error::Backoff { retry_in, last_connect_error: ConnectError::Refused, .. } => *retry_in,
        other => panic!("expected Error::Backoff after a refusal, got {other:?}"),
    }
}

/// A first connection of key 1 refused, and its backoff waited out.
async fn refused_then_waited(pool: &connpool::Pool<M>) {
    let mut conn = ok(pool.get_for(&1).await);
    Pooled::mark_refused(&mut conn);
    drop(conn);
    tokio::time::sleep(delay(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_new_connection_refused_under_its_first_request_backs_its_key_off() {
    let (mock, pool) = M::pool(|b| b.backoff(BASE, CAP)).await;
    let mut conn = ok(pool.get_for(&1).await);
    Pooled::mark_refused(&mut conn);
    drop(conn);
    assert_eq!(backoff_state(&pool, &1), (true, 1));
    assert_in_band(backoff_left(&pool, &1), delay(1));
    assert_eq!(mock.connects(), 1, "no dial in the backoff");
    let c = pool.state().counters;
    assert_eq!((c.dials, c.dial_failures, c.backoffs), (1, 1, 1));
    assert_eq!(
        ConnectError::<MockError>::Refused.to_string(),
        "the server closed the new connection under its first request, unanswered"
    );
    check_counts(&pool, &[1]);
}

#[tokio::test(start_paused = true)]
async fn a_reused_connection_refused_is_only_broken() {
    let (mock, pool) = M::pool(|b| b.backoff(BASE, CAP)).await;
    drop(ok(pool.get_for(&1).await));
    let mut conn = ok(pool.get_for(&1).await);
    assert_eq!(Pooled::uses(&conn), 2);
    Pooled::mark_refused(&mut conn);
    assert!(Pooled::is_marked_broken(&conn));
    drop(conn);
    assert!(pool.key_state(&1).is_none_or(|k| k.backoff_left.is_none()));
    drop(ok(pool.get_for(&1).await));
    assert_eq!(mock.connects(), 2, "closed, and a new dial in its place");
    assert_eq!(pool.state().counters.dial_failures, 0);
    check_counts(&pool, &[1]);
}

/// Each refusal counts one failure more than the key had, though every
/// dial in between succeeded: the backoff grows as for refused dials.
#[tokio::test(start_paused = true)]
async fn accepted_connections_do_not_end_the_backoffs_growth() {
    let (_mock, pool) = M::pool(|b| b.backoff(ms(10), CAP)).await;
    for n in 1..=5 {
        let mut conn = ok(pool.get_for(&1).await);
        assert_eq!(Pooled::uses(&conn), 1);
        Pooled::mark_refused(&mut conn);
        drop(conn);
        assert_eq!(backoff_state(&pool, &1), (true, n));
        let retry_in = backoff_left(&pool, &1);
        assert_in_band(retry_in, delay_of(ms(10), CAP, n));
        tokio::time::sleep(retry_in).await;
    }
    // A connection that comes back unrefused ends it: the next refusal
    // starts from one again.
    drop(ok(pool.get_for(&1).await));
    assert_eq!(backoff_state(&pool, &1), (false, 0));
    let reused = ok(pool.get_for(&1).await);
    let mut fresh = ok(pool.get_for(&1).await);
    assert_eq!((Pooled::uses(&reused), Pooled::uses(&fresh)), (2, 1));
    Pooled::mark_refused(&mut fresh);
    drop(fresh);
    assert_eq!(backoff_state(&pool, &1), (true, 1));
    drop(reused);
    check_counts(&pool, &[1]);
}

/// After a refusal, the key has one connection at a time: a getter that
/// finds it lent waits for it instead of dialing; once it comes back
/// unrefused, the waiters get it and dials again.
#[tokio::test(start_paused = true)]
async fn after_a_refusal_one_connection_at_a_time_until_one_is_answered() {
    let (mock, pool) = M::pool(|b| b.backoff(BASE, CAP)).await;
    refused_then_waited(&pool).await;
    let trial = ok(pool.get_for(&1).await);
    assert_eq!(mock.connects(), 2);
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { Pooled::into_owned(ok(pool.get_for(&1).await)) })
        })
        .collect();
    settle().await;
    assert_eq!(mock.connects(), 2, "no dial beside the trial");
    assert_eq!(pool.state().waiting, 3);
    drop(trial);
    let mut conns = Vec::new();
    for h in waiting {
        conns.push(join(h).await);
    }
    assert_eq!(mock.connects(), 4, "the trial's connection and two dials");
    assert_eq!(backoff_state(&pool, &1), (false, 0));
    drop(conns);
    check_counts(&pool, &[1]);
}

/// The trial fails: its waiters fail with the backoff, and no dial runs
/// beside it.
#[tokio::test(start_paused = true)]
async fn a_refused_trial_fails_its_waiters_with_the_backoff() {
    let (mock, pool) = M::pool(|b| b.backoff(BASE, CAP)).await;
    refused_then_waited(&pool).await;
    let mut trial = ok(pool.get_for(&1).await);
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { err(pool.get_for(&1).await) })
    };
    settle().await;
    Pooled::mark_refused(&mut trial);
    drop(trial);
    assert_in_band(refused_backoff(&join(waiter).await), delay(2));
    assert_eq!(backoff_state(&pool, &1), (true, 2));
    assert_eq!(mock.connects(), 2);
    check_counts(&pool, &[1]);
}

/// The figure for a restart behind a load balancer: 8 clients in a
/// loop, the server gone for 1 s while new connections are still
/// accepted (and refused under their first request). Connections asked
/// for in the outage: the 8 that replace the ones the fault broke, then
/// one trial per backoff window or probe: at most 25 in all. The first
/// success comes within a probe's delay of the server's return, and no
/// get begun after it fails but one per client.
#[tokio::test(start_paused = true)]
async fn a_restart_behind_a_load_balancer_asks_for_few_connections() {
    const CLIENTS: usize = 8;
    const RETRY: Duration = Duration::from_millis(10);
    const PROBE_EVERY: Duration = Duration::from_millis(400);
    let mock = U::new();
    let pool = mock.core_pool(|b| b.backoff(BASE, secs(5))).await;
    let down = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let t_down = t0 + ms(505);
    let t_up = t_down + secs(1);
    let failed_after_up = Arc::new(AtomicUsize::new(0));
    let clients: Vec<JoinHandle<Instant>> = (0..CLIENTS)
        .map(|_| {
            let (pool, down) = (pool.clone(), Arc::clone(&down));
            let failed_after_up = Arc::clone(&failed_after_up);
            tokio::spawn(async move {
                let mut first_after_up = None;
                while Instant::now() < t_up + secs(2) {
                    let began = Instant::now();
                    match pool.get().await {
                        Ok(mut conn) => {
                            if down.load(Ordering::SeqCst) {
                                Pooled::mark_refused(&mut conn);
                            } else if began >= t_up {
                                first_after_up.get_or_insert(Instant::now());
                            }
                        }
                        Err(Error::Backoff { .. }) if began >= t_up => {
                            failed_after_up.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(Error::Backoff { .. }) => {}
                        Err(e) => panic!("unexpected error {e:?}"),
                    }
                    tokio::time::sleep(RETRY).await;
                }
                first_after_up.expect("served after the return")
            })
        })
        .collect();
    sleep_until(t_down).await;
    let before = mock.connects();
    assert_eq!(
        before, CLIENTS,
        "one connection per client before the fault"
    );
    down.store(true, Ordering::SeqCst);
    sleep_until(t_up).await;
    down.store(false, Ordering::SeqCst);
    let mut served = Vec::new();
    for h in clients {
        served.push(join(h).await);
    }
    let asked = mock.connects() - before;
    let first = *served.iter().min().unwrap();
    assert!(
        first - t_up <= PROBE_EVERY,
        "first success {:?} after the return",
        first - t_up
    );
    assert!(failed_after_up.load(Ordering::SeqCst) <= CLIENTS);
    // Without counting refusals as failed dials: a connection per try,
    // about 800 (8 clients, one try per 10 ms).
    assert!(asked <= 25, "{asked} connections asked for");
    check_counts(&pool, &[()]);
}
