//! The settings as `build` keeps them: the documented defaults, explicit
//! values, values at their bounds, and the liveness settings handed to the
//! manager. (What a pool does with them is tested through
//! its behaviour, in the integration tests.)

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::config::Config;
use crate::manager::test_support::NeverDials;
use crate::manager::{Liveness, Manager};
use crate::policy::Backoff;
use crate::pool::Pool;
use crate::settings::Settings;

use super::Builder;

/// The configuration `f` builds from the defaults, which must be accepted.
fn accepted(f: impl FnOnce(Builder<NeverDials>) -> Builder<NeverDials>) -> Config {
    match f(Pool::builder(NeverDials)).validate() {
        Ok(config) => config,
        Err(e) => panic!("expected the configuration to be accepted, got {e:?}"),
    }
}

/// A duration as the defaults table writes it: `500 ms`, `10 s`, `30 min`.
fn written(d: Duration) -> String {
    match (d.as_secs(), d.subsec_millis()) {
        (s, 0) if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        (s, 0) => format!("{s} s"),
        _ => format!("{} ms", d.as_millis()),
    }
}

/// The default of each setting, against the literal the `Builder` docs'
/// table gives (the one place that says why each was chosen): a default
/// changed without its row fails here.
#[test]
fn the_builder_docs_table_gives_each_default() {
    let source = include_str!("../builder.rs");
    let row = |setting: &str| -> String {
        let start = format!("/// | `{setting}` | ");
        let line = source
            .lines()
            .find(|l| l.starts_with(&start))
            .unwrap_or_else(|| panic!("no row for `{setting}` in the Builder docs"));
        line[start.len()..].split(" | ").next().unwrap().to_owned()
    };
    let d = crate::settings::Settings::default();
    let some = |d: Option<Duration>| written(d.expect("a default"));
    let backoff = d.backoff.expect("a default backoff");
    let expected = [
        ("max_open", d.max_open.to_string()),
        ("connect_timeout", written(d.connect_timeout)),
        ("checkout_timeout", some(d.checkout_timeout)),
        ("idle_timeout", some(d.idle_timeout)),
        ("max_lifetime", some(d.max_lifetime)),
        ("jitter", d.jitter.to_string()),
        ("health_check", some(d.health_check)),
        ("ping_timeout", written(d.ping_timeout)),
        ("keepalive_interval", some(d.keepalive_interval)),
        ("keepalive_max_missed", d.keepalive_max_missed.to_string()),
        (
            "backoff",
            format!(
                "{} doubling to {}",
                written(backoff.base),
                written(backoff.cap)
            ),
        ),
        ("max_connecting", Settings::MAX_CONNECTING_UNSET.to_string()),
        ("max_borrowers", d.max_borrowers.to_string()),
        ("acquire_slow_threshold", some(d.acquire_slow_threshold)),
        ("name", format!("`\"{}\"`", d.name)),
        ("min_idle", d.min_idle.to_string()),
        ("metrics_key_gauges", d.metrics_key_gauges.to_string()),
    ];
    for (setting, value) in expected {
        let cell = row(setting);
        assert!(
            cell.starts_with(&value),
            "`{setting}`: the table says {cell:?}, the default is {value}"
        );
    }
    // The settings whose default is "none", "off" or derived.
    assert_eq!(d.max_open_per_key, None);
    assert_eq!(d.max_idle, None);
    assert_eq!(d.max_idle_per_key, None);
    assert_eq!(d.max_waiters, None);
    assert_eq!(d.max_uses, None);
    assert_eq!(d.max_connecting, None);
    assert_eq!(d.leak_detection_threshold, None);
    assert!(!d.metrics_key_attribute);
}

/// Each default as built, against the literal the docs give.
#[test]
fn documented_defaults_as_built() {
    let c = accepted(|b| b);
    assert_eq!(c.set.max_open, 100, "max_open");
    assert_eq!(
        c.limits.max_open_per_key, 100,
        "max_open_per_key = max_open"
    );
    assert_eq!(c.limits.max_idle, 100, "max_idle = max_open");
    assert_eq!(
        c.limits.max_idle_per_key, 100,
        "max_idle_per_key = max_open_per_key"
    );
    assert_eq!(c.set.connect_timeout, Duration::from_secs(10));
    assert_eq!(c.set.checkout_timeout, Some(Duration::from_secs(30)));
    assert_eq!(c.set.max_waiters, None, "max_waiters");
    assert_eq!(c.set.idle_timeout, Some(Duration::from_secs(90)));
    assert_eq!(c.set.max_lifetime, Some(Duration::from_secs(30 * 60)));
    assert_eq!(c.set.jitter, 0.1, "jitter");
    assert_eq!(c.set.max_uses, None, "max_uses: no limit");
    assert_eq!(c.set.min_idle, 0, "min_idle");
    assert_eq!(c.set.health_check, Some(Duration::from_millis(500)));
    assert_eq!(c.set.ping_timeout, Duration::from_secs(5));
    assert_eq!(c.set.keepalive_interval, Some(Duration::from_secs(30)));
    assert_eq!(c.set.keepalive_max_missed, 1);
    assert_eq!(
        c.set.backoff,
        Some(Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
        }),
        "backoff"
    );
    assert_eq!(
        c.set.max_connecting, None,
        "max_connecting: while recovering"
    );
    assert_eq!(Settings::MAX_CONNECTING_UNSET, 2);
    assert_eq!(c.set.leak_detection_threshold, None, "leak detection off");
    assert_eq!(c.set.acquire_slow_threshold, Some(Duration::from_secs(2)));
    assert!(!c.set.metrics_key_attribute, "no key attribute");
    assert_eq!(c.set.name, "connpool", "name");
    assert_eq!(
        Liveness::default(),
        Liveness::of(&c.set),
        "a manager's liveness before a pool"
    );
}

/// A value refused by its setter is refused by `build`, naming the
/// setting; set again to a good value, it is not.
#[test]
fn a_setter_s_refusal_is_replaced_by_a_good_value() {
    let refused = Pool::builder(NeverDials)
        .jitter(1.5)
        .validate()
        .unwrap_err();
    assert_eq!(refused.field, "jitter");
    accepted(|b| b.jitter(1.5).jitter(0.5));
    accepted(|b| b.backoff(Duration::ZERO, Duration::ZERO).no_backoff());
    let first = Pool::builder(NeverDials)
        .max_uses(0)
        .ping_timeout(Duration::ZERO)
        .validate()
        .unwrap_err();
    assert_eq!(
        first.field, "max_uses",
        "the first refused, in the order set"
    );
}

#[test]
fn explicit_values_are_kept() {
    let c = accepted(|b| {
        b.connect_timeout(Duration::from_millis(250))
            .checkout_timeout(None)
            .max_waiters(1)
    });
    assert_eq!(c.set.connect_timeout, Duration::from_millis(250));
    assert_eq!(c.set.checkout_timeout, None, "None: wait forever");
    assert_eq!(c.set.max_waiters, Some(1));
}

/// Every lifecycle value may sit exactly at its bound (or be `None` where
/// that means "off"), and is kept as given.
#[test]
fn lifecycle_values_at_their_bounds_are_accepted() {
    // jitter: the closed lower bound, and just under the open upper bound.
    assert_eq!(accepted(|b| b.jitter(0.0)).set.jitter, 0.0);
    assert_eq!(accepted(|b| b.jitter(0.999)).set.jitter, 0.999);

    // min_idle up to max_idle_per_key, explicit or derived.
    let c = accepted(|b| b.max_idle_per_key(3).min_idle(3));
    assert_eq!((c.set.min_idle, c.limits.max_idle_per_key), (3, 3));
    let c = accepted(|b| b.max_open(4).min_idle(4));
    assert_eq!(
        (c.set.min_idle, c.limits.max_idle_per_key),
        (4, 4),
        "derived cap"
    );

    // The smallest non-zero counts, and the largest.
    assert_eq!(accepted(|b| b.max_uses(1)).set.max_uses, Some(1));
    let most = u64::from(u32::MAX);
    assert_eq!(accepted(|b| b.max_uses(most)).set.max_uses, Some(most));
    let missed = |n| {
        accepted(|b| b.keepalive_max_missed(n))
            .set
            .keepalive_max_missed
    };
    assert_eq!(missed(65_535), 65_535);
    assert_eq!(missed(1), 1);
    assert_eq!(
        accepted(|b| b.max_borrowers(65_535)).set.max_borrowers,
        65_535
    );
    assert_eq!(
        accepted(|b| b.max_connecting(1)).set.max_connecting,
        Some(1)
    );

    // Backoff: base equal to cap (a constant delay), and none at all.
    let one = Duration::from_millis(250);
    assert_eq!(
        accepted(|b| b.backoff(one, one)).set.backoff,
        Some(Backoff {
            base: one,
            cap: one
        })
    );
    assert_eq!(accepted(|b| b.no_backoff()).set.backoff, None);

    // `None` turns the timers off.
    let c = accepted(|b| {
        b.idle_timeout(None)
            .max_lifetime(None)
            .keepalive_interval(None)
    });
    assert_eq!(c.set.idle_timeout, None);
    assert_eq!(c.set.max_lifetime, None);
    assert_eq!(c.set.keepalive_interval, None);

    // The smallest non-zero durations.
    let ns = Duration::from_nanos(1);
    let c = accepted(|b| {
        b.idle_timeout(ns)
            .max_lifetime(ns)
            .ping_timeout(ns)
            .keepalive_interval(ns)
            .backoff(ns, ns)
    });
    assert_eq!(c.set.idle_timeout, Some(ns));
    assert_eq!(c.set.max_lifetime, Some(ns));
    assert_eq!(c.set.ping_timeout, ns);
    assert_eq!(c.set.keepalive_interval, Some(ns));
    assert_eq!(c.set.backoff, Some(Backoff { base: ns, cap: ns }));

    // Every health-check policy, including a zero window.
    for policy in [None, Some(Duration::ZERO), Some(ns)] {
        assert_eq!(
            accepted(|b| b.health_check(policy)).set.health_check,
            policy
        );
    }
}

/// A manager that keeps the liveness settings it is given (or panics).
struct Watches {
    given: Arc<Mutex<Option<Liveness>>>,
    panics: bool,
}

#[async_trait]
impl Manager for Watches {
    type Key = ();
    type Connection = ();
    type Error = std::io::Error;

    async fn connect(&self, _: &()) -> std::io::Result<()> {
        Ok(())
    }

    fn liveness(&mut self, liveness: &Liveness) {
        assert!(!self.panics, "a manager that panics here");
        *self.given.lock() = Some(*liveness);
    }
}

/// The manager is handed the builder's liveness settings once, at build;
/// a panic there still builds the pool.
#[tokio::test]
async fn the_manager_is_given_the_liveness_settings() {
    let given = Arc::new(Mutex::new(None));
    let manager = Watches {
        given: given.clone(),
        panics: false,
    };
    let pool = Pool::builder(manager)
        .keepalive_interval(Duration::from_millis(200))
        .keepalive_max_missed(2)
        .ping_timeout(Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    let want = Liveness {
        keepalive_interval: Some(Duration::from_millis(200)),
        keepalive_max_missed: 2,
        ping_timeout: Duration::from_secs(1),
    };
    assert_eq!(*given.lock(), Some(want));
    pool.close().await;

    let manager = Watches {
        given: given.clone(),
        panics: true,
    };
    let pool = Pool::builder(manager).build().await.unwrap();
    pool.get().await.unwrap();
    pool.close().await;
}

/// `Backoff::delay`: the base after the first failure, doubling per failure,
/// clamped at the cap; 0 failures gives the base, and a huge count saturates
/// at the cap instead of overflowing.
#[test]
fn backoff_delay_doubles_up_to_the_cap() {
    let ms = Duration::from_millis;
    let b = Backoff {
        base: ms(100),
        cap: ms(1000),
    };
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
    let wide = Backoff {
        base: Duration::from_nanos(1),
        cap: Duration::MAX,
    };
    assert_eq!(wide.delay(32), Duration::from_nanos(1 << 31));
    assert_eq!(wide.delay(33), Duration::from_nanos(u64::from(u32::MAX)));
    assert_eq!(
        wide.delay(u32::MAX),
        Duration::from_nanos(u64::from(u32::MAX))
    );
    // A base so large that base × factor overflows saturates, then is capped.
    let huge = Backoff {
        base: Duration::MAX / 2,
        cap: Duration::MAX,
    };
    assert_eq!(huge.delay(3), Duration::MAX);
    assert_eq!(huge.delay(u32::MAX), Duration::MAX);
}
