//! `Health::NeedsRecycle`: `Manager::health` is asked on every return;
//! `Ready` takes the fast path (no task, no recycle), `NeedsRecycle` sends
//! the connection through a recycle task, which asks again before it runs
//! `Manager::recycle`; a panic closes the connection as broken; an
//! `after_return` hook makes every return go through the task, which runs
//! `recycle` only if asked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use connpool::{Health, Manager, Pool, async_trait};
use futures_util::future::BoxFuture;

#[derive(Default)]
struct Counts {
    /// Whether `health` answers `NeedsRecycle` (unless it panics).
    needs: AtomicBool,
    panics: AtomicBool,
    /// `recycle` never ends.
    hangs: AtomicBool,
    asked: AtomicUsize,
    recycled: AtomicUsize,
}

struct Dirty(Arc<Counts>);

#[async_trait]
impl Manager for Dirty {
    type Key = ();
    type Connection = u32;
    type Error = std::io::Error;

    async fn connect(&self, _: &()) -> Result<u32, std::io::Error> {
        Ok(7)
    }

    fn health(&self, _: &mut u32) -> Health {
        self.0.asked.fetch_add(1, Ordering::SeqCst);
        assert!(!self.0.panics.load(Ordering::SeqCst), "scripted panic");
        if self.0.needs.load(Ordering::SeqCst) {
            Health::NeedsRecycle
        } else {
            Health::Ready
        }
    }

    async fn recycle(&self, _: &mut u32) -> Result<(), std::io::Error> {
        self.0.recycled.fetch_add(1, Ordering::SeqCst);
        if self.0.hangs.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

async fn pool(counts: &Arc<Counts>, hooked: bool) -> Pool<Dirty> {
    fn hook<'a>(_: &'a mut u32, _: &'a ()) -> BoxFuture<'a, Result<(), std::io::Error>> {
        Box::pin(async { Ok(()) })
    }
    let builder = Pool::builder(Dirty(Arc::clone(counts))).max_open(1);
    let builder = if hooked {
        builder.after_return(hook)
    } else {
        builder
    };
    builder.build().await.unwrap()
}

/// Borrows one connection and returns it with `health` answering as
/// `needs` and `panics` say, lets the pool settle; (`health` asked by the
/// return and its recycle, recycled so far, the pool's recycle counter).
async fn round(
    pool: &Pool<Dirty>,
    counts: &Counts,
    needs: bool,
    panics: bool,
) -> (usize, usize, u64) {
    let conn = pool.get().await.unwrap();
    counts.needs.store(needs, Ordering::SeqCst);
    counts.panics.store(panics, Ordering::SeqCst);
    let asked = counts.asked.load(Ordering::SeqCst);
    drop(conn);
    pool.settled().await;
    counts.needs.store(false, Ordering::SeqCst);
    counts.panics.store(false, Ordering::SeqCst);
    (
        counts.asked.load(Ordering::SeqCst) - asked,
        counts.recycled.load(Ordering::SeqCst),
        pool.state().counters.recycles,
    )
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_needs_no_recycle_takes_the_fast_path() {
    let counts = Arc::new(Counts::default());
    let pool = pool(&counts, false).await;
    let clean = round(&pool, &counts, false, false).await;
    assert_eq!(clean, (1, 0, 0), "clean: not recycled");
    // Dirty: asked on the return, and by the task that recycles before
    // and after the recycle.
    let dirty = round(&pool, &counts, true, false).await;
    assert_eq!(dirty, (3, 1, 1), "dirty: recycled");
    assert_eq!(round(&pool, &counts, false, false).await, (1, 1, 1));
    assert_eq!(pool.state().counters.dials, 1, "never closed");
    let panicked = round(&pool, &counts, true, true).await;
    assert_eq!(panicked, (1, 1, 1), "a panic: closed, not recycled");
    assert_eq!(pool.state().counters.closed_broken, 1);
    assert_eq!(round(&pool, &counts, false, false).await, (1, 1, 1));
    assert_eq!(pool.state().counters.dials, 2);
    pool.close().await;
}

#[tokio::test(start_paused = true)]
async fn an_after_return_hook_recycles_every_return() {
    let counts = Arc::new(Counts::default());
    let pool = pool(&counts, true).await;
    // The hook runs on each return; the manager's recycle only if needed.
    assert_eq!(round(&pool, &counts, false, false).await, (3, 0, 1));
    assert_eq!(round(&pool, &counts, true, false).await, (3, 1, 2));
    pool.close().await;
}

/// `ping_timeout` bounds `Manager::recycle`: one that never ends closes
/// its connection as broken at exactly the limit, and the next get dials.
#[tokio::test(start_paused = true)]
async fn a_recycle_that_hangs_is_bounded_by_the_ping_timeout() {
    let counts = Arc::new(Counts::default());
    counts.needs.store(true, Ordering::SeqCst);
    counts.hangs.store(true, Ordering::SeqCst);
    let pool = Pool::builder(Dirty(Arc::clone(&counts)))
        .max_open(1)
        .ping_timeout(std::time::Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    drop(pool.get().await.unwrap());
    let returned = tokio::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_millis(1999)).await;
    assert_eq!(
        pool.state().recycling,
        1,
        "still recycling just before the limit"
    );
    pool.settled().await;
    assert_eq!(returned.elapsed(), std::time::Duration::from_secs(2));
    let state = pool.state();
    assert_eq!(
        (
            state.counters.recycle_failures,
            state.counters.closed_broken
        ),
        (1, 1),
        "{state:?}"
    );
    counts.hangs.store(false, Ordering::SeqCst);
    drop(pool.get().await.unwrap());
    assert_eq!(pool.state().counters.dials, 2);
    pool.close().await;
}
