//! The builder: every validation error (core caps and timeouts, and the
//! lifecycle fields: idle timeout, lifetime, jitter, max uses, min idle,
//! health check, keepalive, dial backoff, max connecting), the documented
//! defaults (constants, literal values and `pool.config()`), values at their
//! bounds being accepted, how the derived defaults follow the values that are
//! set, and `Backoff::delay`'s doubling, cap and saturation.

use std::error::Error as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connpool::{Backoff, BuildError, Builder, Config, ConfigError, HealthCheck, Pool, defaults};

use crate::support;
use crate::support::{Mock, check_counts};

type M = Mock<u32>;

/// Whether `text` names `word` as a whole identifier (`max_idle` is not
/// named by `max_idle_per_key`).
fn names(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// Builds, expecting a refusal of the configuration (and no dial).
async fn refusal(builder: Builder<M>, mock: &M) -> (ConfigError, String) {
    let result = builder.build().await;
    assert_eq!(mock.connects(), 0, "a refused configuration must not dial");
    match result {
        Err(BuildError::Config(e)) => {
            let err = BuildError::<support::MockError>::Config(e.clone());
            let shown = err.to_string();
            assert_eq!(shown, e.to_string(), "BuildError shows its ConfigError");
            assert!(
                err.source().is_none(),
                "the ConfigError's message is BuildError's own: no source repeats it"
            );
            (e, shown)
        }
        Err(e) => panic!("expected a config error, got: {e}"),
        Ok(pool) => panic!(
            "expected a config error, the pool was built with {:?}",
            pool.config()
        ),
    }
}

/// Asserts that `builder` is refused for `field`, with a message that names
/// the field and each of `mentions` (the limit it broke), and none of
/// `not_mentions`.
async fn assert_refused(
    builder: Builder<M>,
    mock: &M,
    field: &str,
    mentions: &[&str],
    not_mentions: &[&str],
) {
    let (e, shown) = refusal(builder, mock).await;
    assert_eq!(e.field(), field, "field() of {shown:?}");
    assert!(names(&shown, field), "{shown:?} should name `{field}`");
    for m in mentions {
        assert!(shown.contains(m), "{shown:?} should mention {m:?}");
    }
    for m in not_mentions {
        assert!(!shown.contains(m), "{shown:?} should not mention {m:?}");
    }
}

macro_rules! refused {
    ($(#[$doc:meta])* $name:ident: |$b:ident| $build:expr => $field:literal, mentions [$($m:literal),*] $(, not [$($n:literal),*])?) => {
        $(#[$doc])*
        #[tokio::test(start_paused = true)]
        async fn $name() {
            let mock = M::new();
            let $b = Pool::builder(mock.clone());
            assert_refused($build, &mock, $field, &[$($m),*], &[$($($n),*)?]).await;
        }
    };
}

refused!(max_open_zero: |b| b.max_open(0) => "max_open", mentions []);

refused!(max_open_per_key_zero: |b| b.max_open_per_key(0) => "max_open_per_key", mentions []);

refused!(
    max_open_per_key_above_max_open:
    |b| b.max_open(5).max_open_per_key(6) => "max_open_per_key", mentions ["`max_open`", "6", "5"]
);

refused!(max_idle_zero: |b| b.max_idle(0) => "max_idle", mentions []);

refused!(
    max_idle_above_max_open:
    |b| b.max_open(5).max_idle(6) => "max_idle", mentions ["`max_open`", "6", "5"]
);

refused!(max_idle_per_key_zero: |b| b.max_idle_per_key(0) => "max_idle_per_key", mentions []);

refused!(
    /// Above the key's open cap (the global idle cap is larger).
    max_idle_per_key_above_max_open_per_key:
    |b| b.max_open(10).max_open_per_key(3).max_idle_per_key(4)
        => "max_idle_per_key", mentions ["`max_open_per_key`", "4", "3"], not ["`max_idle`"]
);

refused!(
    /// Above the global idle cap (the key's open cap is larger).
    max_idle_per_key_above_max_idle:
    |b| b.max_open(10).max_idle(3).max_idle_per_key(4)
        => "max_idle_per_key", mentions ["`max_idle`", "4", "3"], not ["`max_open_per_key`"]
);

refused!(
    /// A getter waits for its own dial: zero waiters would mean no dial ever.
    max_waiters_zero: |b| b.max_waiters(0) => "max_waiters", mentions ["None"]
);

refused!(
    connect_timeout_zero: |b| b.connect_timeout(Duration::ZERO) => "connect_timeout", mentions []
);

refused!(
    checkout_timeout_zero:
    |b| b.checkout_timeout(Duration::ZERO) => "checkout_timeout", mentions []
);

refused!(
    initial_for_above_max_idle_per_key:
    |b| b.max_idle_per_key(2).initial_for(1, 3) => "initial_for", mentions ["`max_idle_per_key`", "3", "2"]
);

refused!(
    /// Each key within its own cap, the sum above the global idle cap.
    initial_sum_above_max_idle:
    |b| b.max_open(10).max_idle(3).max_idle_per_key(2).initial_for(1, 2).initial_for(2, 2)
        => "initial_for", mentions ["`max_idle`", "4"]
);

refused!(
    /// Caps derived from an explicit `max_open` are the ones checked.
    initial_for_above_derived_idle_cap:
    |b| b.max_open(2).initial_for(1, 3)
        => "initial_for", mentions ["`max_open` (2)", "3"], not ["`max_idle_per_key` (", "`max_idle` ("]
);

refused!(
    /// A derived per-key idle cap is named by the setting it comes from.
    min_idle_above_derived_idle_cap:
    |b| b.max_open(10).max_open_per_key(3).min_idle(4)
        => "min_idle", mentions ["`max_open_per_key` (3)", "4"], not ["`max_idle_per_key` ("]
);

refused!(
    /// An unset global idle cap is named by `max_open`, which it defaults to.
    max_idle_per_key_above_derived_idle_cap:
    |b| b.max_idle_per_key(200)
        => "max_idle_per_key", mentions ["`max_open` (100)", "200"], not ["`max_idle` ("]
);

/// The single-destination `initial(n)` is checked like `initial_for((), n)`,
/// and the refusal names `initial`, the method the user called.
#[tokio::test(start_paused = true)]
async fn initial_above_max_idle_per_key() {
    let mock = Mock::<()>::new();
    let result = Pool::builder(mock.clone())
        .max_idle_per_key(1)
        .initial(2)
        .build()
        .await;
    match result {
        Err(BuildError::Config(e)) => {
            assert_eq!(e.field(), "initial");
            assert!(names(&e.to_string(), "initial"), "{e}");
            assert!(!e.to_string().contains("initial_for"), "{e}");
            assert!(e.to_string().contains("`max_idle_per_key` (1)"), "{e}");
        }
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(pool) => panic!("built with {:?}", pool.config()),
    }
    assert_eq!(mock.connects(), 0);
}

/// `initial(5)` with `max_open(4)`: the message names the two settings the
/// user set, with both values, and no setting the user never called.
#[tokio::test(start_paused = true)]
async fn initial_above_max_open_names_what_was_set() {
    let mock = Mock::<()>::new();
    let result = Pool::builder(mock.clone())
        .max_open(4)
        .initial(5)
        .build()
        .await;
    match result {
        Err(BuildError::Config(e)) => {
            let shown = e.to_string();
            assert_eq!(e.field(), "initial");
            assert!(shown.contains("`initial` (5)"), "{shown}");
            assert!(shown.contains("`max_open` (4)"), "{shown}");
            assert!(!shown.contains("initial_for"), "{shown}");
            assert!(!shown.contains("`max_idle_per_key` ("), "{shown}");
        }
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(pool) => panic!("built with {:?}", pool.config()),
    }
    assert_eq!(mock.connects(), 0);
}

// The lifecycle fields. Each refusal builds from the defaults (every
// lifecycle feature on), so it also proves no other default trips first.

refused!(
    idle_timeout_zero:
    |b| b.idle_timeout(Duration::ZERO) => "idle_timeout", mentions ["greater than zero"]
);

refused!(
    max_lifetime_zero:
    |b| b.max_lifetime(Duration::ZERO) => "max_lifetime", mentions ["greater than zero"]
);

refused!(
    ping_timeout_zero:
    |b| b.ping_timeout(Duration::ZERO) => "ping_timeout", mentions ["greater than zero"]
);

refused!(
    /// Refused even when no health check would use it (documented "Non-zero").
    ping_timeout_zero_without_health_check:
    |b| b.health_check(HealthCheck::Never).ping_timeout(Duration::ZERO)
        => "ping_timeout", mentions ["greater than zero"]
);

refused!(
    keepalive_interval_zero:
    |b| b.keepalive_interval(Duration::ZERO)
        => "keepalive_interval", mentions ["greater than zero"]
);

refused!(
    keepalive_timeout_zero:
    |b| b.keepalive_timeout(Duration::ZERO) => "keepalive_timeout", mentions ["greater than zero"]
);

refused!(
    /// Refused even with keepalive off (documented "Non-zero").
    keepalive_timeout_zero_without_keepalive:
    |b| b.keepalive_interval(None).keepalive_timeout(Duration::ZERO)
        => "keepalive_timeout", mentions ["greater than zero"]
);

refused!(
    jitter_negative: |b| b.jitter(-0.1) => "jitter", mentions ["-0.1", "[0, 1)"]
);

refused!(
    /// The upper bound is excluded: a jitter of 1 could shorten a lifetime to 0.
    jitter_one: |b| b.jitter(1.0) => "jitter", mentions ["(1)", "[0, 1)"]
);

refused!(
    /// NaN is in no range, so `!(0.0..1.0).contains(&NaN)` refuses it.
    jitter_nan: |b| b.jitter(f64::NAN) => "jitter", mentions ["NaN", "[0, 1)"]
);

refused!(
    jitter_infinite: |b| b.jitter(f64::INFINITY) => "jitter", mentions ["inf", "[0, 1)"]
);

refused!(max_uses_zero: |b| b.max_uses(0) => "max_uses", mentions ["at least 1"]);

refused!(
    /// A connection's use count has 32 bits.
    max_uses_above_u32:
    |b| b.max_uses(1 << 32) => "max_uses", mentions ["(4294967296)", "at most 4294967295"]
);

refused!(
    keepalive_max_missed_above_u16:
    |b| b.keepalive_max_missed(65_536) => "keepalive_max_missed", mentions ["(65536)", "at most 65535"]
);

refused!(
    max_borrowers_above_u16:
    |b| b.max_borrowers(65_536) => "max_borrowers", mentions ["(65536)", "at most 65535"]
);

refused!(
    min_idle_above_max_idle_per_key:
    |b| b.max_idle_per_key(2).min_idle(3) => "min_idle", mentions ["`max_idle_per_key`", "3", "2"]
);

refused!(
    /// The derived `max_idle_per_key` (here `max_open`) is the bound.
    min_idle_above_derived_max_idle_per_key:
    |b| b.max_open(4).min_idle(5) => "min_idle", mentions ["`max_idle_per_key`", "5", "4"]
);

refused!(
    keepalive_max_missed_zero:
    |b| b.keepalive_max_missed(0) => "keepalive_max_missed", mentions ["at least 1"]
);

refused!(
    /// A zero base would never back off: the message points at `no_backoff()`.
    backoff_zero_base:
    |b| b.backoff(Duration::ZERO, Duration::from_secs(1)) => "backoff", mentions ["base", "`no_backoff()`"]
);

refused!(
    /// Zero base and zero cap: still the base that is refused (not "base above cap").
    backoff_zero_base_and_cap:
    |b| b.backoff(Duration::ZERO, Duration::ZERO) => "backoff", mentions ["`no_backoff()`"], not ["exceed"]
);

refused!(
    backoff_base_above_cap:
    |b| b.backoff(Duration::from_millis(200), Duration::from_millis(100))
        => "backoff", mentions ["base", "cap", "200ms", "100ms"], not ["no_backoff"]
);

refused!(max_connecting_zero: |b| b.max_connecting(0) => "max_connecting", mentions ["at least 1"]);
refused!(max_borrowers_zero: |b| b.max_borrowers(0) => "max_borrowers", mentions ["at least 1"]);

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
    let source = include_str!("../../src/builder.rs");
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
        ("KEEPALIVE_TIMEOUT", written(defaults::KEEPALIVE_TIMEOUT)),
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
    assert_eq!(defaults::KEEPALIVE_TIMEOUT, Duration::from_secs(10));
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
        c.keepalive_timeout(),
        defaults::KEEPALIVE_TIMEOUT,
        "keepalive_timeout"
    );
    assert_eq!(c.keepalive_timeout(), Duration::from_secs(10));
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

/// A pool's caps as its configuration reports them: `max_open`,
/// `max_open_per_key`, `max_idle`, `max_idle_per_key`.
#[derive(Debug, PartialEq, Eq)]
struct Caps {
    open: usize,
    open_per_key: usize,
    idle: usize,
    idle_per_key: usize,
}

fn caps_of(pool: &Pool<M>) -> Caps {
    let c = pool.config();
    Caps {
        open: c.max_open(),
        open_per_key: c.max_open_per_key(),
        idle: c.max_idle(),
        idle_per_key: c.max_idle_per_key(),
    }
}

/// Builds with `f` applied and returns the resulting caps.
async fn caps(f: impl FnOnce(Builder<M>) -> Builder<M>) -> Caps {
    let pool = f(Pool::builder(M::new())).build().await.unwrap();
    let caps = caps_of(&pool);
    pool.close().await;
    caps
}

#[tokio::test(start_paused = true)]
async fn derived_defaults_follow_explicit_values() {
    assert_eq!(
        caps(|b| b.max_open(7)).await,
        Caps { open: 7, open_per_key: 7, idle: 7, idle_per_key: 7 },
        "max_open(7)"
    );
    assert_eq!(
        caps(|b| b.max_open_per_key(3)).await,
        Caps { open: 100, open_per_key: 3, idle: 100, idle_per_key: 3 },
        "max_open_per_key(3): its idle cap follows it"
    );
    assert_eq!(
        caps(|b| b.max_idle(4)).await,
        Caps { open: 100, open_per_key: 100, idle: 4, idle_per_key: 4 },
        "max_idle(4): the per-key idle cap follows it"
    );
    assert_eq!(
        caps(|b| b.max_open(7).max_open_per_key(5).max_idle(3)).await,
        Caps { open: 7, open_per_key: 5, idle: 3, idle_per_key: 3 },
        "the per-key idle cap is the smaller of the two"
    );
    assert_eq!(
        caps(|b| b.max_open(7).max_open_per_key(2).max_idle(3)).await,
        Caps { open: 7, open_per_key: 2, idle: 3, idle_per_key: 2 },
        "the per-key idle cap is the smaller of the two"
    );
    assert_eq!(
        caps(|b| b
            .max_open(9)
            .max_open_per_key(4)
            .max_idle(6)
            .max_idle_per_key(1))
        .await,
        Caps { open: 9, open_per_key: 4, idle: 6, idle_per_key: 1 },
        "explicit values are kept"
    );
}

#[tokio::test(start_paused = true)]
async fn other_explicit_values_are_kept() {
    let pool = Pool::builder(M::new())
        .connect_timeout(Duration::from_millis(250))
        .checkout_timeout(None)
        .max_waiters(1)
        .build()
        .await
        .unwrap();
    let c = pool.config();
    assert_eq!(c.connect_timeout(), Duration::from_millis(250));
    assert_eq!(c.checkout_timeout(), None, "None: wait forever");
    assert_eq!(c.max_waiters(), Some(1));
    pool.close().await;
}

/// Every limit may equal its bound, and pre-warming exactly up to the idle
/// caps is accepted and dials that many connections.
#[tokio::test(start_paused = true)]
async fn limits_at_their_bounds_are_accepted() {
    let mock = M::new();
    let pool = Pool::builder(mock.clone())
        .max_open(4)
        .max_open_per_key(4)
        .max_idle(4)
        .max_idle_per_key(2)
        .initial_for(1, 2)
        .initial_for(2, 2)
        .build()
        .await
        .unwrap();
    assert_eq!(mock.connects(), 4, "pre-warm dials");
    assert_eq!(pool.state().idle, 4, "pre-warmed connections are idle");
    assert_eq!(pool.key_state(&1).map(|k| k.idle), Some(2));
    assert_eq!(pool.key_state(&2).map(|k| k.idle), Some(2));
    pool.close().await;
    let mut closed = mock.closed();
    closed.sort_unstable();
    assert_eq!(closed, vec![1, 2, 3, 4]);

    let mock = M::new();
    let pool = Pool::builder(mock.clone())
        .max_open(1)
        .initial_for(1, 1)
        .build()
        .await
        .unwrap();
    assert_eq!(
        caps_of(&pool),
        Caps { open: 1, open_per_key: 1, idle: 1, idle_per_key: 1 }
    );
    assert_eq!(pool.state().idle, 1);
    pool.close().await;
    assert_eq!(mock.closed(), vec![1]);
}

/// Builds from the defaults with `f` applied, expecting acceptance and no
/// dial (no key is seen), and returns the resulting configuration.
async fn accepted(f: impl FnOnce(Builder<M>) -> Builder<M>) -> Config {
    let mock = M::new();
    let pool = match f(Pool::builder(mock.clone())).build().await {
        Ok(pool) => pool,
        Err(e) => panic!("expected the configuration to be accepted, got {e}"),
    };
    support::settle().await;
    assert_eq!(mock.connects(), 0, "no key was seen: nothing to dial");
    check_counts(&pool, &[]);
    let config = pool.config().clone();
    pool.close().await;
    config
}

/// Every lifecycle value may sit exactly at its bound (or be `None` where
/// that means "off"), and is kept as given.
#[tokio::test(start_paused = true)]
async fn lifecycle_values_at_their_bounds_are_accepted() {
    // jitter: the closed lower bound, and just under the open upper bound.
    assert_eq!(accepted(|b| b.jitter(0.0)).await.jitter(), 0.0);
    assert_eq!(accepted(|b| b.jitter(0.999)).await.jitter(), 0.999);

    // min_idle up to max_idle_per_key, explicit or derived.
    let c = accepted(|b| b.max_idle_per_key(3).min_idle(3)).await;
    assert_eq!((c.min_idle(), c.max_idle_per_key()), (3, 3));
    let c = accepted(|b| b.max_open(4).min_idle(4)).await;
    assert_eq!((c.min_idle(), c.max_idle_per_key()), (4, 4), "derived cap");

    // The smallest non-zero counts, and the largest.
    assert_eq!(accepted(|b| b.max_uses(1)).await.max_uses(), Some(1));
    let most = u64::from(u32::MAX);
    assert_eq!(accepted(|b| b.max_uses(most)).await.max_uses(), Some(most));
    assert_eq!(
        accepted(|b| b.keepalive_max_missed(65_535))
            .await
            .keepalive_max_missed(),
        65_535
    );
    assert_eq!(
        accepted(|b| b.max_borrowers(65_535)).await.max_borrowers(),
        65_535
    );
    assert_eq!(accepted(|b| b.max_connecting(1)).await.max_connecting(), 1);
    assert_eq!(
        accepted(|b| b.keepalive_max_missed(1))
            .await
            .keepalive_max_missed(),
        1
    );

    // Backoff: base equal to cap (a constant delay), and none at all.
    let one = Duration::from_millis(250);
    assert_eq!(
        accepted(|b| b.backoff(one, one)).await.backoff(),
        Some(Backoff { base: one, cap: one })
    );
    assert_eq!(accepted(|b| b.no_backoff()).await.backoff(), None);

    // `None` turns the timers off.
    let c = accepted(|b| {
        b.idle_timeout(None)
            .max_lifetime(None)
            .keepalive_interval(None)
    })
    .await;
    assert_eq!(c.idle_timeout(), None);
    assert_eq!(c.max_lifetime(), None);
    assert_eq!(c.keepalive_interval(), None);

    // The smallest non-zero durations.
    let ns = Duration::from_nanos(1);
    let c = accepted(|b| {
        b.idle_timeout(ns)
            .max_lifetime(ns)
            .ping_timeout(ns)
            .keepalive_interval(ns)
            .keepalive_timeout(ns)
            .backoff(ns, ns)
    })
    .await;
    assert_eq!(c.idle_timeout(), Some(ns));
    assert_eq!(c.max_lifetime(), Some(ns));
    assert_eq!(c.ping_timeout(), ns);
    assert_eq!(c.keepalive_interval(), Some(ns));
    assert_eq!(c.keepalive_timeout(), ns);
    assert_eq!(c.backoff(), Some(Backoff { base: ns, cap: ns }));

    // Every health-check policy, including a zero window.
    for policy in [
        HealthCheck::Never,
        HealthCheck::Always,
        HealthCheck::IfIdleFor(Duration::ZERO),
    ] {
        assert_eq!(
            accepted(|b| b.health_check(policy)).await.health_check(),
            policy
        );
    }
}

/// `Backoff::delay`: the base after the first failure, doubling per failure,
/// clamped at the cap; 0 failures gives the base, and a huge count saturates
/// at the cap instead of overflowing.
#[tokio::test(start_paused = true)]
async fn backoff_delay_doubles_up_to_the_cap() {
    let ms = Duration::from_millis;
    let b = Backoff { base: ms(100), cap: ms(1000) };
    let delays: Vec<Duration> = (1..=6).map(|n| b.delay(n)).collect();
    assert_eq!(
        delays,
        vec![ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
    );
    assert_eq!(b.delay(0), ms(100), "no failure yet: treated as the first");
    // Around the 32-bit shift limit and beyond: no panic, never past the cap.
    for n in [31, 32, 33, 64, u32::MAX] {
        assert_eq!(b.delay(n), ms(1000), "{n} failures");
    }

    // With an effectively unbounded cap, the factor saturates at u32::MAX
    // instead of wrapping (a wrapped shift would give a tiny delay).
    let wide = Backoff { base: Duration::from_nanos(1), cap: Duration::MAX };
    assert_eq!(wide.delay(32), Duration::from_nanos(1 << 31));
    assert_eq!(wide.delay(33), Duration::from_nanos(u64::from(u32::MAX)));
    assert_eq!(
        wide.delay(u32::MAX),
        Duration::from_nanos(u64::from(u32::MAX))
    );
    // A base so large that base × factor overflows saturates, then is capped.
    let huge = Backoff { base: Duration::MAX / 2, cap: Duration::MAX };
    assert_eq!(huge.delay(3), Duration::MAX);
    assert_eq!(huge.delay(u32::MAX), Duration::MAX);
}

/// A key that counts its equality comparisons (for `initial_for`'s cost).
#[derive(Debug, Clone)]
struct CountedKey(u32, Arc<AtomicUsize>);

impl std::hash::Hash for CountedKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for CountedKey {
    fn eq(&self, other: &Self) -> bool {
        self.1.fetch_add(1, Ordering::Relaxed);
        self.0 == other.0
    }
}

impl Eq for CountedKey {}

// Pre-warming many keys costs a look-up per call, not a scan of the keys
// before it: 10,000 keys compared their keys ~50 million times (a build of
// `benches/checkout.rs`'s 10,000-key pool spent most of its time there).
// A second call for a key still replaces its count.
#[tokio::test(start_paused = true)]
async fn initial_for_many_keys_is_linear_and_the_last_count_wins() {
    let compared = Arc::new(AtomicUsize::new(0));
    let key = |k| CountedKey(k, Arc::clone(&compared));
    let mock = Mock::<CountedKey>::new();
    let mut builder = Pool::builder(mock.clone())
        .max_open(10_000)
        .max_open_per_key(1);
    for k in 0..10_000 {
        builder = builder.initial_for(key(k), 1);
    }
    let builder = builder.initial_for(key(7), 0);
    let calls = compared.load(Ordering::Relaxed);
    // A look-up compares a key now and then (hash collisions); a scan
    // would compare ~50 million times.
    assert!(calls <= 100_000, "{calls} key comparisons for 10,001 calls");
    let pool = builder.build().await.unwrap();
    assert_eq!(mock.connects(), 9_999, "key 7's count was replaced by 0");
    assert_eq!(pool.key_state(&key(7)).map_or(0, |k| k.idle), 0);
    assert_eq!(pool.key_state(&key(8)).map(|k| k.idle), Some(1));
    pool.close().await;
}

/// Every duration setting at `Duration::MAX` means "never": the pool dials,
/// checks, lends, recycles, keeps alive, scans for leaks, backs off and
/// closes without an `Instant + Duration` overflow (which would panic in
/// the pool's tasks).
#[tokio::test(start_paused = true)]
async fn every_duration_at_its_maximum_means_never() {
    let max = Duration::MAX;
    let recycled = Arc::new(AtomicUsize::new(0));
    let (mock, pool) = M::pool(|b| {
        let recycled = Arc::clone(&recycled);
        b.connect_timeout(max)
            .checkout_timeout(max)
            .idle_timeout(max)
            .max_lifetime(max)
            .health_check(HealthCheck::Always)
            .ping_timeout(max)
            .keepalive_interval(max)
            .keepalive_timeout(max)
            .leak_detection_threshold(max)
            .acquire_slow_threshold(max)
            .backoff(max, max)
            .after_return(move |_, _| {
                recycled.fetch_add(1, Ordering::Relaxed);
                Box::pin(async { Ok(()) })
            })
    })
    .await;
    let conn = pool.get_for(&1).await.expect("a dial without a deadline");
    drop(conn);
    pool.settled().await;
    tokio::time::advance(Duration::from_secs(3600)).await;
    let conn = pool.get_for(&1).await.expect("pinged, then lent");
    assert_eq!(conn.id, 1, "the same connection, an hour later");
    drop(conn);
    pool.settled().await;
    assert_eq!(recycled.load(Ordering::Relaxed), 2);

    mock.push(2, support::Step::Fail("down"));
    let e = pool.get_for(&2).await.unwrap_err();
    assert!(matches!(e, connpool::Error::Connect(_)), "{e}");
    let e = pool.get_for(&2).await.unwrap_err();
    let connpool::Error::Backoff { retry_in, .. } = e else {
        panic!("expected a backoff, got {e}")
    };
    assert!(retry_in > Duration::from_secs(86400 * 365), "{retry_in:?}");
    pool.close().await;
    assert_eq!(pool.state().open, 0);

    // The health check's idle window at its maximum: never pinged.
    let (mock, pool) = M::pool(|b| b.health_check(HealthCheck::IfIdleFor(max))).await;
    drop(pool.get_for(&1).await.unwrap());
    tokio::time::advance(Duration::from_secs(3600)).await;
    drop(pool.get_for(&1).await.unwrap());
    assert!(mock.pings().is_empty());
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
