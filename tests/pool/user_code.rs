//! User code is untrusted: a manager that panics in any of its methods, or
//! a hook that panics, at any place the pool calls it, costs a broken
//! connection or a failed dial or ping — never an abort, a leaked slot,
//! wrong counts or a `close()` that does not drain.
//!
//! One table: each row arms one panic (a method, after letting a number of
//! its calls pass) and drives the pool to the place that calls it; every row
//! then checks the same things.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use connpool::{ConnectError, Error, Health, Lending, Manager, Pool, Pooled, async_trait};
use futures_util::future::BoxFuture;
use parking_lot::Mutex;

use crate::support::{Counts, ZERO, counts};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// A manager method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Connect,
    Ping,
    Health,
    Lending,
    Close,
    /// `Manager::recycle` (the manager then recycles).
    Recycle,
    /// The hooks (each set only in the rows that arm it).
    AfterConnect,
    BeforeLend,
    AfterReturn,
}

#[derive(Debug)]
struct Failed;

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failed")
    }
}

impl std::error::Error for Failed {}

/// A manager that panics in `Call` once, after letting `skip` calls of it
/// pass (or, `always`, on every call).
#[derive(Default)]
struct Faulty {
    armed: Mutex<Option<(Call, usize)>>,
    always: Mutex<Option<Call>>,
    /// Lend connections shared (up to 4 borrowers) instead of exclusively.
    shared: bool,
    /// Whether `Manager::health` says a returned connection needs its recycle.
    recycles: AtomicBool,
    next_id: AtomicU64,
    panics: AtomicUsize,
    closes: AtomicUsize,
}

impl Faulty {
    fn new(shared: bool) -> Arc<Self> {
        Arc::new(Self { shared, ..Self::default() })
    }

    fn arm(&self, call: Call, skip: usize) {
        *self.armed.lock() = Some((call, skip));
    }

    fn always(&self, call: Call) {
        *self.always.lock() = Some(call);
    }

    fn disarm(&self) {
        *self.armed.lock() = None;
        *self.always.lock() = None;
    }

    fn maybe_panic(&self, call: Call) {
        if *self.always.lock() == Some(call) {
            self.panics.fetch_add(1, Ordering::SeqCst);
            panic!("scripted panic in {call:?}, as always");
        }
        let mut armed = self.armed.lock();
        match &mut *armed {
            Some((c, 0)) if *c == call => {
                *armed = None;
                drop(armed);
                self.panics.fetch_add(1, Ordering::SeqCst);
                panic!("scripted panic in {call:?}");
            }
            Some((c, n)) if *c == call => *n -= 1,
            _ => {}
        }
    }
}

#[derive(Debug, Clone)]
struct Conn(#[allow(dead_code)] u64);

/// The pool's manager: a handle on the shared [`Faulty`].
struct M(Arc<Faulty>);

#[async_trait]
impl Manager for M {
    type Key = ();
    type Connection = Conn;
    type Error = Failed;

    async fn connect(&self, _: &()) -> Result<Conn, Failed> {
        tokio::task::yield_now().await;
        self.0.maybe_panic(Call::Connect);
        Ok(Conn(self.0.next_id.fetch_add(1, Ordering::SeqCst)))
    }

    async fn ping(&self, _: &mut Conn) -> Result<(), Failed> {
        tokio::task::yield_now().await;
        self.0.maybe_panic(Call::Ping);
        Ok(())
    }

    fn health(&self, _: &mut Conn) -> Health {
        self.0.maybe_panic(Call::Health);
        if self.0.recycles.load(Ordering::SeqCst) {
            Health::NeedsRecycle
        } else {
            Health::Ready
        }
    }

    async fn recycle(&self, _: &mut Conn) -> Result<(), Failed> {
        tokio::task::yield_now().await;
        self.0.maybe_panic(Call::Recycle);
        Ok(())
    }

    fn lending(&self, _: &Conn) -> Lending<Conn> {
        self.0.maybe_panic(Call::Lending);
        if self.0.shared {
            Lending::shared(4)
        } else {
            Lending::exclusive()
        }
    }

    async fn close(&self, _: Conn) {
        tokio::task::yield_now().await;
        self.0.closes.fetch_add(1, Ordering::SeqCst);
        self.0.maybe_panic(Call::Close);
    }
}

/// Where the pool calls the manager.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// A get that dials.
    FreshDial,
    /// `initial` connections at build.
    PreWarm,
    /// A get that finds an idle connection.
    Checkout,
    /// A guard dropped.
    Return,
    /// A guard dropped with the connection marked broken (it is closed).
    ReturnClosed,
    /// A get whose idle connection is pinged first.
    HealthCheck,
    /// An idle connection pinged in the background.
    Keepalive,
    /// `Pool::close` with idle connections.
    Close,
}

struct Case {
    call: Call,
    skip: usize,
    place: Place,
    shared: bool,
}

const fn case(call: Call, skip: usize, place: Place, shared: bool) -> Case {
    Case { call, skip, place, shared }
}

/// Every method at every place the pool calls it (`skip`: calls of the
/// method that come first on the way there).
const CASES: &[Case] = &[
    case(Call::Connect, 0, Place::FreshDial, false),
    case(Call::Connect, 0, Place::FreshDial, true),
    case(Call::Health, 0, Place::FreshDial, false),
    case(Call::Health, 0, Place::FreshDial, true),
    case(Call::Lending, 0, Place::FreshDial, false),
    case(Call::Lending, 0, Place::FreshDial, true),
    case(Call::Connect, 1, Place::PreWarm, false),
    case(Call::Health, 1, Place::PreWarm, false),
    case(Call::Lending, 1, Place::PreWarm, true),
    case(Call::Health, 0, Place::Checkout, false),
    case(Call::Health, 0, Place::Checkout, true),
    case(Call::Health, 0, Place::Return, false),
    case(Call::Health, 0, Place::Return, true),
    case(Call::Lending, 0, Place::Return, true),
    case(Call::Close, 0, Place::ReturnClosed, false),
    case(Call::Close, 0, Place::ReturnClosed, true),
    case(Call::Ping, 0, Place::HealthCheck, false),
    case(Call::Ping, 0, Place::HealthCheck, true),
    case(Call::Health, 1, Place::HealthCheck, false),
    case(Call::Health, 1, Place::HealthCheck, true),
    case(Call::Ping, 0, Place::Keepalive, false),
    case(Call::Ping, 0, Place::Keepalive, true),
    case(Call::Health, 0, Place::Keepalive, false),
    case(Call::Health, 0, Place::Keepalive, true),
    case(Call::Close, 0, Place::Close, false),
    case(Call::Close, 0, Place::Close, true),
    case(Call::AfterConnect, 0, Place::FreshDial, false),
    case(Call::AfterConnect, 0, Place::FreshDial, true),
    case(Call::AfterConnect, 1, Place::PreWarm, false),
    case(Call::BeforeLend, 0, Place::Checkout, false),
    case(Call::BeforeLend, 0, Place::Checkout, true),
    // Shared connections are not recycled: exclusive rows only.
    case(Call::AfterReturn, 0, Place::Return, false),
    case(Call::Recycle, 0, Place::Return, false),
];

/// A hook that panics when `call` is armed.
fn hook(
    faulty: &Arc<Faulty>,
    call: Call,
) -> impl for<'a> Fn(&'a mut Conn, &'a ()) -> BoxFuture<'a, Result<(), Failed>> + Send + Sync + 'static
{
    let faulty = Arc::clone(faulty);
    move |_, _| {
        let faulty = Arc::clone(&faulty);
        Box::pin(async move {
            tokio::task::yield_now().await;
            faulty.maybe_panic(call);
            Ok(())
        })
    }
}

/// The pool of a row: `call`'s hook set (or the manager recycling), and
/// what `place` needs.
fn builder(faulty: &Arc<Faulty>, call: Call, place: Place) -> connpool::Builder<M> {
    faulty
        .recycles
        .store(call == Call::Recycle, Ordering::SeqCst);
    let b = Pool::builder(M(Arc::clone(faulty)))
        .max_open(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .keepalive_interval(None)
        .health_check(None)
        .no_backoff()
        .checkout_timeout(secs(5))
        .jitter(0.0);
    let b = match call {
        Call::AfterConnect => b.after_connect(hook(faulty, call)),
        Call::BeforeLend => b.before_lend(hook(faulty, call)),
        Call::AfterReturn => b.after_return(hook(faulty, call)),
        _ => b,
    };
    match place {
        Place::HealthCheck => b.health_check(Duration::ZERO),
        Place::Keepalive => b.keepalive_interval(secs(10)),
        Place::PreWarm => b.max_open(2).initial(2),
        _ => b,
    }
}

/// Every open connection is idle: nothing is lent, dialing, pinging or
/// waiting.
#[track_caller]
fn assert_at_rest(pool: &Pool<M>, what: &str) {
    let s = counts(pool);
    assert_eq!(s, Counts { open: s.idle, idle: s.idle, ..ZERO }, "{what}");
}

/// Drives the pool to `place` with the panic armed; returns the pool if
/// it was built.
async fn drive(faulty: &Arc<Faulty>, c: &Case) -> Option<Pool<M>> {
    let what = format!("{:?} at {:?} (shared: {})", c.call, c.place, c.shared);
    if let Place::PreWarm = c.place {
        faulty.arm(c.call, c.skip);
        match builder(faulty, c.call, c.place).build().await {
            Err(Error::Connect(ConnectError::Panicked(m))) => {
                assert!(m.contains("scripted panic"), "{what}: {m}");
            }
            other => panic!("{what}: expected a panicked pre-warm dial, got {other:?}"),
        }
        return None;
    }
    let pool = builder(faulty, c.call, c.place)
        .build()
        .await
        .expect("built");
    if !matches!(c.place, Place::FreshDial) {
        // One idle connection to work with.
        drop(pool.get().await.expect("first get"));
        settle().await;
    }
    faulty.arm(c.call, c.skip);
    match c.place {
        Place::FreshDial => match pool.get().await {
            Err(Error::Connect(ConnectError::Panicked(m))) => {
                assert!(m.contains("scripted panic"), "{what}: {m}")
            }
            other => panic!("{what}: expected a panicked dial, got {other:?}"),
        },
        Place::PreWarm => unreachable!(),
        Place::Checkout | Place::HealthCheck => {
            // The idle connection is closed (broken, or failed its check)
            // and the getter served by a new one.
            let g = pool.get().await.expect("served by a new connection");
            drop(g);
            let closed = pool.state().counters.closed_total();
            assert_eq!(closed, 1, "{what}: the faulty connection is closed");
            if let Place::HealthCheck = c.place {
                let s = pool.state();
                assert!(s.counters.health_checks >= 1, "{what}: {s:?}");
                assert_eq!(s.counters.closed_health_check, 1, "{what}");
            }
        }
        Place::Return => {
            drop(pool.get().await.expect("get"));
            settle().await; // a recycle runs in a task
            assert_eq!(
                pool.state().counters.closed_broken,
                1,
                "{what}: closed as broken"
            );
        }
        Place::ReturnClosed => {
            let mut g = pool.get().await.expect("get");
            Pooled::mark_broken(&mut g);
            drop(g);
        }
        Place::Keepalive => {
            tokio::time::sleep(secs(11)).await;
            settle().await;
            assert_eq!(
                pool.state().counters.closed_keepalive,
                1,
                "{what}: closed by keepalive"
            );
        }
        Place::Close => {}
    }
    settle().await;
    Some(pool)
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_any_manager_method_at_any_place_is_contained() {
    for c in CASES {
        let what = format!("{:?} at {:?} (shared: {})", c.call, c.place, c.shared);
        let faulty = Faulty::new(c.shared);
        let pool = drive(&faulty, c).await;
        if !matches!(c.place, Place::Close) {
            assert_eq!(
                faulty.panics.load(Ordering::SeqCst),
                1,
                "{what}: it panicked"
            );
        }
        faulty.disarm();
        let Some(pool) = pool else { continue };
        assert_at_rest(&pool, &what);
        if !matches!(c.place, Place::Close) {
            // No slot leaked: with `max_open(1)` a get is still served.
            let g = tokio::time::timeout(secs(1), pool.get())
                .await
                .unwrap_or_else(|_| panic!("{what}: a slot leaked"))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            drop(g);
        }
        faulty.arm(c.call, c.skip);
        // `close()` drains, with the panic armed again where it can strike.
        tokio::time::timeout(secs(5), pool.close())
            .await
            .unwrap_or_else(|_| panic!("{what}: close() did not drain"));
        let s = pool.state();
        assert_eq!(Counts::from(&s), ZERO, "{what}");
        assert_eq!(s.closing, 0, "{what}: {s:?}");
        assert!(
            faulty.panics.load(Ordering::SeqCst) >= 1,
            "{what}: it panicked"
        );
        assert_eq!(
            faulty.closes.load(Ordering::SeqCst),
            faulty.next_id.load(Ordering::SeqCst) as usize,
            "{what}: every connection made got its Manager::close"
        );
    }
}

/// A `health` that always panics, met by a checkout of an idle
/// connection: it used to unwind through the new guard, whose `Drop` called
/// it again, a panic during a panic, which aborts the process. Now the idle
/// connection is closed as broken, and the dial made for the getter too.
#[tokio::test(start_paused = true)]
async fn a_health_that_always_panics_at_checkout_does_not_abort() {
    let faulty = Faulty::new(false);
    let pool = builder(&faulty, Call::Health, Place::Checkout)
        .build()
        .await
        .unwrap();
    drop(pool.get().await.unwrap());
    faulty.always(Call::Health);
    match pool.get().await {
        Err(Error::Connect(ConnectError::Panicked(_))) => {}
        other => panic!("expected the new dial's panic, got {other:?}"),
    }
    settle().await;
    faulty.disarm();
    assert_at_rest(&pool, "after the panics");
    assert_eq!(pool.state().counters.closed_broken, 2);
    drop(pool.get().await.expect("the pool still lends"));
    pool.close().await;
}

/// A `health` that always panics at every return: each connection is
/// closed as broken, its slot freed (`max_open(1)`: a leaked slot would
/// time the next get out), and `close()` drains.
#[tokio::test(start_paused = true)]
async fn a_health_that_always_panics_at_return_leaks_no_slot() {
    for shared in [false, true] {
        let faulty = Faulty::new(shared);
        let pool = builder(&faulty, Call::Health, Place::Return)
            .build()
            .await
            .unwrap();
        for _ in 0..3 {
            let g = pool.get().await.expect("a slot is free");
            faulty.always(Call::Health);
            drop(g);
            faulty.disarm();
            settle().await;
            assert_at_rest(&pool, "after a return");
        }
        assert_eq!(pool.state().counters.closed_broken, 3);
        tokio::time::timeout(secs(5), pool.close())
            .await
            .expect("close() drains");
    }
}
