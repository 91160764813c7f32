//! Abandoned pings: a getter cancelled mid health check, a missed ping on a
//! broken connection.

use std::time::Duration;
use tokio::time::Instant;

use crate::support::*;

use super::{U, keepalive, keepalive_pool, secs};

// ---------------------------------------------------------------------------
// Abandoned pings
// ---------------------------------------------------------------------------

/// A getter that gives up in the middle of its health-check ping leaves the
/// connection in an unknown state (a ping written, its answer unread): it is
/// closed as `HealthCheck`, never put back idle for the next getter.
#[tokio::test(start_paused = true)]
async fn a_getter_cancelled_mid_health_check_closes_the_conn() {
    let (mock, pool) = U::pool(|b| {
        b.health_check(Duration::ZERO)
            .ping_timeout(secs(5))
            .initial(1)
    })
    .await;
    mock.conn(1).mute();
    let g = spawn_get(&pool, ());
    settle().await;
    assert_eq!(mock.pings().len(), 1, "the ping is in flight");
    assert_eq!(counts(&pool), Counts { open: 1, lent: 1, ..ZERO });
    g.abort();
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed_health_check, 1);
    assert_eq!(counts(&pool), ZERO);
    check_counts(&pool, &[()]);
    // The next getter dials a fresh connection.
    let c = ok(pool.get().await);
    assert_eq!(c.id, 2);
}

/// A keepalive ping that fails on a connection `health` then reports
/// broken (the manager's way to say "abandoned mid-exchange") closes it at
/// once, whatever `keepalive_max_missed` allows.
#[tokio::test(start_paused = true)]
async fn a_missed_ping_on_a_broken_conn_closes_it_at_once() {
    let mock = U::new();
    let pool = keepalive_pool(&mock, 3, 1).await;
    let t0 = Instant::now();
    mock.conn(1).mute();
    at(t0 + secs(10)).await;
    assert_eq!(
        counts(&pool),
        Counts { open: 1, pinging: 1, ..ZERO },
        "ping in flight"
    );
    mock.conn(1).break_it();
    at(t0 + secs(12)).await;
    assert_eq!(mock.closed(), vec![1], "closed at the first miss");
    assert_eq!(pool.state().counters.closed_keepalive, 1);
    assert_eq!(keepalive(&pool), (1, 1));
    assert_eq!(counts(&pool), ZERO);
    check_counts(&pool, &[()]);
}
