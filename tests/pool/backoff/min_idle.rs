//! `min_idle`: the background top-up, replacements, the caps and
//! `max_connecting` respected, refills retried, no idle-timeout churn.

use tokio::time::{Instant, advance, sleep_until};

use crate::support::*;

use super::{
    BASE, CAP, M, U, assert_in_band, backoff_counters, backoff_left, backoff_state, ms, ns, secs,
};

// ---------------------------------------------------------------------------
// 8. min_idle
// ---------------------------------------------------------------------------

/// `min_idle(2)`: nothing is dialed for a key before its first get; after
/// it, the key is topped up to 2 idle in the background (1 lent + 2 idle,
/// nobody waiting), and again after each checkout takes one.
#[tokio::test(start_paused = true)]
async fn min_idle_tops_up_a_key_after_its_first_get() {
    let (mock, pool) = M::pool(|b| b.min_idle(2)).await;
    settle().await;
    assert_eq!(mock.connects(), 0);
    assert_eq!(pool.key_state(&1), None);

    let a = ok(pool.get_for(&1).await);
    settle().await;
    assert_eq!(a.id, 1);
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 3, idle: 2, lent: 1, ..ZERO })
    );
    assert_eq!(mock.connects(), 3);
    assert_eq!(pool.key_state(&2), None, "unseen keys get nothing");

    let b = ok(pool.get_for(&1).await);
    assert_ne!(b.id, a.id);
    assert_eq!(mock.connects(), 3, "served from idle");
    settle().await;
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 4, idle: 2, lent: 2, ..ZERO })
    );
    assert_eq!(mock.connects(), 4);
    assert_eq!(pool.state().counters.dials, 4);
    assert!(mock.closed().is_empty());
    check_counts(&pool, &[1, 2]);

    // Returns go idle above min_idle (nothing closes them here).
    drop((a, b));
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 4, idle: 4, ..ZERO })
    );
    settle().await;
    assert_eq!(mock.connects(), 4);
}

/// `min_idle(2)` with keepalive every 1 s: the two idle connections break
/// while idle; their keepalive pings at exactly 1 s find them broken, they
/// are closed and replaced at that instant, not before.
#[tokio::test(start_paused = true)]
async fn min_idle_replaces_idle_connections_that_break() {
    let (mock, pool) = U::pool(|b| b.min_idle(2).keepalive_interval(secs(1)).jitter(0.0)).await;
    let t0 = Instant::now();
    let a = ok(pool.get().await);
    settle().await;
    assert_eq!(
        key_counts(&pool, &()),
        Some(Counts { open: 3, idle: 2, lent: 1, ..ZERO })
    );
    assert_eq!(mock.connects(), 3);
    mock.conn(2).break_it();
    mock.conn(3).break_it();

    sleep_until(t0 + secs(1) - ms(1)).await;
    settle().await;
    assert_eq!(mock.connects(), 3);
    assert!(mock.closed().is_empty());
    sleep_until(t0 + secs(1)).await;
    settle().await;
    let mut closed = mock.closed();
    closed.sort_unstable();
    assert_eq!(closed, vec![2, 3]);
    assert_eq!(pool.state().counters.closed_keepalive, 2);
    assert_eq!(mock.connects(), 5, "both replaced");
    assert_eq!(
        key_counts(&pool, &()),
        Some(Counts { open: 3, idle: 2, lent: 1, ..ZERO })
    );
    assert_eq!(Instant::now(), t0 + secs(1));
    check_counts(&pool, &[()]);
    drop(a);
}

/// `min_idle(2)` with `max_open_per_key(2)`: with one connection lent, only
/// one more can be opened, so the key stays at 1 idle; with both lent, none.
#[tokio::test(start_paused = true)]
async fn min_idle_refill_respects_max_open_per_key() {
    let (mock, pool) = M::pool(|b| b.max_open_per_key(2).min_idle(2)).await;
    let a = ok(pool.get_for(&1).await);
    settle().await;
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 2, idle: 1, lent: 1, ..ZERO })
    );
    assert_eq!(mock.connects(), 2);
    let b = ok(pool.get_for(&1).await);
    settle().await;
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 2, lent: 2, ..ZERO })
    );
    assert_eq!(mock.connects(), 2);
    drop((a, b));
    settle().await;
    assert_eq!(
        key_counts(&pool, &1),
        Some(Counts { open: 2, idle: 2, ..ZERO })
    );
    assert_eq!(mock.connects(), 2);
    check_counts(&pool, &[1]);
}

/// `min_idle(3)` with `max_connecting(1)`, gated dials: the refill dials one
/// at a time after the getter's own dial, never 2 in flight.
#[tokio::test(start_paused = true)]
async fn min_idle_refill_respects_max_connecting() {
    let (mock, pool) = U::pool(|b| b.max_connecting(1).min_idle(3)).await;
    let gates: Vec<_> = (0..4).map(|_| mock.gate(())).collect();
    let g = spawn_get(&pool, ());
    settle().await;
    assert_eq!(
        key_counts(&pool, &()),
        Some(Counts { open: 1, dialing: 1, waiting: 1, ..ZERO })
    );
    assert_eq!(mock.connects(), 1);
    for (i, gate) in gates.into_iter().enumerate() {
        gate.succeed();
        settle().await;
        let s = pool.key_state(&()).unwrap();
        assert!(s.dialing <= 1, "{s:?}");
        // After dial i (0-based): the getter served, i idle, one more
        // dial in flight until there are 3 idle.
        let dialing = usize::from(i < 3);
        assert_eq!(
            Counts::from(&s),
            Counts { open: 1 + i + dialing, idle: i, lent: 1, dialing, ..ZERO },
            "after dial {}",
            i + 1
        );
        assert_eq!(mock.connects(), 1 + i + dialing);
        check_counts(&pool, &[()]);
    }
    assert!(g.is_finished());
    let c = ok(join(g).await);
    assert_eq!(c.id, 1);
}

/// `min_idle(1)` with backoff: the refill dial fails, the key backs off for
/// `r` in [50, 100] ms and nothing dials during it; the refill is retried by
/// the maintenance task when the backoff ends (at `r`, rounded up to tokio's
/// millisecond tick), succeeds and ends the backoff.
#[tokio::test(start_paused = true)]
async fn a_failed_refill_is_retried_when_the_backoff_ends() {
    let (mock, pool) = U::pool(|b| b.backoff(BASE, CAP).min_idle(1)).await;
    mock.push((), Step::Ok); // the getter's dial
    mock.push((), Step::Fail("refill refused")); // the refill
    let t0 = Instant::now();
    let a = ok(pool.get().await);
    settle().await;
    assert_eq!(a.id, 1);
    assert_eq!(mock.dials(), vec![t0, t0]);
    assert_eq!(
        key_counts(&pool, &()),
        Some(Counts { open: 1, lent: 1, ..ZERO })
    );
    assert_eq!(backoff_state(&pool, &()), (true, 1));
    let r = backoff_left(&pool, &());
    assert_in_band(r, BASE);
    assert_eq!(backoff_counters(&pool), (1, 1, 0));

    // Nothing dials before the end of the backoff (`advance`: exact, where
    // `sleep_until` would round up to the next millisecond).
    advance(r - ns(1)).await;
    settle().await;
    assert_eq!(mock.dials().len(), 2);
    // The refill dials at the end (tokio wakes on the next millisecond tick).
    sleep_until(t0 + r + ms(1)).await;
    settle().await;
    let dials = mock.dials();
    assert_eq!(dials.len(), 3, "the refill was retried");
    let retry_at = dials[2] - t0;
    assert!(
        retry_at >= r && retry_at <= r + ms(1),
        "retried at {retry_at:?}, backoff {r:?}"
    );
    assert!(retry_at >= BASE / 2 && retry_at <= BASE + ms(1));
    assert_eq!(
        key_counts(&pool, &()),
        Some(Counts { open: 2, idle: 1, lent: 1, ..ZERO })
    );
    assert_eq!(backoff_state(&pool, &()), (false, 0));
    check_counts(&pool, &[()]);
    drop(a);
}

/// `min_idle(2)` with `idle_timeout(1 s)`: the idle timeout only trims the
/// key down to 2 idle (one connection, at exactly 1 s) and then never closes
/// or re-dials anything over ten more timeouts.
#[tokio::test(start_paused = true)]
async fn min_idle_is_not_churned_by_the_idle_timeout() {
    let (mock, pool) = U::pool(|b| b.min_idle(2).idle_timeout(secs(1)).jitter(0.0)).await;
    let t0 = Instant::now();
    let a = ok(pool.get().await);
    settle().await;
    assert_eq!(mock.connects(), 3);
    advance(ms(100)).await;
    drop(a);
    assert_eq!(
        key_counts(&pool, &()),
        Some(Counts { open: 3, idle: 3, ..ZERO })
    );

    sleep_until(t0 + secs(1) - ms(1)).await;
    settle().await;
    assert!(mock.closed().is_empty());
    sleep_until(t0 + secs(1)).await;
    settle().await;
    let closed = mock.closed();
    assert!(closed == [2] || closed == [3], "closed {closed:?}");
    assert_eq!(
        key_counts(&pool, &()),
        Some(Counts { open: 2, idle: 2, ..ZERO })
    );

    sleep_until(t0 + secs(11)).await;
    settle().await;
    assert_eq!(mock.connects(), 3, "no re-dial");
    assert_eq!(mock.closed().len(), 1, "no further close");
    let c = pool.state().counters;
    assert_eq!((c.closed_idle_timeout, c.closed_total()), (1, 1));
    assert_eq!(
        key_counts(&pool, &()),
        Some(Counts { open: 2, idle: 2, ..ZERO })
    );
    check_counts(&pool, &[()]);
}
