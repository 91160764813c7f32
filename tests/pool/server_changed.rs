//! A connection whose server changed (`Manager::health` says
//! `Health::ServerChanged`) clears its key: idle connections close at once,
//! lent ones at their return, a ping in flight when it ends; other keys
//! are untouched; the next get dials. Found on a return, at a checkout, by
//! the health check before lending, after a recycle or a keepalive ping. A report from a connection the clear
//! already retired clears nothing more; a panic in `health` counts
//! as broken, not changed. Under tokio's paused clock, with the mock manager.

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;

type M = Mock<u32>;

fn clears<Mg: connpool::Manager>(pool: &connpool::Pool<Mg>) -> u64 {
    pool.state().counters.key_clears
}

/// Connections 1 and 2 of key 1 lent, 3 idle; 4 of key 2 idle.
async fn three_and_one(
    pool: &connpool::Pool<M>,
) -> (connpool::Pooled<'_, M>, connpool::Pooled<'_, M>) {
    let a = ok(pool.get_for(&1).await);
    let b = ok(pool.get_for(&1).await);
    drop(ok(pool.get_for(&1).await));
    drop(ok(pool.get_for(&2).await));
    assert_eq!((a.id, b.id), (1, 2));
    assert_eq!(counts(pool), Counts { open: 4, idle: 2, lent: 2, ..ZERO });
    (a, b)
}

#[tokio::test(start_paused = true)]
async fn a_returned_connection_whose_server_changed_clears_its_key() {
    let (mock, pool) = M::pool(|b| b).await;
    let (a, b) = three_and_one(&pool).await;
    mock.conn(1).change();
    drop(a);
    settle().await;
    assert_eq!(clears(&pool), 1);
    let mut closed = mock.closed();
    closed.sort();
    assert_eq!(closed, vec![1, 3], "the reporter and the idle one");
    assert_eq!(
        key_counts(&pool, &2),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );
    // The lent one closes at its return, even reporting the same: it
    // belongs to the generation already cleared.
    mock.conn(2).change();
    drop(b);
    settle().await;
    assert_eq!(clears(&pool), 1, "one clear per generation");
    let c = pool.state().counters;
    assert_eq!((c.closed_broken, c.closed_retired), (2, 1));
    // The next get dials, and its connection is of the new generation.
    let d = ok(pool.get_for(&1).await);
    assert_eq!(d.id, 5);
    mock.conn(5).change();
    drop(d);
    settle().await;
    assert_eq!(clears(&pool), 2, "a new generation's report clears again");
    check_counts(&pool, &[1, 2]);
}

/// An idle connection found changed at checkout (its `health` asked as it
/// is taken from the idle list) clears its key as a returned one does: the
/// key's other idle connection closes with it, and the getter gets a new
/// one.
#[tokio::test(start_paused = true)]
async fn an_idle_connection_found_changed_at_checkout_clears_its_key() {
    let (mock, pool) = M::pool(|b| b).await;
    let (a, b) = three_and_one(&pool).await;
    drop(b);
    // Idle: 2 (the newest, lent first) and 3; 1 lent.
    mock.conn(2).change();
    let c = ok(pool.get_for(&1).await);
    assert_eq!(c.id, 5, "a new dial, not the idle 3");
    settle().await;
    assert_eq!(clears(&pool), 1);
    let mut closed = mock.closed();
    closed.sort();
    assert_eq!(closed, vec![2, 3]);
    drop(a);
    drop(c);
    settle().await;
    assert_eq!(mock.closed().len(), 3, "the lent one at its return");
    check_counts(&pool, &[1, 2]);
}

/// A broken connection whose server did not change closes alone.
#[tokio::test(start_paused = true)]
async fn a_broken_connection_closes_alone() {
    let (mock, pool) = M::pool(|b| b).await;
    let (a, b) = three_and_one(&pool).await;
    mock.conn(1).break_it();
    drop(a);
    settle().await;
    assert_eq!(clears(&pool), 0);
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(counts(&pool), Counts { open: 3, idle: 2, lent: 1, ..ZERO });
    drop(b);
}

/// A panic in `health` is contained and counts as broken, not changed:
/// the connection closes as broken, the key's others stay.
#[tokio::test(start_paused = true)]
async fn a_panic_in_health_says_broken_not_changed() {
    let (mock, pool) = M::pool(|b| b).await;
    let (a, b) = three_and_one(&pool).await;
    mock.conn(1).change_and_panic();
    drop(a);
    settle().await;
    assert_eq!(clears(&pool), 0);
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(pool.state().counters.closed_broken, 1);
    drop(b);
    check_counts(&pool, &[1, 2]);
}

/// A keepalive ping that finds the server changed clears the key: the
/// other idle connection closes with it.
#[tokio::test(start_paused = true)]
async fn a_keepalive_ping_that_finds_the_server_changed_clears_the_key() {
    let mock = Mock::<()>::new();
    let pool = mock
        .core_pool(|b| {
            b.keepalive_interval(Duration::from_secs(10))
                .ping_timeout(Duration::from_secs(2))
                .jitter(0.0)
                .initial(2)
        })
        .await;
    mock.conn(1).change();
    tokio::time::advance(Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(clears(&pool), 1);
    let mut closed = mock.closed();
    closed.sort();
    assert_eq!(closed, vec![1, 2]);
    assert_eq!(counts(&pool), ZERO);
    check_counts(&pool, &[()]);
}

/// A shared connection: a handle given back reporting the change clears
/// the key; the connection closes once its last borrower is gone, and the
/// other borrower's report clears nothing more.
#[tokio::test(start_paused = true)]
async fn a_shared_handle_reporting_the_change_clears_the_key() {
    let (mock, pool) = M::pool(|b| b).await;
    mock.share(4);
    let a = ok(pool.get_for(&1).await);
    let b = ok(pool.get_for(&1).await);
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, borrowers: 2, ..ZERO }
    );
    mock.conn(1).change();
    drop(a);
    settle().await;
    assert_eq!(clears(&pool), 1);
    assert!(mock.closed().is_empty(), "a borrower still holds it");
    drop(b);
    settle().await;
    assert_eq!(clears(&pool), 1);
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(counts(&pool), ZERO);
    let c = ok(pool.get_for(&1).await);
    assert_eq!(c.id, 2);
}

/// A shared connection found changed at a checkout (a new borrower's
/// handle asked) clears the key at once: the getter is served by a new
/// dial, and the connection closes once its borrower is gone.
#[tokio::test(start_paused = true)]
async fn a_shared_connection_found_changed_at_checkout_clears_the_key() {
    let (mock, pool) = M::pool(|b| b).await;
    mock.share(4);
    let a = ok(pool.get_for(&1).await);
    mock.conn(1).change();
    let b = ok(pool.get_for(&1).await);
    assert_eq!((a.id, b.id), (1, 2));
    assert_eq!(clears(&pool), 1);
    drop(a);
    settle().await;
    assert_eq!(mock.closed(), vec![1]);
    assert_eq!(
        counts(&pool),
        Counts { open: 1, lent: 1, borrowers: 1, ..ZERO }
    );
    drop(b);
}

/// A health check before lending whose ping finds the server changed
/// (the change comes during the ping, which then fails) clears the key as
/// a return does: the key's other idle connection closes with the checked
/// one, and the getter gets a new connection.
#[tokio::test(start_paused = true)]
async fn a_health_check_that_finds_the_server_changed_clears_the_key() {
    let (mock, pool) = M::pool(|b| b.health_check(Duration::ZERO)).await;
    let (a, b) = three_and_one(&pool).await;
    drop(b);
    // Idle: 2 (the newest, checked first) and 3; 1 lent.
    mock.delay_pings(Duration::from_millis(10));
    let pings = mock.pings().len();
    let get = tokio::spawn({
        let pool = pool.clone();
        async move { ok(pool.get_for(&1).await).id }
    });
    settle().await;
    assert_eq!(mock.pings().len(), pings + 1, "the check's ping is out");
    mock.conn(2).change();
    mock.delay_pings(Duration::ZERO);
    assert_eq!(get.await.unwrap(), 5, "a new dial, not the idle 3");
    settle().await;
    assert_eq!(clears(&pool), 1);
    let mut closed = mock.closed();
    closed.sort();
    assert_eq!(closed, vec![2, 3]);
    assert_eq!(pool.state().counters.closed_health_check, 1);
    drop(a);
    settle().await;
    check_counts(&pool, &[1, 2]);
}

/// A recycle after which `health` says the server changed (here the
/// `after_return` hook finds it) clears the key as a return does: the key's
/// idle connection closes with the recycled one.
#[tokio::test(start_paused = true)]
async fn a_recycle_that_finds_the_server_changed_clears_the_key() {
    let (mock, pool) = M::pool(|b| {
        b.after_return(|conn: &mut MockConn<u32>, _: &u32| {
            if conn.id == 1 {
                conn.change();
            }
            Box::pin(async { Ok(()) })
        })
    })
    .await;
    let a = ok(pool.get_for(&1).await);
    let b = ok(pool.get_for(&1).await);
    drop(ok(pool.get_for(&1).await));
    drop(ok(pool.get_for(&2).await));
    settle().await;
    assert_eq!(counts(&pool), Counts { open: 4, idle: 2, lent: 2, ..ZERO });
    assert_eq!(clears(&pool), 0);
    drop(a);
    settle().await;
    assert_eq!(clears(&pool), 1);
    let mut closed = mock.closed();
    closed.sort();
    assert_eq!(closed, vec![1, 3], "the recycled one and the idle one");
    assert_eq!(
        key_counts(&pool, &2),
        Some(Counts { open: 1, idle: 1, ..ZERO })
    );
    assert_eq!(pool.state().counters.recycle_failures, 1);
    drop(b);
    settle().await;
    assert_eq!(clears(&pool), 1, "one clear per generation");
    check_counts(&pool, &[1, 2]);
}

/// `health` answers from a script (`Ready` once it is spent) and counts
/// its calls.
#[derive(Clone, Default)]
struct Scripted {
    answers: Arc<std::sync::Mutex<std::collections::VecDeque<connpool::Health>>>,
    asked: Arc<std::sync::atomic::AtomicUsize>,
}

#[connpool::async_trait]
impl connpool::Manager for Scripted {
    type Key = ();
    type Connection = u32;
    type Error = std::io::Error;

    async fn connect(&self, _: &()) -> Result<u32, std::io::Error> {
        Ok(7)
    }

    fn health(&self, _: &mut u32) -> connpool::Health {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let next = self.answers.lock().unwrap().pop_front();
        next.unwrap_or(connpool::Health::Ready)
    }
}

/// Borrows and returns one connection, then gets again with `health`
/// answering `script` from then on: (`health` calls of that get, key
/// clears, dials).
async fn get_with(script: &[connpool::Health], check: Duration) -> (usize, u64, u64) {
    use std::sync::atomic::Ordering::SeqCst;
    let manager = Scripted::default();
    let pool = connpool::Pool::builder(manager.clone())
        .health_check(check)
        .build()
        .await
        .unwrap();
    drop(pool.get().await.unwrap());
    pool.settled().await;
    let asked = manager.asked.load(SeqCst);
    manager.answers.lock().unwrap().extend(script);
    let conn = pool.get().await.unwrap();
    let asked = manager.asked.load(SeqCst) - asked;
    let figures = (asked, clears(&pool), pool.state().counters.dials);
    drop(conn);
    pool.close().await;
    figures
}

/// What the pool asks `health` of an idle connection at its checkout, or
/// after its health check's ping, is what it acts on: a connection found
/// changed there clears its key, and closing it asks no second time
/// (whose answer, `Ready`, would differ).
#[tokio::test(start_paused = true)]
async fn a_connection_found_changed_before_lending_is_asked_once() {
    use connpool::Health::{Ready, ServerChanged};
    let at_checkout = get_with(&[ServerChanged], Duration::MAX).await;
    assert_eq!(
        at_checkout,
        (2, 1, 2),
        "once at the checkout, once after the dial"
    );
    let after_ping = get_with(&[Ready, ServerChanged], Duration::ZERO).await;
    assert_eq!(after_ping, (3, 1, 2), "and once after the ping");
}

/// Two servers behind an address that moves: each session reaches the
/// server the address names at its dial, and `health` says its server
/// changed once a write on it was refused (a demoted primary, read-only).
#[derive(Clone, Default)]
struct Moving {
    /// The servers' read-only flags: the old primary's, the new one's.
    servers: [Arc<std::sync::atomic::AtomicBool>; 2],
    /// Whether the address names the new primary.
    moved: Arc<std::sync::atomic::AtomicBool>,
    dials: Arc<std::sync::atomic::AtomicUsize>,
}

/// A session of [`Moving`]'s.
struct Session {
    /// The read-only flag of the server it reached.
    server: Arc<std::sync::atomic::AtomicBool>,
    /// A write on it was refused.
    refused: bool,
}

impl Session {
    /// A write: whether the server took it.
    fn write(&mut self) -> bool {
        self.refused = self.server.load(std::sync::atomic::Ordering::SeqCst);
        !self.refused
    }
}

#[connpool::async_trait]
impl connpool::Manager for Moving {
    type Key = ();
    type Connection = Session;
    type Error = std::io::Error;

    async fn connect(&self, _: &()) -> Result<Session, std::io::Error> {
        use std::sync::atomic::Ordering::SeqCst;
        self.dials.fetch_add(1, SeqCst);
        let server = Arc::clone(&self.servers[usize::from(self.moved.load(SeqCst))]);
        Ok(Session { server, refused: false })
    }

    fn health(&self, session: &mut Session) -> connpool::Health {
        if session.refused {
            connpool::Health::ServerChanged
        } else {
            connpool::Health::Ready
        }
    }
}

/// A primary demoted behind an address that stays on it for a second:
/// every redial after the key's clear reaches the same read-only server
/// and finds it changed again. A clear that repeats is a failed dial: the
/// key backs off and its probes, one connection at a time, find the new
/// primary once the address moves, instead of a dial and a clear per
/// write (a reconnect storm). 16 writers, each retrying 10 ms after a
/// failure, with the pool's defaults: at most three dials per writer from
/// the demotion on, and writes resume within a second of the move.
#[tokio::test(start_paused = true)]
async fn a_clear_that_repeats_backs_the_key_off_instead_of_a_reconnect_storm() {
    use std::sync::atomic::Ordering::SeqCst;
    use tokio::time::Instant;
    const WRITERS: usize = 16;
    let manager = Moving::default();
    let pool = connpool::Pool::builder(manager.clone())
        .max_open(WRITERS)
        .build()
        .await
        .unwrap();
    let start = Instant::now();
    let (demoted_at, moved_at, end) = (start + secs(1), start + secs(2), start + secs(5));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                while Instant::now() < end {
                    if let Ok(mut conn) = pool.get().await {
                        // The write's round trip, then the return.
                        tokio::time::sleep(ms(1)).await;
                        let took = conn.write();
                        drop(conn);
                        if took {
                            acked.push(Instant::now());
                            continue;
                        }
                    }
                    tokio::time::sleep(ms(10)).await;
                }
                acked
            })
        })
        .collect();
    tokio::time::sleep_until(demoted_at).await;
    manager.servers[0].store(true, SeqCst);
    let dials_before = manager.dials.load(SeqCst);
    tokio::time::sleep_until(moved_at).await;
    manager.moved.store(true, SeqCst);
    let mut resumed: Option<Instant> = None;
    for writer in writers {
        let first = join(writer).await.into_iter().find(|&at| at > moved_at);
        resumed = resumed.into_iter().chain(first).min();
    }
    let dials = manager.dials.load(SeqCst) - dials_before;
    let clears = clears(&pool);
    println!("{:?}", pool.state().counters);
    let resumed = resumed.expect("writes resumed") - moved_at;
    println!(
        "{dials} dials and {clears} clears from the demotion on; resumed {resumed:?} after the move"
    );
    assert!(
        dials <= 3 * WRITERS,
        "{dials} dials from the demotion on: a reconnect storm"
    );
    assert!(
        resumed <= secs(1),
        "writes resumed {resumed:?} after the move"
    );
    assert!(clears >= 2, "{clears} clears: the demotion was seen");
    pool.close().await;
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
