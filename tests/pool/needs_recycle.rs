//! `Manager::needs_recycle`: the manager is asked on every return whether
//! this connection needs its recycle; `false` takes the fast path (no
//! task, no recycle), a panic counts as `true`, and the recycle's task asks
//! again before it runs `Manager::recycle`; an `after_return` hook makes
//! every return go through the task, which runs `recycle` only if asked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use connpool::{Manager, Pool, async_trait};
use futures_util::future::BoxFuture;

#[derive(Default)]
struct Counts {
    /// What `needs_recycle` answers (unless it panics).
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

    fn needs_recycle(&self, _: &mut u32) -> bool {
        self.0.asked.fetch_add(1, Ordering::SeqCst);
        assert!(!self.0.panics.load(Ordering::SeqCst), "scripted panic");
        self.0.needs.load(Ordering::SeqCst)
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

/// Returns one connection, lets the pool settle; (asked, recycled, the
/// pool's recycle counter) so far.
async fn round(pool: &Pool<Dirty>, counts: &Counts) -> (usize, usize, u64) {
    drop(pool.get().await.unwrap());
    pool.settled().await;
    (
        counts.asked.load(Ordering::SeqCst),
        counts.recycled.load(Ordering::SeqCst),
        pool.state().counters.recycles,
    )
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_needs_no_recycle_takes_the_fast_path() {
    let counts = Arc::new(Counts::default());
    let pool = pool(&counts, false).await;
    assert_eq!(
        round(&pool, &counts).await,
        (1, 0, 0),
        "clean: not recycled"
    );
    assert_eq!(round(&pool, &counts).await, (2, 0, 0));
    // Dirty: asked on the return, and again by the task that recycles.
    counts.needs.store(true, Ordering::SeqCst);
    assert_eq!(round(&pool, &counts).await, (4, 1, 1), "dirty: recycled");
    counts.panics.store(true, Ordering::SeqCst);
    assert_eq!(round(&pool, &counts).await, (6, 2, 2), "a panic: recycled");
    counts.panics.store(false, Ordering::SeqCst);
    counts.needs.store(false, Ordering::SeqCst);
    assert_eq!(round(&pool, &counts).await, (7, 2, 2));
    assert_eq!(pool.state().counters.dials, 1, "never closed");
    pool.close().await;
}

#[tokio::test(start_paused = true)]
async fn an_after_return_hook_recycles_every_return_without_asking() {
    let counts = Arc::new(Counts::default());
    let pool = pool(&counts, true).await;
    // The hook runs on each return; the manager's recycle only if needed.
    assert_eq!(round(&pool, &counts).await, (1, 0, 1));
    counts.needs.store(true, Ordering::SeqCst);
    assert_eq!(round(&pool, &counts).await, (2, 1, 2));
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
