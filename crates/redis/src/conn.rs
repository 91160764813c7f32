//! [`RedisConn`]: the pooled handle to one multiplexed connection, what it
//! knows of the connection's health, and the socket wrapper that tells it.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

use tokio::task::JoinHandle;

use connpool_tcp::boxed::in_place;
use connpool_tcp::observed::{Event, Observer};

/// A pooled Redis connection: a handle to a redis-rs
/// [`MultiplexedConnection`] (cheap to clone; each borrower of a shared
/// connection holds its own). Every redis-rs command works on it
/// ([`redis::AsyncCommands`], `cmd(…).query_async(&mut *conn)`, pipelines),
/// since it implements [`ConnectionLike`].
///
/// A command that fails because the connection is gone fails with an I/O
/// error that says so and why, once: `connection to 127.0.0.1:6379 lost:
/// the server closed the connection`; one that gets no reply in time, with
/// `no reply from 127.0.0.1:6379 within 500ms`. A late reply is read and
/// dropped, and one missed reply leaves the connection in use; but three
/// commands in a row without a reply (no reply to any
/// in between, from any borrower) mean the server or the path to it is
/// gone: the connection is closed to new borrowers
/// ([`is_closed`](RedisConn::is_closed)), and the pool replaces it, so a
/// connection stuck behind a partition or a frozen server is not lent on
/// while TCP retransmits.
#[derive(Clone)]
pub struct RedisConn {
    pub(super) inner: MultiplexedConnection,
    /// The connection: its health, its driver task (ended when the last
    /// handle drops) and what does not change while it lives. (One `Arc`:
    /// every borrower of a shared connection clones and drops a handle,
    /// from any thread.)
    driver: Arc<Driver>,
    /// Lent to one borrower at a time (its key's `exclusive`).
    pub(super) exclusive: bool,
    /// How long this handle waits for a reply now (its own setting, or a
    /// call's time left), as its errors say: in milliseconds, rounded up
    /// (see [`millis_up`]; a handle stays small, every borrower holds one).
    waits: u32,
    /// A command that may change the connection's state was sent through
    /// this handle since it was made or reset (see [`changes_state`]), one
    /// failed on the connection (no reply in time: it may still run), or
    /// the redis-rs connection was handed out: the reset on return is
    /// needed.
    pub(super) changed: bool,
    /// The last command through this handle was refused, unsent: its
    /// server had changed (a caller may send it on another connection).
    pub(super) refused: bool,
}

impl fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConn")
            .field("server", &self.driver.health.server)
            .field("db", &self.inner.get_db())
            .field("exclusive", &self.exclusive)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl RedisConn {
    pub(super) fn new(
        inner: MultiplexedConnection,
        health: Arc<Vitals>,
        driver: JoinHandle<()>,
        exclusive: bool,
        response_timeout: Duration,
        reset: Option<Arc<Pipeline>>,
        moved: Option<Arc<AtomicBool>>,
    ) -> Self {
        Self {
            inner,
            driver: Arc::new(Driver {
                health,
                task: driver,
                response_timeout,
                reset,
                moved,
            }),
            exclusive,
            waits: millis_up(response_timeout),
            changed: false,
            refused: false,
        }
    }

    /// Whether the server is no longer what the connection was dialed
    /// for: the Sentinels announced another master, or the server
    /// answered a command with `READONLY` (a master turned replica),
    /// `LOADING` or `MASTERDOWN`. Such a connection sends nothing more:
    /// its commands fail at once, and the pool closes it and every
    /// connection of its key made before it. A reply that comes after the
    /// Sentinels' announcement is turned into an error: the old master may
    /// lose what it acknowledged then.
    pub fn server_changed(&self) -> bool {
        self.driver.health.server_changed.load(Ordering::Relaxed) || self.moved()
    }

    /// How long this handle waits for a reply, to the millisecond.
    fn waits(&self) -> Duration {
        Duration::from_millis(self.waits.into())
    }

    /// Whether the Sentinels announced another master than the one this
    /// connection was dialed to.
    fn moved(&self) -> bool {
        let moved = self.driver.moved.as_ref();
        moved.is_some_and(|m| m.load(Ordering::SeqCst))
    }

    /// The manager's response timeout, restored when a connection lent
    /// exclusively is reset.
    pub(super) fn response_timeout(&self) -> Duration {
        self.driver.response_timeout
    }

    /// What a connection lent exclusively gets on return (`RESET` and the
    /// setup again; it holds the password, so it is never shown).
    pub(super) fn reset(&self) -> Option<Arc<Pipeline>> {
        self.driver.reset.clone()
    }

    /// `result`, unless the Sentinels announced another master while the
    /// command was on its way: the old master may lose what it
    /// acknowledged then, so its reply is no acknowledgement.
    fn unless_moved<T>(&self, result: Result<T, RedisError>) -> Result<T, RedisError> {
        match result {
            Ok(_) if self.moved() => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!(
                    "{} stopped being the master while the command was on its way: \
                         its effect may be lost",
                    self.driver.health.server
                ),
            )
            .into()),
            result => result,
        }
    }

    /// The refusal of a command on a connection whose server changed.
    fn refusal(&self) -> RedisError {
        io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!(
                "{} is no longer the server this connection was made for (the master moved)",
                self.driver.health.server
            ),
        )
        .into()
    }

    /// Whether the connection is gone: its socket reached end of stream or
    /// failed, or its driver task ended. Cheap (no I/O).
    pub fn is_closed(&self) -> bool {
        self.driver.health.is_dead()
    }

    /// Why the connection is gone, if it is.
    pub fn closed_because(&self) -> Option<&str> {
        self.driver
            .health
            .cause
            .get()
            .map(String::as_str)
            .or_else(|| self.driver.health.is_dead().then_some(DRIVER_ENDED))
    }

    /// Whether this connection is lent to one borrower at a time (its
    /// key's [`exclusive`](super::RedisKey::exclusive)).
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    /// How long this handle waits for a reply (the manager's
    /// [`response_timeout`](super::RedisManager::response_timeout) unless
    /// set here). For a blocking command (`BLPOP key 5`), raise it above
    /// the command's own timeout; a connection lent exclusively gets the
    /// manager's back when it is reset.
    pub fn set_response_timeout(&mut self, timeout: Duration) {
        self.changed = true;
        self.waits_for(timeout);
    }

    /// Waits `timeout` for each reply from now on (not a change a reset
    /// must undo by itself).
    pub(super) fn waits_for(&mut self, timeout: Duration) {
        self.waits = millis_up(timeout);
        self.inner.set_response_timeout(timeout);
    }

    /// The redis-rs connection, for what it offers beyond commands (what is
    /// sent through it is not seen: a connection lent exclusively is reset
    /// on return after this was called).
    pub fn multiplexed(&mut self) -> &mut MultiplexedConnection {
        self.changed = true;
        &mut self.inner
    }

    /// `host:port` of the server.
    pub fn server(&self) -> &str {
        &self.driver.health.server
    }

    /// Takes in how a command ended: a reply clears the count of missed
    /// ones, a timeout adds to it.
    fn tally<T>(&self, result: &Result<T, RedisError>) {
        match result {
            Ok(_) => self.driver.health.answered(),
            Err(e) if e.is_timeout() => self.driver.health.missed(self.waits()),
            Err(e) if says_server_changed(e) => {
                self.driver
                    .health
                    .server_changed
                    .store(true, Ordering::Relaxed);
            }
            Err(_) => {}
        }
    }

    /// A driver error, said plainly: a connection that is gone names why, a
    /// reply that did not come names the wait.
    fn explain(&self, error: RedisError) -> RedisError {
        if error.is_connection_dropped() || (error.is_io_error() && self.driver.health.is_dead()) {
            let why = self.closed_because().unwrap_or(DRIVER_ENDED);
            // BrokenPipe: redis-rs's own kind for a connection that is gone
            // (`is_connection_dropped` stays true).
            return io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("connection to {} lost: {why}", self.driver.health.server),
            )
            .into();
        }
        if error.is_timeout() {
            return io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no reply from {} within {:?}",
                    self.driver.health.server,
                    self.waits()
                ),
            )
            .into();
        }
        error
    }
}

/// Whether `error` is the server saying it is no longer a master that
/// serves this connection: `READONLY`, `LOADING`, `MASTERDOWN`.
fn says_server_changed(error: &RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    matches!(
        error.kind(),
        ErrorKind::Server(
            ServerErrorKind::ReadOnly | ServerErrorKind::BusyLoading | ServerErrorKind::MasterDown
        )
    )
}

/// `wait` in milliseconds as a reader set it: a call's time left (499.98 ms
/// of a 500 ms deadline) rounded up; saturating (49 days: a wait that
/// long never ends in an error that shows it).
fn millis_up(wait: Duration) -> u32 {
    u32::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u32::MAX)
}

/// Why a connection is gone when its socket said nothing (a protocol error
/// ended the driver).
const DRIVER_ENDED: &str = "its driver ended";

/// Commands in a row that got no reply in time, with no reply to any
/// command in between, after which a connection is taken for dead: three,
/// as the pool counts missed keepalive pings and as WebSocket heartbeats
/// commonly allow. One missed reply is a slow command; three in a row,
/// with nothing answered, is a server or a path that is gone.
const MISSED_REPLIES: u32 = 3;

/// Whether `cmd` may leave the connection in a state the next borrower
/// must not inherit: a database, a name, client-side caching or reply
/// mode, a `WATCH` or an open `MULTI`, subscriptions, a login or protocol
/// change, replica reads, `MONITOR`. (Everything else acts on the data,
/// not on the connection.)
pub(super) fn changes_state(cmd: &Cmd) -> bool {
    const CHANGES: [&[u8]; 15] = [
        b"SELECT",
        b"CLIENT",
        b"WATCH",
        b"MULTI",
        b"SUBSCRIBE",
        b"PSUBSCRIBE",
        b"SSUBSCRIBE",
        b"AUTH",
        b"HELLO",
        b"READONLY",
        b"READWRITE",
        b"MONITOR",
        b"ASKING",
        b"SYNC",
        b"PSYNC",
    ];
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => CHANGES.iter().any(|c| c.eq_ignore_ascii_case(name)),
        _ => true,
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        // Only a connection lent exclusively is reset on its return.
        self.changed |= self.exclusive && changes_state(cmd);
        in_place(move || async move {
            self.refused = self.server_changed();
            if self.refused {
                return Err(self.refusal());
            }
            let result = self.inner.send_packed_command(cmd).await;
            self.tally(&result);
            self.changed |= result.is_err();
            self.unless_moved(result.map_err(|e| self.explain(e)))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.changed |= self.exclusive && pipeline.cmd_iter().any(changes_state);
        in_place(move || async move {
            self.refused = self.server_changed();
            if self.refused {
                return Err(self.refusal());
            }
            let result = self
                .inner
                .send_packed_commands(pipeline, offset, count)
                .await;
            self.tally(&result);
            self.changed |= result.is_err();
            self.unless_moved(result.map_err(|e| self.explain(e)))
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

/// What is known of one connection's health, shared by its handles, its
/// socket wrapper and its driver task.
#[derive(Debug)]
pub(super) struct Vitals {
    pub(super) server: String,
    /// Set when the driver task ends.
    ended: AtomicBool,
    /// Commands in a row without a reply in time.
    missed: AtomicU32,
    /// The first thing the socket said about its end.
    cause: OnceLock<String>,
    /// The server answered `READONLY`, `LOADING` or `MASTERDOWN`.
    server_changed: AtomicBool,
}

impl Vitals {
    pub(super) fn new(server: String) -> Arc<Self> {
        Arc::new(Self {
            server,
            ended: AtomicBool::new(false),
            missed: AtomicU32::new(0),
            cause: OnceLock::new(),
            server_changed: AtomicBool::new(false),
        })
    }

    fn is_dead(&self) -> bool {
        self.ended.load(Ordering::Acquire) || self.cause.get().is_some()
    }

    /// A reply came: the count of missed ones starts again. (A load first:
    /// replies are the common case, and need not write the shared line.)
    fn answered(&self) {
        if self.missed.load(Ordering::Relaxed) != 0 {
            self.missed.store(0, Ordering::Relaxed);
        }
    }

    /// A command got no reply within `waited`; the [`MISSED_REPLIES`]th in a
    /// row makes the connection dead.
    fn missed(&self, waited: Duration) {
        if self.missed.fetch_add(1, Ordering::Relaxed) + 1 >= MISSED_REPLIES {
            self.record(|| {
                format!("no reply to {MISSED_REPLIES} commands in a row, each given {waited:?}")
            });
        }
    }

    pub(super) fn driver_ended(&self) {
        self.ended.store(true, Ordering::Release);
    }

    fn record(&self, cause: impl FnOnce() -> String) {
        if self.cause.get().is_none() {
            let _ = self.cause.set(cause());
        }
    }
}

/// A connection's health, its driver task and its settings, shared by its
/// handles. Aborts the task when dropped: a driver left behind (a blocking
/// command still waiting on the server) would keep the socket open.
struct Driver {
    health: Arc<Vitals>,
    task: JoinHandle<()>,
    response_timeout: Duration,
    reset: Option<Arc<Pipeline>>,
    /// Set when the Sentinels announce that the master this connection
    /// was dialed to is no longer the master (`None`: not dialed through
    /// Sentinels).
    moved: Option<Arc<AtomicBool>>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The connection's socket tells [`Vitals`] about its end (through
/// [`Observed`](connpool_tcp::observed::Observed)): the end of stream (the server
/// closed it, or was killed) or the first I/O error. That is how a dead
/// connection is known without a round trip.
pub(crate) struct Watch(pub(crate) Arc<Vitals>);

impl Observer for Watch {
    fn see(&mut self, event: Event<'_>) {
        match event {
            Event::Read { eof: true, .. } => {
                self.0
                    .record(|| "the server closed the connection".to_owned());
            }
            Event::Failed(e) => self.0.record(|| e.to_string()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::millis_up;

    #[test]
    fn a_wait_is_shown_to_the_millisecond() {
        let shown = |d| format!("{:?}", Duration::from_millis(millis_up(d).into()));
        assert_eq!(shown(Duration::from_nanos(499_980_396)), "500ms");
        assert_eq!(shown(Duration::from_millis(500)), "500ms");
        assert_eq!(shown(Duration::from_secs(2)), "2s");
        assert_eq!(shown(Duration::ZERO), "0ns");
        assert_eq!(millis_up(Duration::MAX), u32::MAX);
    }
}
