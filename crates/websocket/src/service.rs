//! [`WsService`]: a request and its reply, or a subscription's start, on a
//! pooled WebSocket connection, under one deadline from the checkout on.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{WsConn, WsError, WsManager};
use connpool_core::{Manager, Pool, Pooled, Waiting};
use connpool_tcp::deadline::Deadline;

/// Where a call was when its deadline passed.
const CHECKOUT: &str = "a connection";
const SEND: &str = "the send";
const REPLY: &str = "the reply";

/// Requests over a [`Pool`] of [`WsManager`] (keyed by URL, the service
/// given its URL; or a pool of one key, `Single::new(manager, url)`, the
/// service given `()`), each under one
/// deadline, [`timeout`](WsService::timeout), that bounds all of it: the
/// wait for a connection, a health check, a dial, the send and the reply.
/// Past it a call fails with [`WsError::TimedOut`], which names the
/// deadline and what the call was waiting for; a connection whose reply
/// may still come is not lent again. A call that gets no connection fails
/// with [`WsError::NoConnection`] (the pool's error inside). Cheap to clone.
///
/// - [`request`](WsService::request): one message out, the first data
///   message back; the connection goes back to the pool.
/// - [`subscribe`](WsService::subscribe): the same, and the connection
///   stays with the caller for what the server pushes next (watched by
///   the heartbeat while lent; its reads bounded by the manager's
///   [`read_timeout`](WsManager::read_timeout), none by default).
///
/// A call past its deadline is counted in the pool's counters and metrics
/// by where it was: [`Counters::timeouts`](connpool_core::Counters::timeouts)
/// waiting for a connection, [`Counters::reply_timeouts`](connpool_core::Counters::reply_timeouts)
/// waiting for the send or the reply. A clone bound to one instant,
/// [`deadline`](WsService::deadline), shares it among its calls.
///
/// Without a deadline of its own, the pool's
/// [`checkout_timeout`](connpool_core::Builder::checkout_timeout) bounds
/// the wait for a connection and the manager's `read_timeout` the reply.
/// With one, the manager's `read_timeout` does not cut the reply shorter.
///
/// ```no_run
/// use std::time::Duration;
///
/// use connpool_websocket::pool::Pool;
/// use connpool_websocket::tungstenite::Message;
/// use connpool_websocket::{WsManager, WsService};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(WsManager::new()).build().await?;
/// let quotes = WsService::new(pool, "ws://127.0.0.1:9001/quotes".parse()?)
///     .timeout(Duration::from_secs(2));
/// let price = quotes.request(Message::text("price EURUSD")).await?;
/// let (mut feed, ack) = quotes.subscribe(Message::text("subscribe EURUSD")).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct WsService<M: Manager<Connection = WsConn, Error = WsError> = WsManager> {
    pool: Pool<M>,
    key: M::Key,
    deadline: Deadline,
}

impl<M: Manager<Connection = WsConn, Error = WsError>> Clone for WsService<M> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            key: self.key.clone(),
            deadline: self.deadline,
        }
    }
}

impl<M: Manager<Connection = WsConn, Error = WsError>> WsService<M> {
    /// Calls on connections of `key` (a [`WsUrl`](super::WsUrl) for a [`WsManager`]'s
    /// pool, `()` for a pool of one key), with no deadline of their own
    /// (see above).
    pub fn new(pool: Pool<M>, key: M::Key) -> Self {
        Self {
            pool,
            key,
            deadline: Deadline::default(),
        }
    }

    /// Each call's deadline, from the checkout to the reply; `None`: the
    /// pool's and the manager's timeouts alone.
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.deadline = self.deadline.per_call(timeout);
        self
    }

    /// The pool the calls borrow from.
    pub fn pool(&self) -> &Pool<M> {
        &self.pool
    }

    /// A clone whose calls share one deadline, `at` (and each its own
    /// [`timeout`](WsService::timeout), if sooner).
    pub fn deadline(&self, at: impl Into<Instant>) -> Self {
        let mut bound = self.clone();
        bound.deadline = self.deadline.shared(at.into());
        bound
    }

    /// Sends `message` on a connection borrowed for it and returns the
    /// first data message (text or binary) the server sends back; the
    /// connection goes back to the pool.
    pub async fn request(&self, message: Message) -> Result<Message, WsError> {
        self.subscribe(message).await.map(|(_, reply)| reply)
    }

    /// Sends `message` on a connection borrowed for it, reads the first
    /// data message the server sends back, and keeps the connection lent
    /// to the caller for the messages that follow.
    pub async fn subscribe(
        &self,
        message: Message,
    ) -> Result<(Pooled<'static, M>, Message), WsError> {
        let deadline = self.deadline.start();
        let conn = self
            .within(deadline, CHECKOUT, self.pool.get_for(&self.key))
            .await?;
        let mut conn = Pooled::into_owned(conn.map_err(|e| WsError::NoConnection(Box::new(e)))?);
        let read_timeout = conn.read_timeout();
        if deadline.is_some() {
            conn.set_read_timeout(None);
        }
        self.within(deadline, SEND, conn.send(message))
            .await?
            .map_err(WsError::Protocol)?;
        let reply = self
            .within(deadline, REPLY, first_data(&mut conn))
            .await??;
        conn.set_read_timeout(read_timeout);
        Ok((conn, reply))
    }

    /// `work` within `deadline` (if any), else [`WsError::TimedOut`]
    /// waiting for `phase`.
    async fn within<T>(
        &self,
        deadline: Option<(Instant, Duration)>,
        phase: &'static str,
        work: impl Future<Output = T>,
    ) -> Result<T, WsError> {
        let Some((at, after)) = deadline else {
            return Ok(work.await);
        };
        tokio::time::timeout_at(at, work).await.map_err(|_| {
            let waiting = match phase {
                CHECKOUT => Waiting::Connection,
                _ => Waiting::Reply,
            };
            self.pool.count_timeout(&self.key, waiting);
            WsError::TimedOut {
                after,
                waiting_for: phase,
            }
        })
    }
}

/// The next data message on `conn`: a Close or the end of the stream is
/// the call's error.
async fn first_data<M: Manager<Connection = WsConn>>(
    conn: &mut Pooled<'static, M>,
) -> Result<Message, WsError> {
    loop {
        match conn.next().await {
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => return Ok(message),
            Some(Ok(Message::Close(frame))) => return Err(WsError::Closed(frame)),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(WsError::Protocol(e)),
            None => return Err(WsError::Ended),
        }
    }
}
