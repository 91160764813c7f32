//! The documented defaults: the Builder docs' table against the constants,
//! and what a pool with the defaults does.

use std::time::Duration;

use connpool::{Pool, defaults};

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
    let bypass = defaults::HEALTH_CHECK;
    // (the constant, its value as written; the setting is the constant's
    // name in lower case, but for `backoff`)
    let expected = [
        ("MAX_OPEN", defaults::MAX_OPEN.to_string()),
        ("CONNECT_TIMEOUT", written(defaults::CONNECT_TIMEOUT)),
        ("CHECKOUT_TIMEOUT", written(defaults::CHECKOUT_TIMEOUT)),
        ("IDLE_TIMEOUT", written(defaults::IDLE_TIMEOUT)),
        ("MAX_LIFETIME", written(defaults::MAX_LIFETIME)),
        ("JITTER", defaults::JITTER.to_string()),
        ("HEALTH_CHECK", written(bypass)),
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
        (
            "KEEPALIVE_MAX_MISSED",
            defaults::KEEPALIVE_MAX_MISSED.to_string(),
        ),
    ];
    let mut linked = vec!["BACKOFF_CAP"];
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

/// A pool built with no setting dials nothing: no pre-warming, no
/// background dial (`min_idle` 0), nothing open. (Each default as built,
/// against its constant and its documented value: the core's unit tests of
/// the builder.)
#[tokio::test(start_paused = true)]
async fn a_pool_with_the_defaults_dials_nothing() {
    let mock = M::new();
    let pool = Pool::builder(mock.clone()).build().await.unwrap();
    assert_eq!(mock.connects(), 0, "no pre-warming by default");
    support::settle().await;
    assert_eq!(mock.connects(), 0, "no background dial by default");
    assert_eq!(pool.state().open, 0);
    check_counts(&pool, &[]);
    pool.close().await;
}
