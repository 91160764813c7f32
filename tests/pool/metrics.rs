//! Metrics (feature `metrics`) through a recording recorder, under tokio's
//! paused clock: every series' name, attributes and value after a known
//! sequence of gets, waits, returns, a timeout and a resize; the key
//! attribute when asked for. (A snapshot takes the values: gauges and
//! counters read 0 after it, histograms hold what was recorded since.)

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

use crate::support::*;

type M = Mock<u32>;

const POOL: &str = "db.client.connection.pool.name";

/// A series: its kind, name and attributes (sorted).
type Series = (MetricKind, String, Vec<(String, String)>);

/// What the recorder holds now, by series (taking it).
fn take(snapshotter: &Snapshotter) -> BTreeMap<Series, DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, key) = key.into_parts();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            labels.sort();
            ((kind, key.name().to_string(), labels), value)
        })
        .collect()
}

fn series(kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> Series {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    (kind, name.to_string(), labels)
}

fn gauge(name: &str, labels: &[(&str, &str)]) -> Series {
    series(MetricKind::Gauge, name, labels)
}

fn histogram(name: &str, labels: &[(&str, &str)]) -> Series {
    series(MetricKind::Histogram, name, labels)
}

/// `db.client.connection.count` of the pool `name` in `state`.
fn count_of(name: &str, state: &str) -> Series {
    gauge(
        "db.client.connection.count",
        &[(POOL, name), ("state", state)],
    )
}

fn g(v: f64) -> DebugValue {
    DebugValue::Gauge(v.into())
}

fn h(values: &[f64]) -> DebugValue {
    DebugValue::Histogram(values.iter().map(|&v| v.into()).collect())
}

#[tokio::test(start_paused = true)]
async fn every_series_is_named_after_opentelemetry_with_the_pool_name() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let name = [(POOL, "orders")];
    let (mock, pool) = M::pool(|b| {
        b.name("orders")
            .max_open(3)
            .max_idle(2)
            .checkout_timeout(Duration::from_secs(1))
    })
    .await;
    mock.set_dial_time(Duration::from_millis(250));

    let a = ok(pool.get_for(&7).await); // waits 250 ms for its dial
    tokio::time::advance(Duration::from_secs(2)).await;
    drop(a); // used 2 s
    let b = ok(pool.get_for(&7).await); // idle: served at once
    let all = take(&snapshotter);
    let expected = BTreeMap::from([
        (count_of("orders", "idle"), g(0.0)),
        (count_of("orders", "used"), g(1.0)),
        (
            gauge("db.client.connection.pending_requests", &name),
            g(0.0),
        ),
        (gauge("db.client.connection.max", &name), g(3.0)),
        (gauge("db.client.connection.idle.max", &name), g(2.0)),
        (gauge("db.client.connection.idle.min", &name), g(0.0)),
        (
            series(MetricKind::Counter, "db.client.connection.timeouts", &name),
            DebugValue::Counter(0),
        ),
        (
            histogram("db.client.connection.create_time", &name),
            h(&[0.25]),
        ),
        (
            histogram("db.client.connection.wait_time", &name),
            h(&[0.25, 0.0]),
        ),
        (histogram("db.client.connection.use_time", &name), h(&[2.0])),
    ]);
    assert_eq!(all, expected);

    // A getter waits at the cap of one key, and times out.
    pool.resize(pool.limits().max_open_per_key(1).max_idle_per_key(1))
        .unwrap();
    let waiter = spawn_get(&pool, 7);
    settle().await;
    let all = take(&snapshotter);
    assert_eq!(
        all[&gauge("db.client.connection.pending_requests", &name)],
        g(1.0)
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(matches!(
        join(waiter).await,
        Err(connpool::Error::Timeout { .. })
    ));
    let all = take(&snapshotter);
    assert_eq!(
        all[&series(MetricKind::Counter, "db.client.connection.timeouts", &name)],
        DebugValue::Counter(1)
    );
    assert_eq!(
        all[&gauge("db.client.connection.pending_requests", &name)],
        g(0.0)
    );
    assert_eq!(
        all[&histogram("db.client.connection.wait_time", &name)],
        h(&[])
    );

    pool.resize(pool.limits().max_open(5).max_idle(4).min_idle(1))
        .unwrap();
    drop(b);
    let all = take(&snapshotter);
    assert_eq!(all[&gauge("db.client.connection.max", &name)], g(5.0));
    assert_eq!(all[&gauge("db.client.connection.idle.max", &name)], g(4.0));
    assert_eq!(all[&gauge("db.client.connection.idle.min", &name)], g(1.0));
    assert_eq!(all[&count_of("orders", "idle")], g(1.0));
    assert_eq!(all[&count_of("orders", "used")], g(0.0));
    assert_eq!(
        all[&histogram("db.client.connection.use_time", &name)],
        h(&[1.0])
    );
}

/// With the key attribute, the histograms and the timeouts carry the key;
/// the gauges stay per pool.
#[tokio::test(start_paused = true)]
async fn the_key_attribute_is_on_the_histograms_when_asked_for() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let (_mock, pool) = M::pool(|b| b.metrics_key_attribute(true)).await;
    let a = ok(pool.get_for(&7).await);
    tokio::time::advance(Duration::from_millis(500)).await;
    drop(a);
    let all = take(&snapshotter);
    let keyed = [(POOL, "connpool"), ("connpool.key", "7")];
    assert_eq!(
        all[&histogram("db.client.connection.use_time", &keyed)],
        h(&[0.5])
    );
    assert_eq!(
        all[&histogram("db.client.connection.create_time", &keyed)],
        h(&[0.0])
    );
    assert_eq!(all[&count_of("connpool", "idle")], g(1.0));
    let unkeyed = histogram("db.client.connection.use_time", &[(POOL, "connpool")]);
    assert_eq!(
        all.get(&unkeyed),
        Some(&h(&[])),
        "registered, never recorded"
    );
}

/// A single-key pool's gets and returns keep the gauges and record the use
/// time.
#[tokio::test(start_paused = true)]
async fn a_single_key_pool_keeps_the_gauges() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let (_mock, pool) = Mock::<()>::pool(|b| b.initial(1)).await;
    let name = [(POOL, "connpool")];
    drop(ok(pool.get().await));
    let a = ok(pool.get().await);
    let all = take(&snapshotter);
    assert_eq!(all[&count_of("connpool", "used")], g(1.0));
    assert_eq!(all[&count_of("connpool", "idle")], g(0.0));
    tokio::time::advance(Duration::from_secs(3)).await;
    drop(a);
    let all = take(&snapshotter);
    assert_eq!(all[&count_of("connpool", "idle")], g(1.0));
    assert_eq!(
        all[&histogram("db.client.connection.use_time", &name)],
        h(&[3.0])
    );
}

/// `wait_time` is the time every successful checkout took to obtain its
/// connection (OpenTelemetry's definition, as HikariCP records it): a get
/// served at once records its (here: zero) wait too, so the histogram's
/// percentiles are over all gets, not only the ones that waited.
#[tokio::test(start_paused = true)]
async fn wait_time_is_recorded_for_every_checkout() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let name = [(POOL, "connpool")];
    let (mock, pool) = M::pool(|b| b.max_open(1)).await;
    mock.set_dial_time(Duration::from_millis(100));
    // The first get waits for its dial; seven more find the connection idle.
    drop(ok(pool.get_for(&7).await));
    for _ in 0..7 {
        drop(ok(pool.get_for(&7).await));
    }
    let all = take(&snapshotter);
    let mut waits = [0.0; 8];
    waits[0] = 0.1;
    assert_eq!(
        all[&histogram("db.client.connection.wait_time", &name)],
        h(&waits)
    );
    assert_eq!(pool.state().counters.gets, 8);
}

/// A connection its server closed in the normal course
/// (`Health::ClosedByServer`) is counted apart from a broken one, in the
/// counters and in `connpool.connection.closed` by reason; a call past
/// its own deadline (`Pool::count_timeout`) is counted by what it waited
/// for: a connection with the gets past their checkout deadline, the reply
/// in `reply_timeouts` and `connpool.reply.timeouts`, in the key's
/// counters too.
#[tokio::test(start_paused = true)]
async fn closes_by_reason_and_call_timeouts_by_phase() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let name = [(POOL, "api")];
    let closed = |reason| {
        series(
            MetricKind::Counter,
            "connpool.connection.closed",
            &[(POOL, "api"), ("reason", reason)],
        )
    };
    let (_mock, pool) = M::pool(|b| b.name("api")).await;

    let a = ok(pool.get_for(&1).await);
    let b = ok(pool.get_for(&1).await);
    a.close_by_server();
    b.break_it();
    drop((a, b));
    let counters = pool.state().counters;
    assert_eq!((counters.closed_by_server, counters.closed_broken), (1, 1));
    let all = take(&snapshotter);
    assert_eq!(all[&closed("by_server")], DebugValue::Counter(1));
    assert_eq!(all[&closed("broken")], DebugValue::Counter(1));

    let c = ok(pool.get_for(&1).await);
    pool.count_timeout(&1, connpool::Waiting::Connection);
    pool.count_timeout(&1, connpool::Waiting::Reply);
    pool.count_timeout(&1, connpool::Waiting::Reply);
    pool.count_timeout(&9, connpool::Waiting::Reply); // a key not tracked
    drop(c);
    let counters = pool.state().counters;
    assert_eq!((counters.timeouts, counters.reply_timeouts), (1, 3));
    let key = pool.key_state(&1).unwrap().counters;
    assert_eq!((key.timeouts, key.reply_timeouts), (1, 2));
    let all = take(&snapshotter);
    let counter = |name_: &str| &all[&series(MetricKind::Counter, name_, &name)];
    assert_eq!(
        counter("db.client.connection.timeouts"),
        &DebugValue::Counter(1)
    );
    assert_eq!(counter("connpool.reply.timeouts"), &DebugValue::Counter(3));
}

/// What an outage and an overload leave in the metrics: a failed dial in
/// `connpool.dial.failures`, the backoff it starts in `connpool.backoffs`,
/// a get refused at `max_waiters` in `connpool.rejections`, a keepalive
/// ping that failed in `connpool.keepalive.failures`.
#[tokio::test(start_paused = true)]
async fn dial_failures_backoffs_rejections_and_failed_keepalives_have_their_series() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let name = [(POOL, "edge")];
    let counter = |all: &BTreeMap<Series, DebugValue>, series_name: &str| match all.get(&series(
        MetricKind::Counter,
        series_name,
        &name,
    )) {
        Some(DebugValue::Counter(n)) => *n,
        _ => 0,
    };
    let mock = M::new();
    let pool = mock
        .core_pool(|b| {
            b.name("edge")
                .backoff(Duration::from_millis(100), Duration::from_secs(1))
                .max_open(1)
                .max_waiters(1)
                .keepalive_interval(Duration::from_secs(10))
        })
        .await;

    mock.push(1, Step::Fail("refused"));
    assert!(pool.get_for(&1).await.is_err());
    let all = take(&snapshotter);
    assert_eq!(counter(&all, "connpool.dial.failures"), 1);
    assert_eq!(counter(&all, "connpool.backoffs"), 1);

    tokio::time::advance(Duration::from_secs(1)).await;
    let held = ok(pool.get_for(&2).await);
    let waiter = spawn_get(&pool, 2);
    settle().await;
    assert!(matches!(
        pool.get_for(&2).await,
        Err(connpool::Error::TooManyWaiters { .. })
    ));
    assert_eq!(counter(&take(&snapshotter), "connpool.rejections"), 1);
    drop(held);
    drop(ok(join(waiter).await));

    // The idle connection dies: its next keepalive ping fails.
    mock.conn(1).kill(); // the only connection made
    tokio::time::advance(Duration::from_secs(11)).await;
    settle().await;
    assert_eq!(
        counter(&take(&snapshotter), "connpool.keepalive.failures"),
        1
    );
}

/// A recorder installed after the pool was built gets the pool's series:
/// the gauges, the histograms and the timeouts counter, not only the
/// series looked up at each record.
#[tokio::test(start_paused = true)]
async fn a_recorder_installed_after_the_pool_is_built_gets_its_series() {
    let (_mock, pool) = M::pool(|b| b.name("late").max_open(1)).await;
    drop(ok(pool.get_for(&1).await));

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let a = ok(pool.get_for(&1).await);
    let all = take(&snapshotter);
    assert_eq!(all[&count_of("late", "used")], g(1.0));
    assert_eq!(
        all[&gauge("db.client.connection.max", &[(POOL, "late")])],
        g(1.0)
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    drop(a);
    let all = take(&snapshotter);
    assert_eq!(all[&count_of("late", "idle")], g(1.0));
    assert_eq!(
        all[&histogram("db.client.connection.use_time", &[(POOL, "late")])],
        h(&[2.0])
    );
}

/// Per-key gauges for the busiest keys, the rest summed as `other`,
/// published each second by the maintenance task: a bounded number of
/// series however many keys there are, and a key gone shows zero.
#[tokio::test(start_paused = true)]
async fn per_key_gauges_for_the_busiest_keys_and_the_rest_as_other() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let (_mock, pool) = M::pool(|b| b.name("keys").metrics_key_gauges(1)).await;
    let busy = [ok(pool.get_for(&1).await), ok(pool.get_for(&1).await)];
    drop(ok(pool.get_for(&2).await));
    drop(ok(pool.get_for(&3).await));
    let held = ok(pool.get_for(&3).await);
    tokio::time::advance(Duration::from_millis(1100)).await;
    settle().await;

    let keyed = |key: &str, state: &str| {
        gauge(
            "db.client.connection.count",
            &[(POOL, "keys"), ("connpool.key", key), ("state", state)],
        )
    };
    let all = take(&snapshotter);
    assert_eq!(all[&keyed("1", "used")], g(2.0));
    assert_eq!(all[&keyed("1", "idle")], g(0.0));
    assert_eq!(all[&keyed("other", "used")], g(1.0), "key 3's");
    assert_eq!(all[&keyed("other", "idle")], g(1.0), "key 2's");
    let keys: std::collections::BTreeSet<String> = all
        .keys()
        .flat_map(|(_, _, labels)| labels.iter())
        .filter(|(k, _)| k == "connpool.key")
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(keys, ["1", "other"].map(String::from).into());

    // Key 3 is the busiest now: key 1 goes to zero under its own name.
    drop(busy);
    let _more = [held, ok(pool.get_for(&3).await), ok(pool.get_for(&3).await)];
    tokio::time::advance(Duration::from_millis(1100)).await;
    settle().await;
    let all = take(&snapshotter);
    assert_eq!(all[&keyed("3", "used")], g(3.0));
    assert_eq!(all[&keyed("1", "used")], g(0.0));
    assert_eq!(all[&keyed("other", "idle")], g(3.0), "keys 1 and 2");
}

/// A manager whose `key_name` panics: the per-key gauges name its key `?`,
/// and the maintenance task that publishes them keeps running.
#[tokio::test(start_paused = true)]
async fn a_key_name_that_panics_names_its_gauges_and_stops_nothing() {
    struct Unnamed;

    #[connpool::async_trait]
    impl connpool::Manager for Unnamed {
        type Key = u32;
        type Connection = ();
        type Error = std::io::Error;

        async fn connect(&self, _: &u32) -> Result<(), std::io::Error> {
            Ok(())
        }

        fn key_name(&self, _: &u32) -> String {
            panic!("no name");
        }
    }

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let pool = connpool::Pool::builder(Unnamed)
        .name("unnamed")
        .metrics_key_gauges(1)
        .build()
        .await
        .unwrap();
    let held = pool.get_for(&1).await.unwrap();
    let unnamed = |state: &str| {
        gauge(
            "db.client.connection.count",
            &[(POOL, "unnamed"), ("connpool.key", "?"), ("state", state)],
        )
    };
    tokio::time::advance(Duration::from_millis(1100)).await;
    settle().await;
    assert_eq!(take(&snapshotter)[&unnamed("used")], g(1.0));
    drop(held);
    tokio::time::advance(Duration::from_millis(1100)).await;
    settle().await;
    assert_eq!(
        take(&snapshotter)[&unnamed("idle")],
        g(1.0),
        "published again"
    );
}
