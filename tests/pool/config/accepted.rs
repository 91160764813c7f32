//! Accepted configurations: derived caps following explicit values, and
//! caps at their bounds. (Every other setting as built: the core's unit
//! tests of the builder.)

use connpool::{Builder, Pool};

use super::M;

/// A pool's caps as it reports them: `max_open`,
/// `max_open_per_key`, `max_idle`, `max_idle_per_key`.
#[derive(Debug, PartialEq, Eq)]
struct Caps {
    open: usize,
    open_per_key: usize,
    idle: usize,
    idle_per_key: usize,
}

fn caps_of(pool: &Pool<M>) -> Caps {
    let c = pool.limits();
    Caps {
        open: c.max_open,
        open_per_key: c.max_open_per_key,
        idle: c.max_idle,
        idle_per_key: c.max_idle_per_key,
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
