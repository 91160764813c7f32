//! The [`Builder`]'s hooks: user code the pool runs on a new connection,
//! before lending one, and after one comes back.

use super::Builder;
use crate::manager::Manager;
use futures_core::future::BoxFuture;

impl<M: Manager> Builder<M> {
    /// Runs `hook` on every new connection, inside its dial (bounded with
    /// it by `connect_timeout`), before it is first lent or parked: e.g.
    /// `SET application_name`, `SET search_path`. It runs again after each
    /// [`Manager::recycle`] (a reset to a new connection's state, like
    /// PostgreSQL's session reset), within the recycle's time limit: what it
    /// sets survives the reset. An error fails the dial
    /// with that error, as a failed [`Manager::connect`] does
    /// ([`ConnectError::Manager`](crate::ConnectError::Manager): `{}` shows
    /// the manager's message, and a log line at `debug` says it was this
    /// hook); a panic fails it with
    /// [`ConnectError::Panicked`](crate::ConnectError::Panicked). The
    /// connection is then closed, never lent.
    ///
    /// ```
    /// # use connpool::{Manager, Pool, async_trait};
    /// # struct Numbers;
    /// # #[async_trait]
    /// # impl Manager for Numbers {
    /// #     type Key = ();
    /// #     type Connection = Vec<String>;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self, _: &()) -> Result<Vec<String>, std::io::Error> { Ok(vec![]) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = Pool::builder(Numbers)
    ///     .after_connect(|conn, _key| {
    ///         Box::pin(async move {
    ///             conn.push("SET application_name = 'billing'".into());
    ///             Ok(())
    ///         })
    ///     })
    ///     .build()
    ///     .await?;
    /// assert_eq!(pool.get().await?.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn after_connect<F>(mut self, hook: F) -> Self
    where
        F: Send + Sync + 'static,
        F: for<'a> Fn(&'a mut M::Connection, &'a M::Key) -> BoxFuture<'a, Result<(), M::Error>>,
    {
        self.hooks.after_connect = Some(Box::new(hook));
        self
    }

    /// Runs `hook` before a connection taken from the idle list is lent
    /// (after the health-check ping, if one is due), in the getter's task,
    /// bounded by `ping_timeout` and the checkout deadline: a check cheaper
    /// than a ping, or a per-checkout setting. An error, a panic or the
    /// time limit closes the connection as
    /// broken ([`closed_broken`](crate::Counters::closed_broken)) and the getter is served by
    /// another one, as after a failed health check. Not run on a connection
    /// handed over by a returning borrower or a dial (it just worked).
    /// Every idle checkout then takes the slower path (an `await`).
    pub fn before_lend<F>(mut self, hook: F) -> Self
    where
        F: Send + Sync + 'static,
        F: for<'a> Fn(&'a mut M::Connection, &'a M::Key) -> BoxFuture<'a, Result<(), M::Error>>,
    {
        self.hooks.before_lend = Some(Box::new(hook));
        self
    }

    /// Runs `hook` on each connection lent exclusively after its borrower
    /// gives it back, before it is lent again or parked, in a task of its
    /// own (the borrower's drop does not wait): e.g. a session reset. Runs
    /// after the manager's own [`Manager::recycle`], the two bounded
    /// together by `ping_timeout`; meanwhile the connection counts as
    /// `recycling`. An error, a panic or the time limit closes the
    /// connection as broken ([`closed_broken`](crate::Counters::closed_broken)). A connection
    /// marked broken, past its lifetime or uses, or returned to a closed
    /// pool is closed without it; shared connections never run it.
    pub fn after_return<F>(mut self, hook: F) -> Self
    where
        F: Send + Sync + 'static,
        F: for<'a> Fn(&'a mut M::Connection, &'a M::Key) -> BoxFuture<'a, Result<(), M::Error>>,
    {
        self.hooks.after_return = Some(Box::new(hook));
        self
    }
}
