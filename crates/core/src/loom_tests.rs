//! Model checking of the hand-off core with loom: every interleaving (up to
//! a preemption bound) of getters, returns, cancellations, dial completions
//! and close, exclusive and shared.
//!
//! Run: `RUSTFLAGS="--cfg connpool_loom" cargo test --release -p connpool-core --lib loom_tests`
//! (`LOOM_MAX_PREEMPTIONS` overrides the bound of 3).
//!
//! The model drives the pool's own [`State`] transitions under the shim's
//! mutex (loom's, in this build), with the waker protocol of the pool's
//! `Waiting` future: a getter locks, asks `poll_waiter` (which stores its
//! waker unless an outcome is there), and sleeps; whoever serves it stores
//! the outcome and takes the waker under the lock, and wakes it after
//! unlocking. What the pool would spawn (dials, closes) the model runs on
//! its own threads. After every interleaving the counts must add up and
//! nothing may be left lent, waiting, or unclosed.

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::clock::Tick;
use async_trait::async_trait;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::builder::Builder;
use crate::config::Config;
use crate::engine::KeyId;
use crate::engine::WaiterId;
use crate::engine::{Back, Lent};
use crate::engine::{Checkout, DialOrder, Outcome};
use crate::error::Error;
use crate::features::{Act, Action, Effects, Note};
use crate::features::{State, Transition};
use crate::manager::{Lending, Manager};
use crate::sync::Mutex;

/// The model's key type: every scenario uses one key, its default value.
trait Key: Eq + Hash + Clone + Debug + Default + Send + Sync + 'static {}
impl Key for u8 {}

/// Connections are numbers; dials are run by the model, never by `connect`.
struct Model<K> {
    /// Borrowers per connection (1: exclusive).
    share: usize,
    key: PhantomData<K>,
}

#[async_trait]
impl<K: Key> Manager for Model<K> {
    type Key = K;
    type Connection = u32;
    type Error = std::io::Error;

    async fn connect(&self, _: &K) -> Result<u32, std::io::Error> {
        unreachable!("the model completes dials itself")
    }

    fn lending(&self, _: &u32) -> Lending<u32> {
        Lending::shared(self.share)
    }
}

/// The core under test: the state behind the shim's mutex, plus what the
/// pool would have spawned.
struct Core<K: Key> {
    state: Mutex<State<Model<K>>>,
    config: Config,
    share: usize,
    dials: Mutex<Vec<DialOrder<K>>>,
    /// `Manager::close` calls "running" (each ends at once).
    closes: AtomicUsize,
    next_conn: AtomicUsize,
}

impl<K: Key> Core<K> {
    fn new(max_open: usize, share: usize) -> Arc<Self> {
        let model: Model<K> = Model {
            share,
            key: PhantomData,
        };
        let config = Builder::new(model)
            .max_open(max_open)
            .idle_timeout(None)
            .max_lifetime(None)
            .keepalive_interval(None)
            .health_check(None)
            .no_backoff()
            .max_connecting(usize::MAX)
            .checkout_timeout(None)
            .validate()
            .expect("valid config");
        Arc::new(Core {
            state: Mutex::new(State::new(&config)),
            config,
            share,
            dials: Mutex::new(Vec::new()),
            closes: AtomicUsize::new(0),
            next_conn: AtomicUsize::new(1),
        })
    }

    /// What `Shared::apply` does, with the spawns replaced by records.
    fn apply(&self, fx: Effects<Model<K>>) {
        if let Some(waker) = fx.wake {
            waker.wake();
        }
        for action in fx.actions {
            match action {
                Action::Wake(waker) => waker.wake(),
                Action::Dial(order) => self.dials.lock().push(order),
                Action::Close(_, _) => {
                    self.closes.fetch_add(1, Ordering::SeqCst);
                    // The close task ends at once.
                    self.state.lock().close_finished();
                }
                Action::Ext(Act::Ping(..)) => unreachable!("no keepalive in the model"),
                Action::Ext(Act::Leak(..)) => unreachable!("no leak detection in the model"),
                Action::Ext(Act::Recycle(..)) => unreachable!("no recycling in the model"),
                // Log lines.
                Action::Ext(Act::Backoff(..) | Act::Recovered(..)) => {}
            }
        }
    }

    /// A transition at `now`, as `PoolInner::transition` runs one.
    fn transition<T>(&self, now: Tick, step: impl FnOnce(Transition<'_, Model<K>>) -> T) -> T {
        let mut fx = Effects::NONE;
        let out = step(self.state.lock().begin(now, &self.config, &mut fx));
        self.apply(fx);
        out
    }

    /// A checkout, as `Pool::get_for` makes it: lent at once, or a waiter
    /// slot.
    fn checkout(&self) -> Result<Checkout<u32>, Error<std::io::Error>> {
        let round = crate::engine::Round::First;
        self.transition(Tick::now(), |t| t.checkout(&K::default(), round, None))
    }

    /// Completes the dials ordered so far, successfully.
    fn run_dials(&self) {
        let orders: Vec<_> = std::mem::take(&mut *self.dials.lock());
        for order in orders {
            let conn = self.next_conn.fetch_add(1, Ordering::SeqCst) as u32;
            let lending = Lending::shared(self.share);
            self.transition(Tick::now(), |t| {
                t.dial_done(order.slot, order.waiter, order.epoch, Ok((conn, lending)))
            });
        }
    }

    /// A borrower is done (as `PoolInner::give_back` returns it).
    fn give_back(&self, (id, lent): (KeyId, Lent<u32>)) {
        let now = Tick::now();
        match lent.back {
            Back::Own(slot, cid, ()) => {
                self.transition(now, |t| {
                    t.give_back(Back::Own(slot, cid, lent.conn), None, Note::default())
                });
            }
            Back::Handle(_, slot) => {
                let mut fx = Effects::NONE;
                let mut state = self.state.lock();
                if !state.give_back_handle_quietly(slot) {
                    let t = state.begin(now, &self.config, &mut fx);
                    t.give_back(Back::Handle(id, slot), None, Note::default());
                }
                drop(state);
                self.apply(fx);
            }
        }
    }

    /// Borrows the one connection of a `max_open = 1` core up to its limit.
    fn fill(&self) -> Vec<(KeyId, Lent<u32>)> {
        (0..self.share).map(|_| self.get_now()).collect()
    }

    /// Gets a connection, dialing for it if needed (on this thread).
    fn get_now(&self) -> (KeyId, Lent<u32>) {
        match self.checkout().expect("checkout") {
            Checkout::Lent(lent, _) => (lent.back.key(), lent),
            Checkout::Wait(w, _) => {
                self.run_dials();
                loom::future::block_on(self.wait(w)).expect("served")
            }
        }
    }

    /// Gets a connection, waiting for one (dials are left to others).
    fn get_waiting(&self) -> (KeyId, Lent<u32>) {
        match self.checkout().expect("checkout") {
            Checkout::Lent(lent, _) => (lent.back.key(), lent),
            Checkout::Wait(w, _) => loom::future::block_on(self.wait(w)).expect("served"),
        }
    }

    /// The `Waiting` future's protocol.
    fn wait(&self, w: WaiterId) -> WaitFor<'_, K> {
        WaitFor { core: self, w }
    }

    /// The getter `w` polls once (as the `Waiting` future does: the outcome,
    /// or its waker registered) and then gives up, returning what it got.
    fn poll_once_then_give_up(&self, w: WaiterId) {
        let polled = self
            .state
            .lock()
            .poll_waiter(w, std::task::Waker::noop(), Tick::now());
        match polled {
            Some(outcome) => self.give_back(outcome.expect("served")),
            None => self.cancel(w),
        }
    }

    /// The getter `w` gives up (the `Waiting` future dropped unserved).
    fn cancel(&self, w: WaiterId) {
        self.transition(Tick::now(), |t| t.cancel(w));
    }

    fn close(&self) {
        self.transition(Tick::now(), |t| t.close());
    }

    /// Nothing lent, waiting or dialing; every count adds up.
    #[track_caller]
    fn assert_quiet(&self, open: usize, idle: usize) {
        let s = self.state.lock().snapshot();
        assert_eq!(
            s.open,
            s.idle + s.lent + s.dialing + s.pinging + s.recycling,
            "{s:?}"
        );
        assert_eq!(
            (s.open, s.idle, s.lent, s.borrowers, s.waiting, s.dialing),
            (open, idle, 0, 0, 0, 0),
            "{s:?}"
        );
    }
}

struct WaitFor<'a, K: Key> {
    core: &'a Core<K>,
    w: WaiterId,
}

impl<K: Key> Future for WaitFor<'_, K> {
    type Output = Outcome<Model<K>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<Model<K>>> {
        match self
            .core
            .state
            .lock()
            .poll_waiter(self.w, cx.waker(), Tick::now())
        {
            Some(outcome) => Poll::Ready(outcome),
            None => Poll::Pending,
        }
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

/// A getter waiting at the cap is served by a return, whatever the order
/// of its wait and the return (no lost wake-up).
#[test]
fn a_return_serves_a_waiting_getter() {
    fn scenario<K: Key>(share: usize) {
        model(move || {
            let core = Core::<K>::new(1, share);
            let mut held = core.fill();
            let getter = {
                let core = core.clone();
                thread::spawn(move || {
                    let got = core.get_waiting();
                    core.give_back(got);
                })
            };
            let returner = {
                let core = core.clone();
                let one = held.pop().unwrap();
                thread::spawn(move || core.give_back(one))
            };
            getter.join().unwrap();
            returner.join().unwrap();
            for h in held {
                core.give_back(h);
            }
            core.assert_quiet(1, 1);
        });
    }
    for share in [1, 2] {
        scenario::<u8>(share);
    }
}

/// A getter that gives up while a return reaches it: the connection ends
/// idle either way (passed on if it had arrived), never lost or lent twice.
#[test]
fn a_cancel_races_a_return() {
    fn scenario<K: Key>(share: usize) {
        model(move || {
            let core = Core::<K>::new(1, share);
            let mut held = core.fill();
            let getter = {
                let core = core.clone();
                thread::spawn(move || match core.checkout().expect("checkout") {
                    Checkout::Wait(w, _) => core.poll_once_then_give_up(w),
                    // The return came first: lent at once.
                    Checkout::Lent(lent, _) => core.give_back((lent.back.key(), lent)),
                })
            };
            let one = held.pop().unwrap();
            let returner = {
                let core = core.clone();
                thread::spawn(move || core.give_back(one))
            };
            getter.join().unwrap();
            returner.join().unwrap();
            for h in held {
                core.give_back(h);
            }
            core.assert_quiet(1, 1);
            assert_eq!(core.closes.load(Ordering::SeqCst), 0);
        });
    }
    for share in [1, 2] {
        scenario::<u8>(share);
    }
}

/// A dial completes while the getter it was started for gives up: the
/// connection goes idle, nothing is counted twice.
#[test]
fn a_dial_completes_while_its_getter_cancels() {
    fn scenario<K: Key>(share: usize) {
        model(move || {
            let core = Core::<K>::new(1, share);
            let Checkout::Wait(w, _) = core.checkout().expect("checkout") else {
                unreachable!("nothing idle")
            };
            let dialer = {
                let core = core.clone();
                thread::spawn(move || core.run_dials())
            };
            core.poll_once_then_give_up(w);
            dialer.join().unwrap();
            core.assert_quiet(1, 1);
        });
    }
    for share in [1, 2] {
        scenario::<u8>(share);
    }
}

/// Close races a waiting getter and a return: the getter gets the
/// connection or `Closed`, and every connection is closed exactly once.
#[test]
fn close_races_a_getter_and_a_return() {
    fn scenario<K: Key>(share: usize) {
        model(move || {
            let core = Core::<K>::new(1, share);
            let mut held = core.fill();
            let getter = {
                let core = core.clone();
                thread::spawn(move || {
                    let got = match core.checkout() {
                        Err(Error::Closed) => return,
                        Err(e) => panic!("{e:?}"),
                        Ok(Checkout::Lent(lent, _)) => Ok((lent.back.key(), lent)),
                        Ok(Checkout::Wait(w, _)) => loom::future::block_on(core.wait(w)),
                    };
                    match got {
                        Ok(got) => core.give_back(got),
                        Err(Error::Closed) => {}
                        Err(e) => panic!("{e:?}"),
                    }
                })
            };
            let closer = {
                let core = core.clone();
                thread::spawn(move || core.close())
            };
            let one = held.pop().unwrap();
            core.give_back(one);
            getter.join().unwrap();
            closer.join().unwrap();
            for h in held {
                core.give_back(h);
            }
            core.assert_quiet(0, 0);
            assert_eq!(core.closes.load(Ordering::SeqCst), 1, "closed once");
            assert!(core.state.lock().is_drained());
        });
    }
    for share in [1, 2] {
        scenario::<u8>(share);
    }
}

/// Two borrowers of a shared connection return while a third waits: it is
/// served by the first place that frees, and the connection rests idle
/// once all are done.
#[test]
fn shared_returns_race_a_waiter() {
    shared_returns_race_a_waiter_with::<u8>();
}

fn shared_returns_race_a_waiter_with<K: Key>() {
    model(|| {
        let core = Core::<K>::new(1, 2);
        let a = core.get_now();
        let b = core.get_now();
        let getter = {
            let core = core.clone();
            thread::spawn(move || {
                let got = core.get_waiting();
                assert!(matches!(got.1.back, Back::Handle(..)));
                core.give_back(got);
            })
        };
        let ra = {
            let core = core.clone();
            thread::spawn(move || core.give_back(a))
        };
        core.give_back(b);
        getter.join().unwrap();
        ra.join().unwrap();
        core.assert_quiet(1, 1);
    });
}

/// Two getters of a pool of two connections get and return in a loop while
/// the pool closes: each getter gets a connection or `Closed`, and each
/// connection ends closed exactly once.
#[test]
fn gets_and_returns_race_close() {
    model(|| {
        let core = Core::<u8>::new(2, 1);
        let held = [core.get_now(), core.get_now()];
        for got in held {
            core.give_back(got);
        }
        let cycle = || {
            let core = core.clone();
            thread::spawn(move || {
                for _ in 0..2 {
                    match core.checkout() {
                        Err(Error::Closed) => return,
                        Err(e) => panic!("{e:?}"),
                        Ok(Checkout::Lent(lent, _)) => core.give_back((lent.back.key(), lent)),
                        Ok(Checkout::Wait(..)) => unreachable!("two connections, two getters"),
                    }
                }
            })
        };
        let (a, b) = (cycle(), cycle());
        core.close();
        a.join().unwrap();
        b.join().unwrap();
        core.assert_quiet(0, 0);
        assert_eq!(core.closes.load(Ordering::SeqCst), 2, "each closed once");
        assert!(core.state.lock().is_drained());
    });
}
