//! Errors read well in a log: for every error of the pool and its managers,
//! `{}` of the error says what went wrong down to the root cause, and walking
//! its `source()` chain (as `anyhow`'s `{:#}` or a logger does) repeats no
//! message: each error either writes its cause into its message or returns
//! it as its source, never both.
//!
//! The PostgreSQL cases run against a real server (`support::pg`; with
//! `CI=true` they must run, never skip): an unknown database, an unknown
//! role, a wrong password and a server that is down each show PostgreSQL's
//! own words in `{}` of the pool's `Error` and of `BuildError`.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connpool::{BuildError, ConnectError, Error, Manager, Pool, async_trait};

/// The messages of `e` and of each of its sources, outermost first.
pub(crate) fn chain(e: &dyn StdError) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut next = e.source();
    while let Some(s) = next {
        out.push(s.to_string());
        next = s.source();
    }
    out
}

/// No message of `e`'s chain contains the next one's. Returns the chain.
#[track_caller]
pub(crate) fn no_repetition(e: &dyn StdError) -> Vec<String> {
    let messages = chain(e);
    for pair in messages.windows(2) {
        assert!(
            !pair[0].contains(&pair[1]),
            "{:?} repeats its source {:?}; the chain: {messages:#?}",
            pair[0],
            pair[1]
        );
    }
    messages
}

/// [`no_repetition`], and `{}` of `e` contains the root cause's message
/// (and `root`, if given). Returns `{}`.
#[track_caller]
pub(crate) fn reads_well(e: &dyn StdError, root: Option<&str>) -> String {
    let messages = no_repetition(e);
    let top = &messages[0];
    let last = messages.last().unwrap();
    assert!(top.contains(last), "{top:?} lacks the root cause {last:?}");
    if let Some(root) = root {
        assert!(top.contains(root), "{top:?} lacks {root:?}");
    }
    top.clone()
}

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
    let BuildError::Config(config) = &e else {
        panic!("{e:?}")
    };
    let shown = reads_well(&e, None);
    assert_eq!(shown, config.to_string());
    assert_eq!(chain(&e).len(), 1);
    reads_well(config, None);
    assert!(e.manager_error().is_none());

    let e = builder()
        .initial_for(key("inline"), 1)
        .build()
        .await
        .unwrap_err();
    let shown = reads_well(&e, Some("reset by peer"));
    assert_eq!(
        shown,
        "pre-warming the pool failed: connect failed: handshake refused: reset by peer"
    );
    assert_eq!(chain(&e).len(), 1);
    assert_eq!(e.manager_error().unwrap().what, "handshake refused");

    let e = builder()
        .initial_for(key("layered"), 1)
        .build()
        .await
        .unwrap_err();
    assert_eq!(
        no_repetition(&e),
        [
            "pre-warming the pool failed: connect failed: handshake refused",
            "reset by peer"
        ]
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

#[cfg(feature = "tcp")]
mod tcp {
    use connpool::managers::tcp::{Destination, TcpManager};

    use super::*;

    pub(super) fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    /// Connection refused: the address once, the io error's message once,
    /// and the io error's kind kept.
    #[tokio::test]
    async fn refused_by_address_and_by_name() {
        let pool = Pool::builder(TcpManager::new())
            .no_backoff()
            .build()
            .await
            .unwrap();
        let port = closed_port();

        let e = pool
            .get_for(&Destination::from(("127.0.0.1", port)))
            .await
            .unwrap_err();
        let shown = reads_well(&e, Some("Connection refused"));
        let addr = format!("127.0.0.1:{port}");
        assert!(
            shown.starts_with(&format!("connect failed: connecting to {addr}: ")),
            "{shown}"
        );
        assert_eq!(shown.matches(&addr).count(), 1, "{shown}");
        let io = e.manager_error().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
        reads_well(io, Some("Connection refused"));

        // Backing off: the address once (the dial error names it).
        let backing_off = Pool::builder(TcpManager::new()).build().await.unwrap();
        let dest = Destination::from(("127.0.0.1", port));
        let _ = backing_off.get_for(&dest).await.unwrap_err();
        let e = backing_off.get_for(&dest).await.unwrap_err();
        let Error::Backoff { key: Some(name), .. } = &e else {
            panic!("expected a backoff naming the key, got {e:?}")
        };
        assert_eq!(&**name, addr, "the key's Display");
        let shown = reads_well(&e, Some("Connection refused"));
        assert!(shown.starts_with("dials are backing off for "), "{shown}");
        assert!(
            shown.contains(&format!("after: connect failed: connecting to {addr}: ")),
            "{shown}"
        );
        assert_eq!(shown.matches(&addr).count(), 1, "{shown}");
        backing_off.close().await;

        // A name: the name, then the address it resolved to.
        let dest = Destination::from(format!("localhost:{port}"));
        let e = pool.get_for(&dest).await.unwrap_err();
        let shown = reads_well(&e, Some("refused"));
        assert!(
            shown.contains(&format!("connecting to localhost:{port} (")),
            "{shown}"
        );
        pool.close().await;
    }

    /// A malformed destination: `InvalidInput`, naming the string and what
    /// is wrong, in one message.
    #[tokio::test]
    async fn malformed_destinations() {
        let pool = Pool::builder(TcpManager::new())
            .no_backoff()
            .build()
            .await
            .unwrap();
        for (s, what) in [
            ("[::1", "unclosed '['"),
            (":80", "no host"),
            (" 127.0.0.1:80", "' '"),
            ("host", "no port"),
            ("host:99999", "out of range"),
        ] {
            let e = pool.get_for(&Destination::from(s)).await.unwrap_err();
            let shown = reads_well(&e, Some(what));
            assert!(
                shown.contains(&format!("invalid destination {s:?}")),
                "{shown}"
            );
            let io = e.manager_error().unwrap();
            assert_eq!(io.kind(), io::ErrorKind::InvalidInput, "{s}: {io}");
        }
        pool.close().await;
    }
}

/// The HTTP/2 and gRPC managers' errors, for a refused dial and for a
/// server that answers in HTTP/1.1 and hangs up.
#[cfg(feature = "http2")]
mod h2 {
    use connpool::managers::http2::Http2Manager;
    use connpool::managers::tcp::Destination;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::tcp::closed_port;
    use super::*;

    /// A server that answers every connection in HTTP/1.1 and closes it.
    async fn http1_server() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        port
    }

    async fn dial_errors<M>(manager: M) -> Vec<Error<M::Error>>
    where
        M: Manager<Key = Destination>,
    {
        let pool = Pool::builder(manager).no_backoff().build().await.unwrap();
        let mut errors = Vec::new();
        for port in [closed_port(), http1_server().await] {
            let dest = Destination::from(format!("127.0.0.1:{port}"));
            errors.push(pool.get_for(&dest).await.map(drop).unwrap_err());
        }
        pool.close().await;
        errors
    }

    #[tokio::test]
    async fn http2_dial_errors_read_well() {
        let errors = dial_errors(Http2Manager::new()).await;
        reads_well(&errors[0], Some("refused"));
        reads_well(&errors[1], None);
        for e in &errors {
            no_repetition(e.manager_error().unwrap());
        }
    }

    #[cfg(feature = "grpc")]
    #[tokio::test]
    async fn grpc_dial_errors_read_well() {
        let errors = dial_errors(connpool::managers::grpc::GrpcManager::new()).await;
        reads_well(&errors[0], Some("refused"));
        reads_well(&errors[1], None);
        for e in &errors {
            no_repetition(e.manager_error().unwrap());
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::sync::Arc;

    use connpool::managers::postgres::{PgError, PostgresManager};
    use tokio_postgres::Config;
    use tokio_postgres::error::SqlState;

    use super::*;
    use crate::support::pg::{self, PgServer};

    const PASSWORD: &str = "right-horse-battery";
    const WRONG: &str = "wrong-staple-battery";

    /// `config` fails to connect: `{}` of the pool's `Error` (a get) and of
    /// `BuildError` (a pre-warm) each carry `expect`, no message of either
    /// chain repeats, and no password is shown. Returns the manager error.
    async fn fails_with(config: Config, expect: &str) -> Arc<PgError> {
        let manager = PostgresManager::new(config).single();
        let pool = Pool::builder(manager.clone())
            .no_backoff()
            .build()
            .await
            .unwrap();
        let e = pool.get().await.unwrap_err();
        let shown = reads_well(&e, Some(expect));
        assert!(shown.starts_with("connect failed: "), "{shown}");
        let debug = format!("{e:?}");
        for secret in [PASSWORD, WRONG] {
            assert!(
                !shown.contains(secret) && !debug.contains(secret),
                "{debug}"
            );
        }
        let Some(ConnectError::Manager(pg)) = e.connect_error() else {
            panic!("{e:?}")
        };
        let pg = Arc::clone(pg);
        assert!(pg.source().is_none(), "the text is inlined: {pg:?}");
        pool.close().await;

        let e = Pool::builder(manager).initial(1).build().await.unwrap_err();
        let shown = reads_well(&e, Some(expect));
        assert!(
            shown.starts_with("pre-warming the pool failed: "),
            "{shown}"
        );
        let debug = format!("{e:?}");
        for secret in [PASSWORD, WRONG] {
            assert!(
                !shown.contains(secret) && !debug.contains(secret),
                "{debug}"
            );
        }
        assert!(e.manager_error().is_some());
        pg
    }

    fn server() -> Option<Arc<PgServer>> {
        pg::kept()
    }

    #[tokio::test]
    async fn unknown_database() {
        let Some(server) = server() else { return };
        let mut config = server.config();
        config.dbname("no_such_db");
        let pg = fails_with(
            config,
            "database \"no_such_db\" does not exist (SQLSTATE 3D000)",
        )
        .await;
        assert_eq!(pg.code(), Some(&SqlState::INVALID_CATALOG_NAME));
        assert!(pg.as_db_error().is_some());
        assert_eq!(pg.driver().unwrap().to_string(), "db error");
    }

    #[tokio::test]
    async fn unknown_role() {
        let Some(server) = server() else { return };
        let mut config = server.config();
        config.user("no_such_role");
        let pg = fails_with(config, "role \"no_such_role\" does not exist").await;
        assert_eq!(
            pg.code(),
            Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
        );
    }

    /// A role that must give a password (a `pg_hba.conf` rule for it
    /// alone, on a throwaway server: a dedicated one when the shared server
    /// is `DATABASE_URL`'s), given the wrong one.
    #[tokio::test]
    async fn wrong_password() {
        let Some(shared) = server() else { return };
        let server = if shared.is_throwaway() {
            shared
        } else {
            let Some(own) = pg::dedicated() else {
                return;
            };
            own
        };
        let admin = server.client().await;
        admin
            .batch_execute(&format!(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pw_user') THEN
                     CREATE ROLE pw_user LOGIN;
                   END IF;
                 END $$;
                 ALTER ROLE pw_user PASSWORD '{PASSWORD}';"
            ))
            .await
            .unwrap();
        server.require_password("pw_user");
        admin
            .batch_execute("SELECT pg_reload_conf()")
            .await
            .unwrap();

        let mut config = server.config();
        config.user("pw_user").password(WRONG);
        // The postmaster reloads `pg_hba.conf` asynchronously: wait until a
        // wrong password is refused (a trust rule would let it in).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match config.connect(tokio_postgres::NoTls).await {
                Err(e) if e.code() == Some(&SqlState::INVALID_PASSWORD) => break,
                other => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "the password rule never took effect: {:?}",
                        other.map(|_| ())
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        let pg = fails_with(
            config.clone(),
            "password authentication failed for user \"pw_user\" (SQLSTATE 28P01)",
        )
        .await;
        assert_eq!(pg.code(), Some(&SqlState::INVALID_PASSWORD));

        // The right password gets in: the rule asked for it.
        config.password(PASSWORD);
        let pool = Pool::builder(PostgresManager::new(config).single())
            .build()
            .await
            .unwrap();
        pool.get()
            .await
            .unwrap()
            .simple_query("SELECT 1")
            .await
            .unwrap();
        pool.close().await;
    }

    /// Nobody listens: the driver's context and the io error.
    #[tokio::test]
    async fn server_down() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut config = Config::new();
        config
            .host("127.0.0.1")
            .port(port)
            .user("postgres")
            .password(PASSWORD)
            .dbname("postgres");
        let pg = fails_with(config, "error connecting to server: Connection refused").await;
        assert!(pg.code().is_none() && pg.as_db_error().is_none());
        assert_eq!(
            pg.driver().unwrap().to_string(),
            "error connecting to server"
        );
    }
}
