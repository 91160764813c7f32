//! Accepted configurations: derived defaults following explicit values, and
//! values at their bounds.

use std::time::Duration;

use connpool::{Backoff, Builder, Config, HealthCheck, Pool};

use crate::support;
use crate::support::check_counts;

use super::M;

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
            .backoff(ns, ns)
    })
    .await;
    assert_eq!(c.idle_timeout(), Some(ns));
    assert_eq!(c.max_lifetime(), Some(ns));
    assert_eq!(c.ping_timeout(), ns);
    assert_eq!(c.keepalive_interval(), Some(ns));
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
