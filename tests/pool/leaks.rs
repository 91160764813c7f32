//! Leak detection under tokio's paused clock and a capturing subscriber: a
//! connection held past `leak_detection_threshold` is reported once, at
//! `warn`, naming the call site of the `get` that took it (also of a getter
//! that waited), its key and how long; it is counted; a connection given
//! back in time is not reported, and is timed afresh when lent again;
//! nothing is reported with the setting off (the default).

use std::time::Duration;

use tokio::time::Instant;

use crate::support::log::capture;
use crate::support::*;

type M = Mock<u32>;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// `file:line` of this file.
fn here(line: u32) -> String {
    format!("{}:{line}:", file!())
}

#[tokio::test(start_paused = true)]
async fn a_connection_held_too_long_is_reported_once_with_its_get() {
    let (log, _guard) = capture();
    let (_mock, pool) = M::pool(|b| b.leak_detection_threshold(secs(10))).await;
    let t0 = Instant::now();
    let line = line!() + 1;
    let conn = ok(pool.get_for(&7).await);
    at(t0 + secs(9)).await;
    assert!(log.warnings("leak").is_empty(), "not yet");
    at(t0 + secs(10)).await;
    let found = log.warnings("leak");
    assert_eq!(found.len(), 1, "{found:?}");
    let report = &found[0];
    assert!(report.fields["site"].starts_with(&here(line)), "{report:?}");
    assert!(report.message.contains(&here(line)), "{report:?}");
    assert_eq!(report.fields["key"], "7");
    assert_eq!(report.fields["held"], "10s");
    assert_eq!(pool.state().counters.leaks, 1);
    assert_eq!(pool.key_state(&7).unwrap().counters.leaks, 1);

    at(t0 + secs(100)).await;
    assert_eq!(log.warnings("leak").len(), 1, "reported once");
    drop(conn);
    at(t0 + secs(200)).await;
    assert_eq!(log.warnings("leak").len(), 1);
    assert_eq!(pool.state().counters.leaks, 1);
}

/// A getter that waited for its connection is reported with its own call
/// site; a single-key pool's `get` too.
#[tokio::test(start_paused = true)]
async fn a_getter_that_waited_is_reported_with_its_own_get() {
    let (log, _guard) = capture();
    let (_mock, pool) =
        Mock::<()>::pool(|b| b.max_open(1).leak_detection_threshold(secs(10))).await;
    let t0 = Instant::now();
    let first = ok(pool.get().await);
    let line = line!() + 2;
    let pool2 = pool.clone();
    let waiter = tokio::spawn(async move { pool2.get().await.map(connpool::Pooled::into_owned) });
    settle().await;
    at(t0 + secs(5)).await;
    drop(first); // handed to the waiter at t0 + 5 s
    let second = ok(join(waiter).await);
    at(t0 + secs(14)).await;
    assert!(
        log.warnings("leak").is_empty(),
        "{:?}",
        log.warnings("leak")
    );
    at(t0 + secs(16)).await;
    let found = log.warnings("leak");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].fields["site"].starts_with(&here(line)),
        "{found:?}"
    );
    assert_eq!(found[0].fields["key"], "()");
    drop(second);
}

/// A connection given back in time is not reported; lent again, it is
/// timed from its new lending and named by its new get.
#[tokio::test(start_paused = true)]
async fn a_connection_returned_in_time_is_timed_afresh() {
    let (log, _guard) = capture();
    let (_mock, pool) = M::pool(|b| b.leak_detection_threshold(secs(10))).await;
    let t0 = Instant::now();
    drop(ok(pool.get_for(&1).await));
    at(t0 + secs(8)).await;
    let line = line!() + 1;
    let again = ok(pool.get_for(&1).await);
    at(t0 + secs(17)).await;
    assert!(log.warnings("leak").is_empty());
    at(t0 + secs(21)).await;
    let found = log.warnings("leak");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].fields["site"].starts_with(&here(line)));
    assert_eq!(pool.state().counters.leaks, 1);
    drop(again);
}

#[tokio::test(start_paused = true)]
async fn nothing_is_reported_by_default() {
    let (log, _guard) = capture();
    let (_mock, pool) = M::pool(|b| b).await;
    let conn = ok(pool.get_for(&1).await);
    tokio::time::advance(secs(24 * 3600)).await;
    settle().await;
    assert!(log.warnings("leak").is_empty());
    assert_eq!(pool.state().counters.leaks, 0);
    drop(conn);
}
