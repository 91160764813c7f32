//! Waiting for the pool to be quiet: [`Pool::settled`] (nothing dialing,
//! pinging, recycling or closing) and [`Pool::close`] (nothing open or
//! closing after a close). Both wait on the pool's `quiet` notification,
//! which the tasks' ends and a drained pool send.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::clock::Tick;
use crate::error::Error;
use crate::features::State;
use crate::manager::Manager;
use crate::pool::Pool;

impl<M: Manager> Pool<M> {
    /// Waits until the pool is *settled*: nothing dialing, being pinged by
    /// keepalive, recycling (a returned connection going through
    /// [`Manager::recycle`] and the `after_return` hook) or closing.
    /// Then every connection is idle or lent, and [`state`](Pool::state)
    /// reads as a borrower would expect after its return. Resolves at once
    /// if the pool is settled already (a getter waiting for a connection
    /// that nothing is dialing does not keep it from settling).
    ///
    /// Made for tests and orderly hand-overs: under tokio's paused clock it
    /// lets the pool's tasks run to their end (time advances only as far as
    /// they sleep). A pool that keeps dialing (say a `min_idle` against a
    /// backend that is down, between backoffs) settles between dials.
    ///
    /// ```
    /// # use connpool::{Manager, Pool, async_trait};
    /// # struct Echo;
    /// # #[async_trait]
    /// # impl Manager for Echo {
    /// #     type Key = ();
    /// #     type Connection = u8;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self, _: &()) -> std::io::Result<u8> { Ok(1) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = Pool::builder(Echo)
    ///     .after_return(|_, _| Box::pin(async { Ok(()) }))
    ///     .build()
    ///     .await
    ///     .unwrap();
    /// drop(pool.get().await.unwrap()); // recycled by a task of the pool's
    /// pool.settled().await;
    /// assert_eq!(pool.state().idle, 1);
    /// # }
    /// ```
    pub async fn settled(&self) {
        struct Counted<'a>(&'a AtomicUsize);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.inner.settle_waiters.fetch_add(1, Ordering::SeqCst);
        let _counted = Counted(&self.inner.settle_waiters);
        self.until_quiet(State::is_settled).await;
    }

    /// Closes the pool: new gets fail with [`Error::Closed`], waiting getters
    /// are woken with it, idle connections are closed through
    /// [`Manager::close`], lent ones when they come back, dialing ones when
    /// their dial ends. Resolves when every connection is closed. Calling it
    /// again (or from several handles) just waits.
    pub async fn close(&self) {
        self.begin_close();
        self.until_quiet(State::is_drained).await;
    }

    /// [`close`](Pool::close), giving up waiting after `grace`
    /// ([`Error::CloseTimeout`]); the pool stays closed and the rest is
    /// still closed as it comes back.
    pub async fn close_timeout(&self, grace: Duration) -> Result<(), Error<M::Error>> {
        self.begin_close();
        let drained = self.until_quiet(State::is_drained);
        tokio::time::timeout(grace, drained).await.map_err(|_| {
            let state = self.inner.state.lock();
            let (open, closing) = (state.counts().open, state.closing);
            Error::CloseTimeout { open, closing }
        })
    }

    pub(crate) fn begin_close(&self) {
        let state = self.inner.state.lock();
        if state.closed {
            return;
        }
        self.inner.transition_in(state, Tick::now(), |t| t.close());
        tracing::debug!("pool closed");
    }

    /// Waits until `done` says so of the state, looking again each time
    /// the pool's `quiet` is notified.
    async fn until_quiet(&self, done: impl Fn(&State<M>) -> bool) {
        loop {
            let notified = self.inner.quiet.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(&self.inner.state.lock()) {
                return;
            }
            notified.await;
        }
    }
}
