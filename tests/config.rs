//! The builder: every validation error, the documented defaults, and how the
//! derived defaults follow the values that are set.

mod support;

use std::error::Error as _;
use std::time::Duration;

use connpool::{
    BuildError, Builder, ConfigError, DEFAULT_CHECKOUT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_OPEN, Pool,
};
use support::Mock;

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
            let source = err.source().expect("BuildError::Config has a source");
            assert_eq!(
                source.to_string(),
                e.to_string(),
                "source is the ConfigError"
            );
            (e, shown)
        }
        Err(BuildError::Connect(e)) => panic!("expected a config error, got a dial error: {e}"),
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
    max_waiters_zero: |b| b.max_waiters(Some(0)) => "max_waiters", mentions ["None"]
);

refused!(
    connect_timeout_zero: |b| b.connect_timeout(Duration::ZERO) => "connect_timeout", mentions []
);

refused!(
    checkout_timeout_zero:
    |b| b.checkout_timeout(Some(Duration::ZERO)) => "checkout_timeout", mentions []
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
    |b| b.max_open(2).initial_for(1, 3) => "initial_for", mentions ["3", "2"]
);

/// The single-destination `initial(n)` is checked like `initial_for((), n)`.
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
            assert_eq!(e.field(), "initial_for");
            assert!(names(&e.to_string(), "initial_for"), "{e}");
        }
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(pool) => panic!("built with {:?}", pool.config()),
    }
    assert_eq!(mock.connects(), 0);
}

#[tokio::test(start_paused = true)]
async fn documented_defaults() {
    assert_eq!(DEFAULT_MAX_OPEN, 100);
    assert_eq!(DEFAULT_CONNECT_TIMEOUT, Duration::from_secs(10));
    assert_eq!(DEFAULT_CHECKOUT_TIMEOUT, Duration::from_secs(30));
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

/// Builds with `f` applied and returns the resulting
/// `(max_open, max_open_per_key, max_idle, max_idle_per_key)`.
async fn caps(f: impl FnOnce(Builder<M>) -> Builder<M>) -> (usize, usize, usize, usize) {
    let pool = f(Pool::builder(M::new())).build().await.unwrap();
    let caps = caps_of(&pool);
    pool.close().await;
    caps
}

#[tokio::test(start_paused = true)]
async fn derived_defaults_follow_explicit_values() {
    assert_eq!(caps(|b| b.max_open(7)).await, (7, 7, 7, 7), "max_open(7)");
    assert_eq!(
        caps(|b| b.max_open_per_key(3)).await,
        (100, 3, 100, 3),
        "max_open_per_key(3): its idle cap follows it"
    );
    assert_eq!(
        caps(|b| b.max_idle(4)).await,
        (100, 100, 4, 4),
        "max_idle(4): the per-key idle cap follows it"
    );
    assert_eq!(
        caps(|b| b.max_open(7).max_open_per_key(5).max_idle(3)).await,
        (7, 5, 3, 3),
        "the per-key idle cap is the smaller of the two"
    );
    assert_eq!(
        caps(|b| b.max_open(7).max_open_per_key(2).max_idle(3)).await,
        (7, 2, 3, 2),
        "the per-key idle cap is the smaller of the two"
    );
    assert_eq!(
        caps(|b| b
            .max_open(9)
            .max_open_per_key(4)
            .max_idle(6)
            .max_idle_per_key(1))
        .await,
        (9, 4, 6, 1),
        "explicit values are kept"
    );
}

#[tokio::test(start_paused = true)]
async fn other_explicit_values_are_kept() {
    let pool = Pool::builder(M::new())
        .connect_timeout(Duration::from_millis(250))
        .checkout_timeout(None)
        .max_waiters(Some(1))
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
    assert_eq!(caps_of(&pool), (1, 1, 1, 1));
    assert_eq!(pool.state().idle, 1);
    pool.close().await;
    assert_eq!(mock.closed(), vec![1]);
}

fn caps_of(pool: &Pool<M>) -> (usize, usize, usize, usize) {
    let c = pool.config();
    (
        c.max_open(),
        c.max_open_per_key(),
        c.max_idle(),
        c.max_idle_per_key(),
    )
}
