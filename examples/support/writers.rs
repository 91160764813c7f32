//! What the failover examples share: a two-worker runtime, and 16 writers
//! each writing the next id under a 1 s deadline (10 ms of pause after a
//! failure), recording when each write was acknowledged.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::task::JoinSet;
use tokio::time::timeout;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One client's write of id `n`.
pub type Write =
    Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> + Send + Sync>;

pub const WRITERS: usize = 16;
pub const DEADLINE: Duration = Duration::from_secs(1);

/// Runs `body` on a two-worker runtime.
pub fn main<F: Future<Output = Result<(), BoxError>>>(body: F) -> Result<(), BoxError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(body)
}

/// The writers at work.
pub struct Writers {
    acked: Arc<Mutex<Vec<(u64, Instant)>>>,
    failed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    tasks: JoinSet<()>,
}

impl Writers {
    /// [`WRITERS`] tasks writing with `write`, ids from 1 on.
    pub fn start(write: &Write) -> Writers {
        let acked: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
        let failed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU64::new(1));
        let mut tasks = JoinSet::new();
        for _ in 0..WRITERS {
            let (write, acked, failed) = (Arc::clone(write), acked.clone(), failed.clone());
            let (stop, next) = (stop.clone(), next.clone());
            tasks.spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let id = next.fetch_add(1, Ordering::SeqCst);
                    match timeout(DEADLINE, write(id)).await {
                        Ok(Ok(())) => acked.lock().push((id, Instant::now())),
                        _ => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            });
        }
        Writers {
            acked,
            failed,
            stop,
            tasks,
        }
    }

    /// Stops them: the acknowledged ids with their instants, and how many
    /// writes failed.
    pub async fn stop(mut self) -> (Vec<(u64, Instant)>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        while self.tasks.join_next().await.is_some() {}
        let acked = std::mem::take(&mut *self.acked.lock());
        (acked, self.failed.load(Ordering::SeqCst))
    }
}
