//! A scripted mock manager for the pool's own logic: dials that succeed,
//! fail, hang, are slow or wait for the test to release them, per key; a
//! backend that can be switched down; connections whose pings can be made to
//! fail, hang or take time. It records the instant of every dial, ping and
//! close.

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use connpool::{Builder, Health, Lending, Manager, Pool, async_trait};
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// What a mock's keys must be.
pub trait Key: Eq + Hash + Clone + Debug + Send + Sync + 'static {}

impl<K: Eq + Hash + Clone + Debug + Send + Sync + 'static> Key for K {}

/// The error the mock's dials fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockError(pub String);

impl std::fmt::Display for MockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mock: {}", self.0)
    }
}

impl std::error::Error for MockError {}

/// What the next dial of a key does.
pub enum Step {
    /// Succeeds at once.
    Ok,
    /// Fails at once with this message.
    Fail(&'static str),
    /// Never finishes.
    Hang,
    /// Succeeds after this long.
    Delay(Duration),
    /// Waits for the test to open the gate (see [`Mock::gate`]).
    Gate(oneshot::Receiver<Result<(), &'static str>>),
    /// Panics.
    Panic,
}

/// Releases a dial scripted with [`Mock::gate`].
pub struct Gate(Option<oneshot::Sender<Result<(), &'static str>>>);

impl Gate {
    pub fn succeed(mut self) {
        let _ = self.0.take().unwrap().send(Ok(()));
    }
    pub fn fail(mut self, msg: &'static str) {
        let _ = self.0.take().unwrap().send(Err(msg));
    }
}

/// A connection made by the mock; its [`Switches`] through `Deref`. Clones
/// (the handles of a shared connection) share them.
#[derive(Debug, Clone)]
pub struct MockConn<K> {
    pub id: u64,
    pub key: K,
    switches: Switches,
}

impl<K> Deref for MockConn<K> {
    type Target = Switches;

    fn deref(&self) -> &Switches {
        &self.switches
    }
}

/// The switches of one connection, shared by its handles and kept by the
/// mock, so tests can reach connections that sit idle in the pool.
#[derive(Debug, Clone, Default)]
pub struct Switches {
    /// Seen by `health` (a peer that closed).
    pub broken: Arc<AtomicBool>,
    /// Fails every ping, but `health` can't tell (a dead server process).
    pub dead: Arc<AtomicBool>,
    /// Pings never answer (a half-open, black-holed peer).
    pub mute: Arc<AtomicBool>,
    /// A borrower holds the (shared) connection for work the others would
    /// wait behind (`Lending::busy_when`).
    pub busy: Arc<AtomicBool>,
    /// Seen by `server_changed` (its server is no longer what the key
    /// names); `server_changed` panics if it is 2.
    pub changed: Arc<AtomicU64>,
}

struct Inner<K> {
    scripts: Mutex<HashMap<K, VecDeque<Step>>>,
    next_id: AtomicU64,
    connects: AtomicUsize,
    /// The instant of every `connect`, as it starts.
    dials: Mutex<Vec<Instant>>,
    /// While set, dials not scripted fail with "backend down".
    down: AtomicBool,
    /// How long dials not scripted take (zero: they succeed at once).
    dial_time: Mutex<Duration>,
    /// `(connection id, instant)` of every `Manager::close`.
    closes: Mutex<Vec<(u64, Instant)>>,
    switches: Mutex<HashMap<u64, Switches>>,
    /// `(connection id, instant)` of every ping.
    pings: Mutex<Vec<(u64, Instant)>>,
    /// Ping steps: while non-empty, each ping takes the next (`true`: the
    /// ping panics).
    ping_panics: Mutex<VecDeque<bool>>,
    /// Borrowers per connection for dials from now on (0: exclusive).
    share: AtomicUsize,
    fill_first: std::sync::atomic::AtomicBool,
    /// How long every ping takes, in ms (0: it answers at once).
    ping_delay_ms: AtomicU64,
}

/// The mock manager. Clones share the script and the records.
pub struct Mock<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for Mock<K> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<K: Eq + Hash + Clone> Default for Mock<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Clone> Mock<K> {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                scripts: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                connects: AtomicUsize::new(0),
                dials: Mutex::new(Vec::new()),
                down: AtomicBool::new(false),
                dial_time: Mutex::new(Duration::ZERO),
                closes: Mutex::new(Vec::new()),
                switches: Mutex::new(HashMap::new()),
                pings: Mutex::new(Vec::new()),
                ping_panics: Mutex::new(VecDeque::new()),
                share: AtomicUsize::new(0),
                fill_first: std::sync::atomic::AtomicBool::new(false),
                ping_delay_ms: AtomicU64::new(0),
            }),
        }
    }

    /// A new mock and a pool of it (see [`Mock::core_pool`]).
    pub async fn pool(settings: impl FnOnce(Builder<Self>) -> Builder<Self>) -> (Self, Pool<Self>)
    where
        K: Key,
    {
        let mock = Self::new();
        let pool = mock.core_pool(settings).await;
        (mock, pool)
    }

    /// A pool of this mock: [`core_builder`] with `settings` applied, built.
    pub async fn core_pool(
        &self,
        settings: impl FnOnce(Builder<Self>) -> Builder<Self>,
    ) -> Pool<Self>
    where
        K: Key,
    {
        settings(core_builder(self.clone()))
            .build()
            .await
            .expect("the pool builds")
    }

    /// Scripts the next dial of `key` (dials not scripted succeed, see
    /// [`Mock::set_down`] and [`Mock::set_dial_time`]).
    pub fn push(&self, key: K, step: Step) {
        self.inner
            .scripts
            .lock()
            .entry(key)
            .or_default()
            .push_back(step);
    }

    /// Scripts the next dial of `key` to wait for the returned gate.
    pub fn gate(&self, key: K) -> Gate {
        let (tx, rx) = oneshot::channel();
        self.push(key, Step::Gate(rx));
        Gate(Some(tx))
    }

    /// While `down`, dials not scripted fail with "backend down".
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// Dials not scripted take `d` (while the backend is up).
    pub fn set_dial_time(&self, d: Duration) {
        *self.inner.dial_time.lock() = d;
    }

    /// Calls to `connect` so far.
    pub fn connects(&self) -> usize {
        self.inner.connects.load(Ordering::SeqCst)
    }

    /// The instant each call to `connect` started, in order.
    pub fn dials(&self) -> Vec<Instant> {
        self.inner.dials.lock().clone()
    }

    /// Ids passed to `Manager::close`, in order.
    pub fn closed(&self) -> Vec<u64> {
        self.inner.closes.lock().iter().map(|&(id, _)| id).collect()
    }

    /// `(id, instant)` of every `Manager::close`, in order (the close task
    /// runs at the instant the pool decided the close: no time passes
    /// between the two while tasks are runnable).
    pub fn closes(&self) -> Vec<(u64, Instant)> {
        self.inner.closes.lock().clone()
    }

    /// `(id, time since t0)` of every close so far.
    pub fn closes_since(&self, t0: Instant) -> Vec<(u64, Duration)> {
        since(self.closes(), t0)
    }

    /// The switches of connection `id` (made by this mock).
    pub fn conn(&self, id: u64) -> Switches {
        self.inner.switches.lock()[&id].clone()
    }

    /// Every ping so far: `(connection id, when)`.
    pub fn pings(&self) -> Vec<(u64, Instant)> {
        self.inner.pings.lock().clone()
    }

    /// `(id, time since t0)` of every ping so far.
    pub fn pings_since(&self, t0: Instant) -> Vec<(u64, Duration)> {
        since(self.pings(), t0)
    }

    /// Connections dialed from now on are lent shared, up to `limit`
    /// borrowers at once (the peer's "stream limit"); 0: exclusive.
    pub fn share(&self, limit: usize) {
        self.inner.share.store(limit, Ordering::SeqCst);
    }

    /// Shared connections dialed from now on fill first
    /// (`Lending::fill_first`).
    pub fn fill_first(&self) {
        self.inner.fill_first.store(true, Ordering::SeqCst);
    }

    /// Every ping takes `d` (then answers as usual).
    pub fn delay_pings(&self, d: Duration) {
        self.inner
            .ping_delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// The next ping panics.
    pub fn panic_next_ping(&self) {
        self.inner.ping_panics.lock().push_back(true);
    }
}

fn since(events: Vec<(u64, Instant)>, t0: Instant) -> Vec<(u64, Duration)> {
    events.into_iter().map(|(id, at)| (id, at - t0)).collect()
}

impl Switches {
    pub fn break_it(&self) {
        self.broken.store(true, Ordering::SeqCst);
    }
    /// Broken, because its server changed.
    pub fn change(&self) {
        self.changed.store(1, Ordering::SeqCst);
        self.break_it();
    }
    /// Done: its server closed it in the normal course
    /// (`Health::ClosedByServer`).
    pub fn close_by_server(&self) {
        self.changed.store(3, Ordering::SeqCst);
        self.break_it();
    }
    /// Broken, and `health` panics.
    pub fn change_and_panic(&self) {
        self.changed.store(2, Ordering::SeqCst);
        self.break_it();
    }
    pub fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
    }
    pub fn mute(&self) {
        self.mute.store(true, Ordering::SeqCst);
    }
    pub fn unmute(&self) {
        self.mute.store(false, Ordering::SeqCst);
    }
}

/// A builder with every lifecycle feature off (no timers, no health check,
/// no backoff, no `max_connecting`): the core's behaviour alone.
pub fn core_builder<K: Key>(mock: Mock<K>) -> Builder<Mock<K>> {
    Pool::builder(mock)
        .idle_timeout(None)
        .max_lifetime(None)
        .keepalive_interval(None)
        .health_check(None)
        .no_backoff()
        .max_connecting(usize::MAX)
}

#[async_trait]
impl<K: Key> Manager for Mock<K> {
    type Key = K;
    type Connection = MockConn<K>;
    type Error = MockError;

    async fn connect(&self, key: &K) -> Result<MockConn<K>, MockError> {
        self.inner.connects.fetch_add(1, Ordering::SeqCst);
        self.inner.dials.lock().push(Instant::now());
        let scripted = self
            .inner
            .scripts
            .lock()
            .get_mut(key)
            .and_then(|q| q.pop_front());
        let step = scripted.unwrap_or_else(|| {
            let dial_time = *self.inner.dial_time.lock();
            if self.inner.down.load(Ordering::SeqCst) {
                Step::Fail("backend down")
            } else if !dial_time.is_zero() {
                Step::Delay(dial_time)
            } else {
                Step::Ok
            }
        });
        match step {
            Step::Ok => {}
            Step::Fail(msg) => return Err(MockError(msg.to_string())),
            Step::Hang => std::future::pending::<()>().await,
            Step::Delay(d) => tokio::time::sleep(d).await,
            Step::Gate(rx) => match rx.await {
                Ok(Ok(())) => {}
                Ok(Err(msg)) => return Err(MockError(msg.to_string())),
                Err(_) => return Err(MockError("gate dropped".into())),
            },
            Step::Panic => panic!("scripted panic in connect"),
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::SeqCst);
        let switches = Switches::default();
        self.inner.switches.lock().insert(id, switches.clone());
        Ok(MockConn { id, key: key.clone(), switches })
    }

    async fn ping(&self, conn: &mut MockConn<K>) -> Result<(), MockError> {
        self.inner.pings.lock().push((conn.id, Instant::now()));
        let panic = self.inner.ping_panics.lock().pop_front().unwrap_or(false);
        if panic {
            panic!("scripted panic in ping");
        }
        if conn.mute.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let delay = self.inner.ping_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if conn.dead.load(Ordering::SeqCst) || conn.broken.load(Ordering::SeqCst) {
            return Err(MockError(format!("conn {} is dead", conn.id)));
        }
        Ok(())
    }

    fn health(&self, conn: &mut MockConn<K>) -> Health {
        if !conn.broken.load(Ordering::SeqCst) {
            return Health::Ready;
        }
        match conn.changed.load(Ordering::SeqCst) {
            0 => Health::Broken,
            1 => Health::ServerChanged,
            3 => Health::ClosedByServer,
            _ => panic!("scripted panic in health"),
        }
    }

    fn lending(&self, _conn: &MockConn<K>) -> Lending<MockConn<K>> {
        match self.inner.share.load(Ordering::SeqCst) {
            0 => Lending::exclusive(),
            n if self.inner.fill_first.load(Ordering::SeqCst) => Lending::shared(n).fill_first(),
            n => Lending::shared(n),
        }
        .busy_when(|conn| conn.busy.load(Ordering::SeqCst))
    }

    async fn close(&self, conn: MockConn<K>) {
        self.inner.closes.lock().push((conn.id, Instant::now()));
    }
}
