//! The documented defaults: the Builder docs' table, the constants,
//! `pool.config()`, and the manager's `keepalive_max_missed`.

use std::time::Duration;

use connpool::{Backoff, HealthCheck, Pool, defaults};

use crate::support;
use crate::support::check_counts;

use super::M;

/// A duration as the defaults table writes it: `500 ms`, `10 s`, `30 min`.
fn written(d: Duration) -> String {
    match (d.as_secs(), d.subsec_millis()) {
        (s, 0) if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        (s, 0) => format!("{s} s"),
        _ => format!("{} ms", d.as_millis()),
    }
}

/// The defaults table in the `Builder` docs (the one place that says why
/// each default was chosen) gives each `defaults` constant's value: a
/// constant changed without its row fails here.
#[test]
fn the_builder_docs_table_gives_each_default_s_value() {
    let source = include_str!("../../../crates/core/src/builder.rs");
    let row = |setting: &str| -> String {
        let start = format!("/// | `{setting}` | ");
        let line = source
            .lines()
            .find(|l| l.starts_with(&start))
            .unwrap_or_else(|| panic!("no row for `{setting}` in the Builder docs"));
        line[start.len()..].split(" | ").next().unwrap().to_owned()
    };
    let HealthCheck::IfIdleFor(bypass) = defaults::HEALTH_CHECK else {
        panic!("the table says IfIdleFor");
    };
    // (the constant, its value as written; the setting is the constant's
    // name in lower case, but for `backoff`)
    let expected = [
        ("MAX_OPEN", defaults::MAX_OPEN.to_string()),
        ("CONNECT_TIMEOUT", written(defaults::CONNECT_TIMEOUT)),
        ("CHECKOUT_TIMEOUT", written(defaults::CHECKOUT_TIMEOUT)),
        ("IDLE_TIMEOUT", written(defaults::IDLE_TIMEOUT)),
        ("MAX_LIFETIME", written(defaults::MAX_LIFETIME)),
        ("JITTER", defaults::JITTER.to_string()),
        ("HEALTH_CHECK", format!("`IfIdleFor({})`", written(bypass))),
        ("PING_TIMEOUT", written(defaults::PING_TIMEOUT)),
        ("KEEPALIVE_INTERVAL", written(defaults::KEEPALIVE_INTERVAL)),
        (
            "BACKOFF_BASE",
            format!(
                "{} doubling to {}",
                written(defaults::BACKOFF_BASE),
                written(defaults::BACKOFF_CAP)
            ),
        ),
        ("MAX_CONNECTING", defaults::MAX_CONNECTING.to_string()),
        ("MAX_BORROWERS", defaults::MAX_BORROWERS.to_string()),
        (
            "ACQUIRE_SLOW_THRESHOLD",
            written(defaults::ACQUIRE_SLOW_THRESHOLD),
        ),
        ("NAME", format!("`\"{}\"`", defaults::NAME)),
    ];
    let mut linked = vec!["BACKOFF_CAP", "KEEPALIVE_MAX_MISSED"];
    for (constant, value) in expected {
        let setting = match constant {
            "BACKOFF_BASE" => "backoff".to_owned(),
            _ => constant.to_lowercase(),
        };
        let cell = row(&setting);
        assert!(
            cell.starts_with(&format!("{value} ([`defaults::{constant}`]")),
            "`{setting}`: the table says {cell:?}, the constant is {value}"
        );
        linked.push(constant);
    }
    let missed = row("keepalive_max_missed");
    assert!(
        missed.contains(&format!(
            ": {} ([`defaults::KEEPALIVE_MAX_MISSED`]",
            defaults::KEEPALIVE_MAX_MISSED
        )),
        "{missed}"
    );
    // Every constant the table links to was checked above.
    for (i, _) in source.match_indices("[`defaults::") {
        let name = &source[i + 12..];
        let name = &name[..name.find('`').unwrap()];
        assert!(
            linked.contains(&name),
            "defaults::{name} is in the table but not checked"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn documented_defaults() {
    assert_eq!(defaults::MAX_OPEN, 100);
    assert_eq!(defaults::CONNECT_TIMEOUT, Duration::from_secs(10));
    assert_eq!(defaults::CHECKOUT_TIMEOUT, Duration::from_secs(30));
    let mock = M::new();
    let pool = Pool::builder(mock.clone()).build().await.unwrap();
    let c = pool.config();
    assert_eq!(c.max_open(), 100, "max_open");
    assert_eq!(c.max_open_per_key(), 100, "max_open_per_key = max_open");
    assert_eq!(c.max_idle(), 100, "max_idle = max_open");
    assert_eq!(
        c.max_idle_per_key(),
        100,
        "max_idle_per_key = max_open_per_key"
    );
    assert_eq!(
        c.connect_timeout(),
        Duration::from_secs(10),
        "connect_timeout"
    );
    assert_eq!(
        c.checkout_timeout(),
        Some(Duration::from_secs(30)),
        "checkout_timeout"
    );
    assert_eq!(c.max_waiters(), None, "max_waiters");
    assert_eq!(mock.connects(), 0, "no pre-warming by default");
    assert_eq!(pool.state().open, 0);
    pool.close().await;
}

/// The lifecycle defaults: each exported constant has its documented literal
/// value, and a pool built with no setting uses exactly those values.
#[tokio::test(start_paused = true)]
async fn documented_lifecycle_defaults() {
    // The constants, against the values the docs promise.
    assert_eq!(defaults::IDLE_TIMEOUT, Duration::from_secs(90));
    assert_eq!(defaults::MAX_LIFETIME, Duration::from_secs(30 * 60));
    assert_eq!(defaults::JITTER, 0.1);
    assert_eq!(
        defaults::HEALTH_CHECK,
        HealthCheck::IfIdleFor(Duration::from_millis(500))
    );
    assert_eq!(defaults::PING_TIMEOUT, Duration::from_secs(5));
    assert_eq!(defaults::KEEPALIVE_INTERVAL, Duration::from_secs(30));
    assert_eq!(defaults::KEEPALIVE_MAX_MISSED, 1);
    assert_eq!(defaults::BACKOFF_BASE, Duration::from_millis(100));
    assert_eq!(defaults::BACKOFF_CAP, Duration::from_secs(5));
    assert_eq!(defaults::MAX_CONNECTING, 2);

    // The pool, against the constants and the literals both.
    let mock = M::new();
    let pool = Pool::builder(mock.clone()).build().await.unwrap();
    let c = pool.config();
    assert_eq!(
        c.idle_timeout(),
        Some(defaults::IDLE_TIMEOUT),
        "idle_timeout"
    );
    assert_eq!(c.idle_timeout(), Some(Duration::from_secs(90)));
    assert_eq!(
        c.max_lifetime(),
        Some(defaults::MAX_LIFETIME),
        "max_lifetime"
    );
    assert_eq!(c.max_lifetime(), Some(Duration::from_secs(1800)));
    assert_eq!(c.jitter(), defaults::JITTER, "jitter");
    assert_eq!(c.jitter(), 0.1);
    assert_eq!(c.max_uses(), None, "max_uses: no limit");
    assert_eq!(c.min_idle(), 0, "min_idle");
    assert_eq!(c.health_check(), defaults::HEALTH_CHECK, "health_check");
    assert_eq!(
        c.health_check(),
        HealthCheck::IfIdleFor(Duration::from_millis(500))
    );
    assert_eq!(c.ping_timeout(), defaults::PING_TIMEOUT, "ping_timeout");
    assert_eq!(c.ping_timeout(), Duration::from_secs(5));
    assert_eq!(
        c.keepalive_interval(),
        Some(defaults::KEEPALIVE_INTERVAL),
        "keepalive_interval"
    );
    assert_eq!(c.keepalive_interval(), Some(Duration::from_secs(30)));
    assert_eq!(
        c.keepalive_max_missed(),
        defaults::KEEPALIVE_MAX_MISSED,
        "keepalive_max_missed"
    );
    assert_eq!(c.keepalive_max_missed(), 1);
    assert_eq!(
        c.backoff(),
        Some(Backoff { base: defaults::BACKOFF_BASE, cap: defaults::BACKOFF_CAP }),
        "backoff"
    );
    assert_eq!(
        c.backoff(),
        Some(Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(5) })
    );
    assert_eq!(
        c.max_connecting(),
        defaults::MAX_CONNECTING,
        "max_connecting"
    );
    assert_eq!(c.max_connecting(), 2);

    // With min_idle 0 and no key seen, the lifecycle starts nothing.
    support::settle().await;
    assert_eq!(mock.connects(), 0, "no background dial by default");
    assert_eq!(pool.state().open, 0);
    check_counts(&pool, &[]);
    pool.close().await;
}

/// A manager suggesting `keepalive_max_missed` (`None`: it panics).
struct Suggests(Option<u32>);

#[async_trait::async_trait]
impl connpool::Manager for Suggests {
    type Key = ();
    type Connection = ();
    type Error = std::io::Error;

    async fn connect(&self, _: &()) -> std::io::Result<()> {
        Ok(())
    }

    fn keepalive_max_missed(&self) -> u32 {
        self.0.expect("a manager that panics here")
    }
}

/// Unset, `keepalive_max_missed` is the manager's (clamped to `1..=65535`;
/// a panic gives the pool's default); set, the builder's.
#[tokio::test]
async fn keepalive_max_missed_is_the_managers_unless_set() {
    let missed = async |manager: Suggests, set: Option<u32>| {
        let mut builder = Pool::builder(manager);
        if let Some(n) = set {
            builder = builder.keepalive_max_missed(n);
        }
        let pool = builder.build().await.unwrap();
        let missed = pool.config().keepalive_max_missed();
        pool.close().await;
        missed
    };
    assert_eq!(missed(Suggests(Some(3)), None).await, 3);
    assert_eq!(missed(Suggests(Some(3)), Some(2)).await, 2);
    assert_eq!(missed(Suggests(Some(0)), None).await, 1);
    assert_eq!(missed(Suggests(Some(u32::MAX)), None).await, 65_535);
    assert_eq!(
        missed(Suggests(None), None).await,
        defaults::KEEPALIVE_MAX_MISSED
    );
}
