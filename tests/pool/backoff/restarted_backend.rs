//! A restarted backend: not hammered during the outage, everyone served
//! after; failed keys remembered.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connpool::{ConnectError, Error};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use crate::support::*;

use super::{BASE, CAP, U, backoff_state, connect_error, delay, ms, secs};

/// The longest time from a failed dial to the pool's next probe of a key
/// down for `down_for` (`features::backoff::probe_delay`): 400 ms, or a quarter
/// of the outage so far.
fn probe_delay(down_for: Duration) -> Duration {
    Duration::from_millis(400).max(down_for / 4)
}

// ---------------------------------------------------------------------------
// 7. A restarted backend
// ---------------------------------------------------------------------------

/// The backend is down for 3 s; 64 clients loop `get`, 10 ms apart, until
/// served. With `backoff(100 ms, 1 s)` and `max_connecting(2)`, each backoff
/// window lets at most 2 dials through, and window k lasts at least
/// min(1 s, 100 ms × 2ᵏ⁻¹)/2, so at most 9 windows start in 3 s: at most 18
/// dials, against hundreds of gets; the pool's probes (one dial at a time,
/// each failure a window of its own) are among them. A get in a backoff
/// waits for the next probe if it is due within 400 ms, and fails at once
/// otherwise. Once the backend is back (dials take 20 ms), a probe finds it
/// within a quarter of the outage (750 ms), every client is served within
/// that + a retry period + a dial, and no get that began after the first
/// success fails (one that began before it, after the return, fails at
/// once or with the probe it waited for).
#[tokio::test(start_paused = true)]
async fn restarted_backend_is_not_hammered_and_serves_everyone_after() {
    const CLIENTS: usize = 64;
    const RETRY: Duration = Duration::from_millis(10);
    const DIAL: Duration = Duration::from_millis(20);
    const MAX_CONNECTING: usize = 2;
    let outage = ms(3005); // off the clients' 10 ms retry grid
    let mock = U::new();
    mock.set_dial_time(DIAL);
    mock.set_down(true);
    let pool = mock
        .core_pool(|b| b.backoff(BASE, CAP).max_connecting(MAX_CONNECTING))
        .await;
    let t0 = Instant::now();
    let t_up = t0 + outage;
    let attempts = Arc::new(AtomicUsize::new(0));
    let failed_after_up = Arc::new(parking_lot::Mutex::new(Vec::new()));

    let clients: Vec<JoinHandle<Option<Instant>>> = (0..CLIENTS)
        .map(|_| {
            let pool = pool.clone();
            let attempts = Arc::clone(&attempts);
            let failed_after_up = Arc::clone(&failed_after_up);
            tokio::spawn(async move {
                let give_up = t0 + secs(10);
                loop {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    let began = Instant::now();
                    match pool.get().await {
                        Ok(c) => {
                            drop(c);
                            return Some(Instant::now());
                        }
                        Err(Error::Backoff { .. } | Error::Connect(_)) => {
                            if began >= t_up {
                                failed_after_up.lock().push(began);
                            }
                        }
                        Err(e) => panic!("unexpected error {e:?}"),
                    }
                    if Instant::now() >= give_up {
                        return None;
                    }
                    tokio::time::sleep(RETRY).await;
                }
            })
        })
        .collect();

    sleep_until(t_up).await;
    let outage_dials = mock.dials().iter().filter(|&&at| at < t_up).count();
    let outage_attempts = attempts.load(Ordering::SeqCst);
    let c = pool.state().counters;
    assert_eq!(c.dial_failures, outage_dials as u64, "every dial failed");
    assert!(outage_attempts > CLIENTS, "{outage_attempts} attempts");
    mock.set_down(false);

    let mut served = Vec::new();
    for h in clients {
        served.push(join(h).await.expect("a client was never served"));
    }
    let last = *served.iter().max().unwrap();
    let first = *served.iter().min().unwrap();
    let failed_after_up = std::mem::take(&mut *failed_after_up.lock());
    let late = failed_after_up
        .iter()
        .filter(|&&began| began >= first)
        .count();
    assert_eq!(
        late,
        0,
        "{late} gets begun after the first success failed ({} after the return)",
        failed_after_up.len()
    );
    assert!(
        last <= t_up + probe_delay(outage) + RETRY + DIAL,
        "last client served {:?} after the backend came back",
        last - t_up
    );
    // Dials started for getters that a hand-off served first end within a
    // dial, and their connections go idle.
    tokio::time::sleep(DIAL).await;
    settle().await;
    let s = pool.state();
    let all_idle = Counts { open: s.idle, idle: s.idle, ..ZERO };
    assert_eq!(Counts::from(&s), all_idle);
    assert!(s.idle >= 1, "{s:?}");
    assert_eq!(s.counters.timeouts, 0);
    assert_eq!(backoff_state(&pool, &()), (false, 0));
    check_counts(&pool, &[()]);

    // Checked last, so that a failure here still shows the recovery worked.
    // Windows that can start within the outage: the first burst, then one
    // after each backoff of at least d(k)/2.
    let mut windows = 1;
    let mut elapsed = Duration::ZERO;
    loop {
        elapsed += delay(windows) / 2;
        if elapsed >= outage {
            break;
        }
        windows += 1;
    }
    assert_eq!(windows, 9);
    let bound = MAX_CONNECTING * windows as usize;
    assert!(
        outage_dials <= bound,
        "{outage_dials} dials during the outage (bound {bound}) for {outage_attempts} gets"
    );
    assert!(
        outage_dials * 20 < outage_attempts,
        "{outage_dials} dials for {outage_attempts} gets"
    );
}

/// A key whose dial failed is remembered during its backoff and for one
/// backoff cap after it, so failures in a row keep counting across windows
/// even when nothing else of the key is open (regression: the key was
/// forgotten with its backoff the moment its only dial failed); then it is
/// forgotten, and a later get starts from scratch.
#[tokio::test(start_paused = true)]
async fn a_failed_key_is_remembered_for_a_cap_after_its_backoff() {
    let mock = Mock::<u32>::new();
    mock.push(1, Step::Fail("down"));
    let pool = mock.core_pool(|b| b.backoff(ms(100), ms(1000))).await;
    let t0 = Instant::now();
    assert!(matches!(pool.get_for(&1).await, Err(Error::Connect(_))));
    let ks = pool.key_state(&1).expect("kept during its backoff");
    assert!(ks.backoff_left.is_some());
    assert_eq!(ks.dial_failures_in_a_row, 1);
    // The backoff ends within [50, 100] ms; the key is kept a cap longer.
    sleep_until(t0 + ms(1049)).await;
    settle().await;
    let ks = pool.key_state(&1).expect("kept a cap after its backoff");
    assert!(ks.backoff_left.is_none());
    assert_eq!(ks.dial_failures_in_a_row, 1);
    sleep_until(t0 + ms(1101)).await;
    settle().await;
    assert!(pool.key_state(&1).is_none(), "forgotten at last");
    assert_eq!(pool.state().keys, 0);
    check_counts(&pool, &[1]);
}

/// Without backoff, a key whose dial failed is remembered all the same: a
/// later checkout that times out reports that dial error, and the failures
/// in a row keep counting (regression: the key, with nothing open and
/// nobody waiting, was forgotten with its error at once); then it is
/// forgotten.
#[tokio::test(start_paused = true)]
async fn without_backoff_a_timeout_still_reports_the_last_dial_error() {
    let mock = Mock::<u32>::new();
    mock.push(1, Step::Fail("down"));
    mock.push(1, Step::Delay(secs(3)));
    let pool = mock.core_pool(|b| b.checkout_timeout(secs(1))).await;
    let t0 = Instant::now();
    assert_eq!(connect_error(&err(pool.get_for(&1).await)), "down");
    let ks = pool.key_state(&1).expect("remembered after its failure");
    assert_eq!(
        (ks.dial_failures_in_a_row, ks.backoff_left.is_some()),
        (1, false)
    );
    match err(pool.get_for(&1).await) {
        Error::Timeout { last_connect_error: Some(ConnectError::Manager(m)), .. } => {
            assert_eq!(m.0, "down")
        }
        other => panic!("expected a timeout naming the dial error, got {other:?}"),
    }
    // The slow dial succeeds: the failure is over, and the key is kept for
    // its idle connection.
    at(t0 + secs(4)).await;
    assert_eq!(pool.key_state(&1).unwrap().dial_failures_in_a_row, 0);

    // A key that only failed is forgotten after the failure memory.
    mock.push(2, Step::Fail("down"));
    let t1 = Instant::now();
    assert!(matches!(pool.get_for(&2).await, Err(Error::Connect(_))));
    at(t1 + secs(5) - ms(1)).await;
    assert!(pool.key_state(&2).is_some(), "remembered");
    at(t1 + secs(5) + ms(1)).await;
    assert!(pool.key_state(&2).is_none(), "forgotten at last");
    check_counts(&pool, &[1, 2]);
}
