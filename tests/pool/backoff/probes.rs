//! Probes: while a key that getters want backs off, the pool dials it
//! itself, one dial at a time, within its probe delay (400 ms, jittered
//! down to 200 ms) or at the backoff's end; a getter that finds the key in
//! backoff waits for the probe: one that succeeds serves it and ends the
//! backoff at once for every getter, one that fails fails it (with the
//! probe's error) and extends the backoff. A key nobody wants is not
//! probed; a getter after a probe time that passed unwanted sets the next.

use connpool::{ConnectError, Error};
use tokio::time::{Instant, advance};

use crate::support::*;

use std::time::Duration;

use super::{M, U, backoff_error, backoff_state, connect_error, ms, secs};

/// A backoff long enough that probes run inside it: 5 s, then 10 s.
fn long_backoff(b: connpool::Builder<M>) -> connpool::Builder<M> {
    b.backoff(secs(5), secs(10))
}

#[tokio::test(start_paused = true)]
async fn a_getter_waits_for_the_probe_which_fails_it_or_serves_it() {
    let (mock, pool) = M::pool(long_backoff).await;
    mock.push(1, Step::Fail("down"));
    mock.push(1, Step::Fail("still down"));
    let t0 = Instant::now();
    assert_eq!(connect_error(&err(pool.get_for(&1).await)), "down");
    // A getter in the backoff waits for the probe, 200 to 400 ms after the
    // failure, which fails: so does the getter, with the probe's error,
    // and the key backs off again.
    let (retry_in, why) = backoff_error(&err(pool.get_for(&1).await));
    let waited = Instant::now() - t0;
    assert!(waited >= ms(200) && waited <= ms(400), "{waited:?}");
    assert_eq!(why, "still down");
    assert!(retry_in >= secs(2), "{retry_in:?}");
    assert_eq!(mock.connects(), 2);
    assert_eq!(backoff_state(&pool, &1), (true, 2));
    // The next getter waits for the next probe, which succeeds: it is
    // served by the probe's connection, and the backoff is over for all,
    // long before its 5 s.
    let t1 = Instant::now();
    let conn = ok(pool.get_for(&1).await);
    assert!(Instant::now() - t1 <= ms(400), "{:?}", Instant::now() - t1);
    assert_eq!(mock.connects(), 3, "served by the probe's connection");
    assert_eq!(backoff_state(&pool, &1), (false, 0));
    drop(conn);
    let c = pool.state().counters;
    assert_eq!((c.probes, c.dials, c.backoff_rejections), (2, 3, 1));
    assert!(Instant::now() - t0 < secs(1));
}

/// A getter that comes after the probe time passed with nobody asking sets
/// the next probe: it waits a probe delay (200 to 400 ms), not the rest of
/// a 5 s backoff, and is served by the probe.
#[tokio::test(start_paused = true)]
async fn a_getter_after_a_skipped_probe_sets_the_next() {
    let (mock, pool) = M::pool(long_backoff).await;
    mock.push(1, Step::Fail("down"));
    assert_eq!(connect_error(&err(pool.get_for(&1).await)), "down");
    advance(ms(450)).await;
    settle().await;
    assert_eq!(mock.connects(), 1, "nobody asked: no probe");
    let t = Instant::now();
    let conn = ok(pool.get_for(&1).await);
    let waited = Instant::now() - t;
    assert!(waited >= ms(200) && waited <= ms(401), "{waited:?}");
    assert_eq!(mock.connects(), 2);
    assert_eq!(pool.state().counters.probes, 1);
    assert_eq!(backoff_state(&pool, &1), (false, 0));
    drop(conn);
}

#[tokio::test(start_paused = true)]
async fn a_key_nobody_wants_is_not_probed() {
    let (mock, pool) = M::pool(long_backoff).await;
    mock.push(1, Step::Fail("down"));
    assert_eq!(connect_error(&err(pool.get_for(&1).await)), "down");
    advance(secs(2)).await;
    settle().await;
    assert_eq!(mock.connects(), 1, "no getter since the failure: no probe");
    assert_eq!(pool.state().counters.probes, 0);
}

#[tokio::test(start_paused = true)]
async fn one_probe_at_a_time_however_many_getters() {
    let (mock, pool) = M::pool(|b| long_backoff(b).connect_timeout(secs(1))).await;
    mock.push(1, Step::Fail("down"));
    assert_eq!(connect_error(&err(pool.get_for(&1).await)), "down");
    // The probe hangs (a black-holed server) until the dial's 1 s
    // timeout: 20 getters wait for it, no second dial meanwhile, and
    // its failure fails them all.
    mock.push(1, Step::Hang);
    let getters: Vec<_> = (0..20)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get_for(&1).await.map(drop) })
        })
        .collect();
    for _ in 0..12 {
        advance(ms(100)).await;
        settle().await;
        assert!(pool.state().dialing <= 1);
    }
    for getter in getters {
        let e = getter.await.unwrap().unwrap_err();
        assert!(
            matches!(
                e,
                Error::Backoff { last_connect_error: ConnectError::Timeout(_), .. }
            ),
            "{e:?}"
        );
    }
    assert_eq!(
        mock.connects(),
        2,
        "the failed dial, then one probe in flight"
    );
    assert_eq!(pool.state().counters.probes, 1);
}

/// A dial that succeeds clears what the key's backoff knew: a getter that
/// wanted the key in one backoff is no reason to probe in the next
/// (regression: a stale want probed a key nobody had asked for since).
/// Here the success is a dial in flight when the backoff began.
#[tokio::test(start_paused = true)]
async fn a_success_forgets_who_wanted_the_key() {
    let (mock, pool) = M::pool(|b| long_backoff(b).max_connecting(2)).await;
    let gate1 = mock.gate(1);
    let gate2 = mock.gate(1);
    let g1 = spawn_get(&pool, 1);
    let g2 = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(mock.connects(), 2);
    gate1.fail("down");
    assert_eq!(connect_error(&err(join(g1).await)), "down");
    assert_eq!(backoff_state(&pool, &1), (true, 1));
    // A getter in the backoff wants the key; it waits for the dial in
    // flight, whose success ends the backoff: it dials then, served too.
    let g3 = spawn_get(&pool, 1);
    settle().await;
    gate2.succeed();
    let (c2, c3) = (ok(join(g2).await), ok(join(g3).await));
    assert_eq!(mock.connects(), 3);
    assert_eq!(backoff_state(&pool, &1), (false, 0));

    // A new failure, and nobody asks during its backoff: no probe.
    mock.push(1, Step::Fail("down again"));
    assert_eq!(connect_error(&err(pool.get_for(&1).await)), "down again");
    advance(ms(450)).await;
    settle().await;
    assert_eq!(
        mock.connects(),
        4,
        "no probe: nobody asked since the success"
    );
    assert_eq!(pool.state().counters.probes, 0);
    drop((c2, c3));
}

/// 16 clients retrying every 10 ms through an outage of `down`, with the
/// pool's default backoff (100 ms to 5 s) and `max_connecting`: how many
/// dials the outage cost, and how long after the server's return the
/// first client was served.
async fn through_an_outage(down: Duration) -> (usize, Duration) {
    const CLIENTS: usize = 16;
    const RETRY: Duration = Duration::from_millis(10);
    let mock = U::new();
    mock.set_down(true);
    let pool = mock
        .core_pool(|b| b.backoff(ms(100), secs(5)).max_connecting(2))
        .await;
    let t_up = Instant::now() + down;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                loop {
                    match pool.get().await {
                        Ok(_) => return Instant::now(),
                        Err(Error::Backoff { .. } | Error::Connect(_)) => {}
                        Err(e) => panic!("unexpected error {e:?}"),
                    }
                    tokio::time::sleep(RETRY).await;
                }
            })
        })
        .collect();
    tokio::time::sleep_until(t_up).await;
    let dials = mock.dials().len();
    mock.set_down(false);
    let mut first = None;
    for h in clients {
        let served = join(h).await;
        first = Some(first.map_or(served, |f: Instant| f.min(served)));
    }
    (dials, first.unwrap() - t_up)
}

/// The probe delay grows with the outage: a server back after 1 s is
/// found within half a second, one back after a minute within the
/// backoff cap, and the minute costs the client a few dozen dials (a
/// probe every 200–400 ms throughout would be about 200).
#[tokio::test(start_paused = true)]
async fn probes_space_out_as_an_outage_lasts() {
    let (dials, found) = through_an_outage(secs(1)).await;
    println!("a 1 s outage: {dials} dials, found {found:?} after the return");
    assert!(found <= ms(500), "a 1 s outage found after {found:?}");
    assert!(dials <= 12, "{dials} dials in 1 s");

    let (dials, found) = through_an_outage(secs(60)).await;
    println!("a 60 s outage: {dials} dials, found {found:?} after the return");
    assert!(found <= secs(5), "a 60 s outage found after {found:?}");
    assert!(dials <= 40, "{dials} dials in 60 s");
    assert!(dials >= 15, "{dials} dials in 60 s: still probed");
}

/// Through a minute-long outage, with a 1 s checkout deadline and the
/// default backoff (probes spaced out to a quarter of the outage, at most
/// 5 s apart): no get runs into its deadline waiting for a probe that
/// comes after it. Each fails within `PROBE_EVERY` and a little (at once
/// when no probe is near), with the dial's error, never `Error::Timeout`;
/// late in the outage most fail at once; and the probes keep their
/// schedule (a few dozen dials in the minute, not one per get).
#[tokio::test(start_paused = true)]
async fn through_a_long_outage_a_get_fails_fast_with_the_dials_error() {
    let mock = U::new();
    mock.set_down(true);
    let pool = mock
        .core_pool(|b| b.backoff(ms(100), secs(5)).checkout_timeout(secs(1)))
        .await;
    let start = Instant::now();
    let (mut gets, mut at_once, mut late_at_once, mut late) = (0, 0, 0, 0);
    let mut longest = Duration::ZERO;
    while Instant::now() - start < secs(60) {
        let t = Instant::now();
        let e = err(pool.get().await);
        let waited = Instant::now() - t;
        gets += 1;
        longest = longest.max(waited);
        let why = match &e {
            Error::Connect(ConnectError::Manager(e)) => e.to_string(),
            Error::Backoff { last_connect_error: ConnectError::Manager(e), .. } => e.to_string(),
            other => panic!("a get failed with {other:?}, not the dial's error"),
        };
        assert!(why.contains("backend down"), "{why}");
        assert!(
            waited <= ms(450),
            "a get {:?} into the outage waited {waited:?}",
            t - start
        );
        at_once += usize::from(waited.is_zero());
        if t - start >= secs(10) {
            late += 1;
            late_at_once += usize::from(waited.is_zero());
        }
        tokio::time::sleep(ms(50)).await;
    }
    let dials = mock.dials().len();
    println!(
        "{gets} gets in 60 s: {at_once} failed at once, the longest waited {longest:?}; \
         {dials} dials"
    );
    assert!(at_once > 0, "no get failed at once");
    assert!(
        late_at_once * 10 >= late * 8,
        "after 10 s only {late_at_once} of {late} gets failed at once"
    );
    assert!(dials <= 60, "{dials} dials: the probes kept their schedule");
    assert_eq!(pool.state().counters.timeouts, 0);
}

/// A probe due within `PROBE_EVERY` but after the getter's own checkout
/// deadline is not waited for: the getter fails at once with the key's
/// error (not `Error::Timeout` at its deadline), and the probe still runs.
#[tokio::test(start_paused = true)]
async fn a_probe_after_the_getters_deadline_is_not_waited_for() {
    let (mock, pool) = M::pool(|b| long_backoff(b).checkout_timeout(ms(150))).await;
    mock.push(1, Step::Fail("down"));
    assert_eq!(connect_error(&err(pool.get_for(&1).await)), "down");
    // The probe is 200 to 400 ms away: past the 150 ms deadline.
    let t = Instant::now();
    let (_, why) = backoff_error(&err(pool.get_for(&1).await));
    assert_eq!((Instant::now(), why.as_str()), (t, "down"));
    assert_eq!(pool.state().counters.timeouts, 0);
    advance(ms(400)).await;
    settle().await;
    assert_eq!(
        mock.connects(),
        2,
        "the probe ran for the getter that wanted it"
    );
    assert_eq!(pool.state().counters.probes, 1);
}

/// A get's deadline counts from the get, in its retries too: one whose
/// first attempt spent 500 ms of its 600 on an idle connection's failed
/// health check retries, finds the key in backoff with its probe due
/// after the get's deadline, and fails at once.
#[tokio::test(start_paused = true)]
async fn a_retry_counts_its_deadline_from_the_get() {
    let (mock, pool) = M::pool(|b| {
        long_backoff(b)
            .checkout_timeout(ms(600))
            .health_check(Duration::ZERO)
    })
    .await;
    let a = ok(pool.get_for(&1).await);
    mock.push(1, Step::Fail("down"));
    assert_eq!(connect_error(&err(pool.get_for(&1).await)), "down");
    drop(a);
    mock.conn(1).kill();
    mock.delay_pings(ms(500));
    let t = Instant::now();
    let (_, why) = backoff_error(&err(pool.get_for(&1).await));
    assert_eq!(why, "down");
    assert_eq!(Instant::now() - t, ms(500), "failed at the retry");
    assert_eq!(mock.connects(), 2, "no probe waited for");
    assert_eq!(pool.state().counters.timeouts, 0);
}
