//! The settings as `build` keeps them: the documented defaults, explicit
//! values, values at their bounds, and the liveness settings handed to the
//! manager. (What a pool does with them is tested through
//! its behaviour, in the integration tests.)

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::config::Config;
use crate::defaults;
use crate::manager::test_support::NeverDials;
use crate::manager::{Liveness, Manager};
use crate::policy::Backoff;
use crate::pool::Pool;

use super::Builder;

/// The configuration `f` builds from the defaults, which must be accepted.
fn accepted(f: impl FnOnce(Builder<NeverDials>) -> Builder<NeverDials>) -> Config {
    match f(Pool::builder(NeverDials)).validate() {
        Ok(config) => config,
        Err(e) => panic!("expected the configuration to be accepted, got {e:?}"),
    }
}

/// Each default, against its constant and against the literal the docs
/// give, so a constant changed without its docs fails here.
#[test]
fn documented_defaults_as_built() {
    assert_eq!(defaults::MAX_OPEN, 100);
    assert_eq!(defaults::CONNECT_TIMEOUT, Duration::from_secs(10));
    assert_eq!(defaults::CHECKOUT_TIMEOUT, Duration::from_secs(30));
    assert_eq!(defaults::IDLE_TIMEOUT, Duration::from_secs(90));
    assert_eq!(defaults::MAX_LIFETIME, Duration::from_secs(30 * 60));
    assert_eq!(defaults::JITTER, 0.1);
    assert_eq!(defaults::HEALTH_CHECK, Duration::from_millis(500));
    assert_eq!(defaults::PING_TIMEOUT, Duration::from_secs(5));
    assert_eq!(defaults::KEEPALIVE_INTERVAL, Duration::from_secs(30));
    assert_eq!(defaults::KEEPALIVE_MAX_MISSED, 1);
    assert_eq!(defaults::BACKOFF_BASE, Duration::from_millis(100));
    assert_eq!(defaults::BACKOFF_CAP, Duration::from_secs(5));
    assert_eq!(defaults::MAX_CONNECTING, 2);

    let c = accepted(|b| b);
    assert_eq!(c.set.max_open, defaults::MAX_OPEN, "max_open");
    assert_eq!(c.max_open_per_key, 100, "max_open_per_key = max_open");
    assert_eq!(c.max_idle, 100, "max_idle = max_open");
    assert_eq!(
        c.max_idle_per_key, 100,
        "max_idle_per_key = max_open_per_key"
    );
    assert_eq!(
        c.set.connect_timeout,
        defaults::CONNECT_TIMEOUT,
        "connect_timeout"
    );
    assert_eq!(
        c.set.checkout_timeout,
        Some(defaults::CHECKOUT_TIMEOUT),
        "checkout_timeout"
    );
    assert_eq!(c.set.max_waiters, None, "max_waiters");
    assert_eq!(
        c.set.idle_timeout,
        Some(defaults::IDLE_TIMEOUT),
        "idle_timeout"
    );
    assert_eq!(
        c.set.max_lifetime,
        Some(defaults::MAX_LIFETIME),
        "max_lifetime"
    );
    assert_eq!(c.set.jitter, defaults::JITTER, "jitter");
    assert_eq!(c.set.max_uses, None, "max_uses: no limit");
    assert_eq!(c.set.min_idle, 0, "min_idle");
    assert_eq!(
        c.set.health_check,
        Some(defaults::HEALTH_CHECK),
        "health_check"
    );
    assert_eq!(c.set.ping_timeout, defaults::PING_TIMEOUT, "ping_timeout");
    assert_eq!(
        c.set.keepalive_interval,
        Some(defaults::KEEPALIVE_INTERVAL),
        "keepalive_interval"
    );
    assert_eq!(
        c.set.keepalive_max_missed,
        defaults::KEEPALIVE_MAX_MISSED,
        "keepalive_max_missed"
    );
    assert_eq!(
        c.set.backoff,
        Some(Backoff {
            base: defaults::BACKOFF_BASE,
            cap: defaults::BACKOFF_CAP
        }),
        "backoff"
    );
    assert_eq!(
        c.set.max_connecting, None,
        "max_connecting: while recovering"
    );
    assert_eq!(c.set.leak_detection_threshold, None, "leak detection off");
    assert_eq!(
        c.set.acquire_slow_threshold,
        Some(defaults::ACQUIRE_SLOW_THRESHOLD),
        "acquire_slow_threshold"
    );
    assert_eq!(defaults::ACQUIRE_SLOW_THRESHOLD, Duration::from_secs(2));
    assert!(!c.set.metrics_key_attribute, "no key attribute");
    assert_eq!(c.set.name, defaults::NAME, "name");
    assert_eq!(defaults::NAME, "connpool");
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
    assert_eq!((c.set.min_idle, c.max_idle_per_key), (3, 3));
    let c = accepted(|b| b.max_open(4).min_idle(4));
    assert_eq!((c.set.min_idle, c.max_idle_per_key), (4, 4), "derived cap");

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
