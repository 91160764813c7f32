//! Every validation error of the builder: core caps and timeouts,
//! pre-warming, and the lifecycle fields.

use std::error::Error as _;
use std::time::Duration;

use connpool::{Builder, Error, Pool};

use crate::support::Mock;

use super::M;

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
async fn refusal(builder: Builder<M>, mock: &M) -> (&'static str, String) {
    let result = builder.build().await;
    assert_eq!(mock.connects(), 0, "a refused configuration must not dial");
    match result {
        Err(e @ Error::Config { field, .. }) => {
            assert!(
                e.source().is_none(),
                "the message is the error's own: no source repeats it"
            );
            (field, e.to_string())
        }
        Err(e) => panic!("expected a config error, got: {e}"),
        Ok(pool) => panic!(
            "expected a config error, the pool was built with {:?}",
            pool.limits()
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
    let (refused, shown) = refusal(builder, mock).await;
    assert_eq!(refused, field, "the field of {shown:?}");
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
        Err(e @ Error::Config { field, .. }) => {
            assert_eq!(field, "initial");
            assert!(names(&e.to_string(), "initial"), "{e}");
            assert!(!e.to_string().contains("initial_for"), "{e}");
            assert!(e.to_string().contains("`max_idle_per_key` (1)"), "{e}");
        }
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(pool) => panic!("built with {:?}", pool.limits()),
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
        Err(e @ Error::Config { field, .. }) => {
            let shown = e.to_string();
            assert_eq!(field, "initial");
            assert!(shown.contains("`initial` (5)"), "{shown}");
            assert!(shown.contains("`max_open` (4)"), "{shown}");
            assert!(!shown.contains("initial_for"), "{shown}");
            assert!(!shown.contains("`max_idle_per_key` ("), "{shown}");
        }
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(pool) => panic!("built with {:?}", pool.limits()),
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
    |b| b.health_check(None).ping_timeout(Duration::ZERO)
        => "ping_timeout", mentions ["greater than zero"]
);

refused!(
    keepalive_interval_zero:
    |b| b.keepalive_interval(Duration::ZERO)
        => "keepalive_interval", mentions ["greater than zero"]
);

refused!(
    /// Refused even with keepalive off (documented "Non-zero").
    ping_timeout_zero_without_keepalive:
    |b| b.keepalive_interval(None).health_check(None).ping_timeout(Duration::ZERO)
        => "ping_timeout", mentions ["greater than zero"]
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
