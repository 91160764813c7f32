//! The pool's own errors, against a scripted manager whose dial errors
//! come in both good shapes: connect failures and timeouts, checkout
//! timeouts, backoff, too many waiters, a closed pool and `build`'s errors.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connpool::{ConnectError, Error, Manager, Pool, async_trait};

use super::{chain, no_repetition, reads_well};

/// A manager error in one of the two good shapes: `inline` writes its cause
/// into its message (as the crate's managers do), else it returns it as its
/// source.
#[derive(Debug)]
struct DialError {
    what: &'static str,
    cause: io::Error,
    inline: bool,
}

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inline {
            write!(f, "{}: {}", self.what, self.cause)
        } else {
            f.write_str(self.what)
        }
    }
}

impl StdError for DialError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        if self.inline {
            self.cause.source()
        } else {
            Some(&self.cause)
        }
    }
}

/// Dials by key: `"inline…"` and `"layered…"` fail with a [`DialError`] of
/// that shape, `"hang…"` never finishes, `"flaky…"` fails (inline) on its
/// first dial and hangs after; anything else succeeds.
#[derive(Default)]
struct Scripted {
    flaky_dials: AtomicUsize,
}

#[async_trait]
impl Manager for Scripted {
    type Key = String;
    type Connection = ();
    type Error = DialError;

    async fn connect(&self, key: &String) -> Result<(), DialError> {
        let fail = |inline| DialError {
            what: "handshake refused",
            cause: io::Error::new(io::ErrorKind::ConnectionReset, "reset by peer"),
            inline,
        };
        if key.starts_with("inline") {
            Err(fail(true))
        } else if key.starts_with("layered") {
            Err(fail(false))
        } else if key.starts_with("hang") {
            std::future::pending().await
        } else if key.starts_with("flaky") {
            if self.flaky_dials.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(fail(true))
            } else {
                std::future::pending().await
            }
        } else {
            Ok(())
        }
    }
}

fn builder() -> connpool::Builder<Scripted> {
    Pool::builder(Scripted::default())
        .idle_timeout(None)
        .max_lifetime(None)
        .keepalive_interval(None)
        .checkout_timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_secs(60))
}

fn key(s: &str) -> String {
    s.to_owned()
}

/// A failed dial: `{}` says "connect failed" and the manager's message once;
/// the source is the manager error's own source, and the typed manager error
/// is `manager_error()`.
#[tokio::test(start_paused = true)]
async fn connect_error_of_the_manager() {
    let pool = builder().no_backoff().build().await.unwrap();

    let e = pool.get_for(&key("inline")).await.unwrap_err();
    let shown = reads_well(&e, Some("handshake refused: reset by peer"));
    assert_eq!(shown, "connect failed: handshake refused: reset by peer");
    assert_eq!(chain(&e).len(), 1, "{:?}", chain(&e));
    assert_eq!(e.manager_error().unwrap().what, "handshake refused");
    assert!(matches!(e.connect_error(), Some(ConnectError::Manager(_))));
    assert!(!e.is_timeout());

    // A manager error that keeps its cause as its source: the pool is
    // transparent over the one level it inlines.
    let e = pool.get_for(&key("layered")).await.unwrap_err();
    assert_eq!(
        no_repetition(&e),
        ["connect failed: handshake refused", "reset by peer"]
    );
    let manager = e.manager_error().unwrap();
    let via_pool = e.source().unwrap() as *const dyn StdError as *const ();
    let via_manager = manager.source().unwrap() as *const dyn StdError as *const ();
    assert_eq!(via_pool, via_manager, "the pool's source is the manager's");
    pool.close().await;
}

/// A dial that ran out of `connect_timeout` is a `Connect` error, not a
/// checkout timeout, and says it once.
#[tokio::test(start_paused = true)]
async fn connect_timeout() {
    let pool = builder()
        .no_backoff()
        .connect_timeout(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let e = pool.get_for(&key("hang")).await.unwrap_err();
    let shown = reads_well(&e, None);
    assert!(shown.contains("connect timed out after 100ms"), "{shown}");
    assert!(!e.is_timeout());
    assert!(e.manager_error().is_none());
    assert!(matches!(e.connect_error(), Some(ConnectError::Timeout(_))));
    pool.close().await;
}

/// The checkout deadline without a last dial error: one message.
#[tokio::test(start_paused = true)]
async fn checkout_timeout_without_last_dial_error() {
    let pool = builder().no_backoff().build().await.unwrap();
    let e = pool.get_for(&key("hang")).await.unwrap_err();
    assert!(e.is_timeout(), "{e}");
    let shown = reads_well(&e, None);
    assert_eq!(chain(&e).len(), 1);
    assert!(shown.contains("checkout deadline (waited 1s)"), "{shown}");
    assert!(!shown.contains("runtime"), "{shown}");
    assert!(e.manager_error().is_none());
    assert!(e.connect_error().is_none());
    pool.close().await;
}

/// The checkout deadline after the key's last dial failed: the dial error
/// is in the message once, its source is the manager error's source.
#[tokio::test(start_paused = true)]
async fn checkout_timeout_with_last_dial_error() {
    // A 1 ms backoff, remembered for 10 s: the next dial (which hangs)
    // starts 5 ms later, with the failure still the key's last.
    let pool = builder()
        .backoff(Duration::from_millis(1), Duration::from_secs(10))
        .build()
        .await
        .unwrap();
    let e = pool.get_for(&key("flaky")).await.unwrap_err();
    assert!(matches!(e, Error::Connect(_)), "{e}");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let e = pool.get_for(&key("flaky")).await.unwrap_err();
    assert!(e.is_timeout(), "{e}");
    let shown = reads_well(&e, Some("reset by peer"));
    assert!(
        shown.ends_with("(waited 1s); last dial: connect failed: handshake refused: reset by peer"),
        "{shown}"
    );
    assert_eq!(chain(&e).len(), 1, "{:?}", chain(&e));
    assert_eq!(e.manager_error().unwrap().what, "handshake refused");
    pool.close().await;
}

/// A getter refused during a dial backoff: the key (as the manager names
/// it: here the default, its `Debug`), the time left and the dial error,
/// each once.
#[tokio::test(start_paused = true)]
async fn backoff_names_the_key() {
    let pool = builder()
        .backoff(Duration::from_secs(10), Duration::from_secs(10))
        .build()
        .await
        .unwrap();
    let e = pool.get_for(&key("inline-db-7")).await.unwrap_err();
    assert!(matches!(e, Error::Connect(_)), "{e}");
    let e = pool.get_for(&key("inline-db-7")).await.unwrap_err();
    let Error::Backoff { key: shown_key, retry_in, .. } = &e else {
        panic!("expected a backoff, got {e:?}")
    };
    assert_eq!(shown_key.as_deref(), Some("\"inline-db-7\""));
    let shown = reads_well(&e, Some("reset by peer"));
    assert_eq!(
        shown,
        format!(
            "dials of \"inline-db-7\" are backing off for {retry_in:?} after: \
             connect failed: handshake refused: reset by peer"
        )
    );
    assert_eq!(e.manager_error().unwrap().what, "handshake refused");

    // Layered: the manager's source is the chain's next link.
    let e = pool.get_for(&key("layered")).await.unwrap_err();
    assert!(matches!(e, Error::Connect(_)), "{e}");
    let e = pool.get_for(&key("layered")).await.unwrap_err();
    assert!(matches!(e, Error::Backoff { .. }), "{e}");
    let messages = no_repetition(&e);
    assert!(messages[0].ends_with("after: connect failed: handshake refused"));
    assert_eq!(messages[1..], ["reset by peer"]);
    pool.close().await;
}

/// Errors without a cause: one message, no manager error.
#[tokio::test(start_paused = true)]
async fn too_many_waiters_and_closed() {
    let pool = builder().no_backoff().max_waiters(1).build().await.unwrap();
    let first = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get_for(&key("hang")).await.map(|_| ()) }
    });
    tokio::task::yield_now().await;
    let e = pool.get_for(&key("hang")).await.unwrap_err();
    assert!(
        matches!(e, Error::TooManyWaiters { max_waiters: 1, .. }),
        "{e}"
    );
    assert_eq!(
        reads_well(&e, None),
        "too many getters waiting (max_waiters = 1)"
    );
    assert!(e.manager_error().is_none() && e.connect_error().is_none() && !e.is_timeout());
    let _ = first.await;

    pool.close().await;
    let e = pool.get_for(&key("ok")).await.unwrap_err();
    assert!(matches!(e, Error::Closed), "{e}");
    assert_eq!(reads_well(&e, None), "the pool is closed");
    assert!(e.manager_error().is_none() && e.connect_error().is_none());
}

/// `build`'s errors: a refused setting is shown once (no source repeating
/// it); a failed pre-warm dial shows the manager's message once.
#[tokio::test(start_paused = true)]
async fn build_and_config_errors() {
    let e = builder()
        .max_open(4)
        .max_open_per_key(5)
        .build()
        .await
        .unwrap_err();
    let Error::Config { field, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*field, "max_open_per_key");
    let shown = reads_well(&e, None);
    assert!(
        shown.starts_with("invalid pool config: `max_open_per_key` "),
        "{shown}"
    );
    assert_eq!(chain(&e).len(), 1);
    assert!(e.manager_error().is_none());

    let e = builder()
        .initial_for(key("inline"), 1)
        .build()
        .await
        .unwrap_err();
    let shown = reads_well(&e, Some("reset by peer"));
    assert_eq!(shown, "connect failed: handshake refused: reset by peer");
    assert_eq!(chain(&e).len(), 1);
    assert_eq!(e.manager_error().unwrap().what, "handshake refused");

    let e = builder()
        .initial_for(key("layered"), 1)
        .build()
        .await
        .unwrap_err();
    assert_eq!(
        no_repetition(&e),
        ["connect failed: handshake refused", "reset by peer"]
    );
}

/// A pool used from a runtime other than the one it was built in, which
/// nobody drives: its dials never run, and the checkout timeout says where
/// to look. The same timeout inside the pool's runtime does not.
#[test]
fn timeout_on_a_foreign_runtime_hints_at_the_pool_runtime() {
    let built_in = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = built_in.block_on(async {
        builder()
            .checkout_timeout(Duration::from_millis(200))
            .build()
            .await
            .unwrap()
    });
    // `built_in` is not driven from here on: the dial of "ok" is spawned on
    // it and never runs.
    let elsewhere = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let e = elsewhere.block_on(pool.get_for(&key("ok"))).unwrap_err();
    let Error::Timeout { foreign_runtime, .. } = &e else {
        panic!("expected a timeout, got {e:?}")
    };
    assert!(*foreign_runtime);
    let shown = reads_well(&e, None);
    assert!(
        shown.contains("the runtime it was built in") && shown.contains("still running?"),
        "{shown}"
    );

    // In its own runtime a timeout carries no hint.
    let e = built_in.block_on(pool.get_for(&key("hang"))).unwrap_err();
    assert!(
        matches!(e, Error::Timeout { foreign_runtime: false, .. }),
        "{e:?}"
    );
    assert!(!e.to_string().contains("runtime"), "{e}");
    drop(pool);
}
