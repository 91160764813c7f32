//! Probes: while a key that getters want backs off for longer than the
//! pool's probe interval (400 ms, jittered down to 200 ms), the pool dials
//! it itself, one dial at a time; a probe that succeeds ends the backoff at
//! once for every getter, one that fails extends it. A key nobody wants is
//! not probed.

use std::time::Duration;

use tokio::time::{Instant, advance};

use crate::support::*;

use super::{M, backoff_error, backoff_state, connect_error, ms, secs};

/// A backoff long enough that probes run inside it: 5 s, then 10 s.
fn long_backoff(b: connpool::Builder<M>) -> connpool::Builder<M> {
    b.backoff(secs(5), secs(10))
}

/// Advances the clock 10 ms at a time until the mock has made `n` dials,
/// for at most `limit`; how long that took.
async fn until_dials(mock: &M, n: usize, limit: Duration) -> Duration {
    let t = Instant::now();
    while mock.connects() < n {
        assert!(Instant::now() - t < limit, "no dial {n} within {limit:?}");
        advance(ms(10)).await;
        settle().await;
    }
    Instant::now() - t
}

#[tokio::test(start_paused = true)]
async fn a_wanted_key_is_probed_and_a_successful_probe_ends_its_backoff() {
    let (mock, pool) = M::pool(long_backoff).await;
    mock.push(1, Step::Fail("down"));
    mock.push(1, Step::Fail("still down"));
    let t0 = Instant::now();
    assert_eq!(connect_error(&err(pool.get_for(&1).await)), "down");
    // Wanted: a getter refused by the backoff.
    let (retry_in, _) = backoff_error(&err(pool.get_for(&1).await));
    assert!(retry_in >= secs(2), "{retry_in:?}");

    // The first probe, 200 to 400 ms after the failure, fails: still
    // backing off.
    let took = until_dials(&mock, 2, ms(410)).await;
    assert!(took >= ms(200), "{took:?}");
    assert_eq!(backoff_state(&pool, &1), (true, 2));
    // Wanted again; the next probe succeeds: the backoff is over for all,
    // long before its 5 s.
    let (_, why) = backoff_error(&err(pool.get_for(&1).await));
    assert_eq!(why, "still down");
    until_dials(&mock, 3, ms(410)).await;
    assert_eq!(backoff_state(&pool, &1), (false, 0));
    assert_eq!(pool.state().idle, 1, "the probe's connection waits idle");
    let conn = ok(pool.get_for(&1).await);
    assert_eq!(mock.connects(), 3, "served by the probe's connection");
    drop(conn);
    let c = pool.state().counters;
    assert_eq!((c.probes, c.dials), (2, 3));
    assert!(Instant::now() - t0 < secs(1));
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
    let (mock, pool) = M::pool(long_backoff).await;
    mock.push(1, Step::Fail("down"));
    assert_eq!(connect_error(&err(pool.get_for(&1).await)), "down");
    // The probe hangs (a black-holed server): no second one meanwhile,
    // and the getters keep failing fast.
    mock.push(1, Step::Hang);
    for _ in 0..20 {
        backoff_error(&err(pool.get_for(&1).await));
        advance(ms(100)).await;
        settle().await;
        assert!(pool.state().dialing <= 1);
    }
    assert_eq!(
        mock.connects(),
        2,
        "the failed dial, then one probe in flight"
    );
    assert_eq!(pool.state().counters.probes, 1);
}

/// A getter refused late in one backoff, after its probe was due, is not
/// a reason to probe in the next one: a dial that succeeds clears what
/// the key's backoff knew (regression: a stale want probed a key nobody
/// had asked for since).
#[tokio::test(start_paused = true)]
async fn a_success_forgets_who_wanted_the_key() {
    let (mock, pool) = M::pool(long_backoff).await;
    mock.push(1, Step::Fail("down"));
    assert_eq!(connect_error(&err(pool.get_for(&1).await)), "down");
    // Past the probe's time, nobody asked: no probe; then a getter is
    // refused, too late for this backoff's probe.
    advance(ms(450)).await;
    settle().await;
    assert_eq!(mock.connects(), 1);
    backoff_error(&err(pool.get_for(&1).await));
    // The backoff ends (at most 5 s), and the next get dials and succeeds.
    advance(secs(5)).await;
    settle().await;
    drop(ok(pool.get_for(&1).await));
    assert_eq!(mock.connects(), 2);

    // A new failure, and nobody asks during its backoff: no probe.
    mock.push(1, Step::Fail("down again"));
    let pin = ok(pool.get_for(&1).await); // the idle connection
    assert_eq!(connect_error(&err(pool.get_for(&1).await)), "down again");
    advance(ms(450)).await;
    settle().await;
    assert_eq!(
        mock.connects(),
        3,
        "no probe: nobody asked since the success"
    );
    assert_eq!(pool.state().counters.probes, 0);
    drop(pin);
}
