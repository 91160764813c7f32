//! The checkout wait's `debug` span and the slow checkout warning, under
//! tokio's paused clock and a capturing subscriber: a get that waits gets a
//! span with its key, what it waits behind and its outcome; one that waited
//! longer than `acquire_slow_threshold` is logged at `warn` with its key,
//! how long, what it waited behind (every connection lent, dialing, the
//! pool's cap, backoff) and how it ended; one that waited less, or with the
//! threshold off, is not.

use std::time::Duration;

use tokio::time::Instant;
use tracing::Level;

use crate::support::log::capture;
use crate::support::*;

type M = Mock<u32>;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test(start_paused = true)]
async fn a_get_that_waited_behind_lent_connections_is_warned_about() {
    let (log, _guard) = capture();
    let (_mock, pool) = M::pool(|b| b.name("orders").max_open(1)).await;
    let t0 = Instant::now();
    let a = ok(pool.get_for(&7).await);
    let waiter = spawn_get(&pool, 7);
    at(t0 + secs(3)).await;
    drop(a);
    let b = ok(join(waiter).await);
    let found = log.warnings("acquire_slow_threshold");
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0].fields;
    assert_eq!(
        (f["pool"].as_str(), f["key"].as_str(), f["waited"].as_str()),
        ("orders", "7", "3s")
    );
    assert_eq!(
        (f["behind"].as_str(), f["outcome"].as_str()),
        ("all_lent", "lent")
    );
    // The first get waited for its dial (not long enough to warn about).
    let spans: Vec<_> = log
        .spans()
        .into_iter()
        .filter(|s| s.name == "connpool.wait")
        .collect();
    assert_eq!(spans.len(), 2, "{spans:?}");
    for (span, behind) in spans.iter().zip(["dialing", "all_lent"]) {
        assert_eq!(span.level, Level::DEBUG);
        assert_eq!(span.fields["key"], "7");
        assert_eq!(span.fields["behind"], behind);
        assert_eq!(span.fields["outcome"], "lent");
    }
    drop(b);
}

/// Behind a slow dial, behind the pool's cap, and a timeout: each named.
#[tokio::test(start_paused = true)]
async fn what_a_slow_get_waited_behind_is_named() {
    let (log, _guard) = capture();
    let (mock, pool) = M::pool(|b| b.max_open(1).checkout_timeout(secs(10))).await;
    mock.set_dial_time(secs(3));
    let a = ok(pool.get_for(&1).await);
    mock.set_dial_time(Duration::ZERO);
    let other_key = spawn_get(&pool, 2);
    at(Instant::now() + secs(10)).await;
    assert!(join(other_key).await.is_err());
    drop(a);
    let found = log.warnings("acquire_slow_threshold");
    let named: Vec<_> = found
        .iter()
        .map(|e| {
            (
                e.fields["key"].as_str(),
                e.fields["behind"].as_str(),
                e.fields["outcome"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        named,
        vec![("1", "dialing", "lent"), ("2", "pool_full", "timeout")]
    );
    let outcomes: Vec<_> = log
        .spans()
        .into_iter()
        .filter(|s| s.name == "connpool.wait")
        .map(|s| s.fields["outcome"].clone())
        .collect();
    assert_eq!(outcomes, vec!["lent", "timeout"]);
}

/// A getter queued behind a dial that fails, then failed by its key's
/// backoff, is warned about as waiting behind the backoff; the getter the
/// dial was for, as waiting behind its dial.
#[tokio::test(start_paused = true)]
async fn a_get_failed_by_backoff_after_a_long_wait_names_the_backoff() {
    let (log, _guard) = capture();
    let (mock, pool) = M::pool(|b| b.backoff(secs(1), secs(1)).max_connecting(1)).await;
    let gate = mock.gate(1);
    let first = spawn_get(&pool, 1);
    settle().await;
    let second = spawn_get(&pool, 1);
    at(Instant::now() + secs(3)).await;
    gate.fail("refused");
    assert!(matches!(
        join(first).await,
        Err(connpool::Error::Connect(_))
    ));
    assert!(matches!(
        join(second).await,
        Err(connpool::Error::Backoff { .. })
    ));
    let named: Vec<_> = log
        .warnings("acquire_slow_threshold")
        .iter()
        .map(|e| (e.fields["behind"].clone(), e.fields["outcome"].clone()))
        .collect();
    let named: Vec<(&str, &str)> = named
        .iter()
        .map(|(b, o)| (b.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        named,
        vec![("dialing", "connect_error"), ("backoff", "backoff")]
    );
}

#[tokio::test(start_paused = true)]
async fn a_short_wait_or_the_threshold_off_warns_nothing() {
    let (log, _guard) = capture();
    for threshold in [Some(secs(2)), None] {
        let (mock, pool) = M::pool(|b| b.acquire_slow_threshold(threshold)).await;
        mock.set_dial_time(Duration::from_millis(1900));
        drop(ok(pool.get_for(&1).await));
        mock.set_dial_time(secs(5));
        let _held = ok(pool.get_for(&1).await);
        let _slow = ok(pool.get_for(&1).await);
    }
    let found = log.warnings("acquire_slow_threshold");
    assert_eq!(
        found.len(),
        1,
        "only the 5 s wait with a threshold: {found:?}"
    );
    assert_eq!(found[0].fields["waited"], "5s");
}
