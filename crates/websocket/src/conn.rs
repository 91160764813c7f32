//! The pooled connection: [`WsConn`], a WebSocket stream that keeps track
//! of whether it may be lent again, and reads what arrives while it is idle.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use futures_util::{Sink, Stream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message};

use super::error::WsError;
use super::heartbeat::Heartbeat;
use super::url::WsUrl;

/// The socket beneath: TCP, or TLS over TCP.
type Io = connpool_tcp::transport::Stream;

mod stream;

/// The schedule of a lent connection's heartbeat: the pool's keepalive
/// settings.
#[derive(Debug, Clone, Copy)]
pub(super) struct WhileLent {
    /// Silence after which a heartbeat is sent.
    pub(super) every: Duration,
    /// Heartbeats in a row without a word from the server after which the
    /// connection is taken for dead.
    pub(super) max_missed: u32,
}

/// The heartbeat of a lent connection: after `every` of silence while the
/// borrower reads, a heartbeat; after `max_missed` of them with nothing
/// heard, the borrower's stream fails.
struct Beating {
    schedule: WhileLent,
    /// When the next heartbeat is due; armed at the borrower's first wait.
    sleep: Option<Pin<Box<Sleep>>>,
    /// Heartbeats sent since the server was last heard from.
    missed: u32,
}

impl Beating {
    /// Something arrived: the silence starts again.
    fn heard(&mut self) {
        self.missed = 0;
        if let Some(sleep) = &mut self.sleep {
            sleep.as_mut().reset(Instant::now() + self.schedule.every);
        }
    }
}

/// At most this many frames are read from an idle connection per look:
/// enough for the Pings and Pongs a heartbeat interval brings, and a bound
/// on the time `health` can take against a peer that floods.
const IDLE_READS: usize = 32;

/// A lent connection's read timeout: the manager's, or the borrower's
/// own until the connection comes back; its timer armed at a read's first
/// wait.
struct ReadTimeout {
    default: Option<Duration>,
    now: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl ReadTimeout {
    /// Whether the read that began waiting (`cx` registered) has waited
    /// its timeout out: then the timeout, once.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<Duration> {
        let after = self.now?;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
        if sleep.as_mut().poll(cx).is_pending() {
            return None;
        }
        self.sleep = None;
        Some(after)
    }
}

/// At most this many data messages from a server that speaks first are
/// kept for the first borrower; one more makes the connection broken (a
/// feed that nobody reads).
pub(super) const MAX_GREETING: usize = 64;

/// At most this many bytes of such messages are kept (tungstenite's own
/// bound is 64 MiB a message); one more makes the connection broken.
pub(super) const MAX_GREETING_BYTES: usize = 1 << 20;

/// A pooled WebSocket client connection: a [`Sink`] and a [`Stream`] of
/// [`Message`]s, as tokio-tungstenite's `WebSocketStream` is (with its
/// error, [`tungstenite::Error`]), and so is its pool guard,
/// [`Pooled<WsManager>`](connpool_core::Pooled). Use `futures`' `SinkExt` /
/// `StreamExt` (`send`, `next`) on either.
///
/// The stream yields what tungstenite yields (a server's Ping is answered
/// by tungstenite, and also shown), except late replies to the pool's
/// heartbeat, which it drops. What a server sends before any borrower has
/// sent anything (a greeting, a snapshot: up to 64 data
/// messages and 1 MiB) is kept and yielded first, to whichever borrower reads. Reading a Close frame, an error or the end
/// of the stream, or closing the sink, makes the connection broken: the
/// pool closes it when it comes back.
///
/// So does giving it back in the middle of an exchange ([`WsError::Interrupted`]):
/// with a read cut short (a `next()` dropped by a timeout or a cancelled
/// task) or a message queued and not flushed. The reply it was waiting
/// for may still come, and must never reach the next borrower as the
/// answer to its own request. A borrower that sends a request reads its
/// reply before it gives the connection back.
pub struct WsConn {
    ws: WebSocketStream<Io>,
    url: WsUrl,
    peer: SocketAddr,
    subprotocol: Option<String>,
    heartbeat: Arc<dyn Heartbeat>,
    /// Heartbeat replies still to come: sent, their reply not read (the
    /// pool gave up waiting). The next this many replies are dropped.
    owed: u32,
    /// Unusable: closed by either side, failed, or out of step.
    broken: bool,
    /// The server sent a Close frame: tungstenite has queued the Close
    /// that answers it (RFC 6455 §5.5.1), to flush before the socket goes.
    peer_closed: bool,
    /// The borrower's last read returned `Pending`: if the connection comes
    /// back so, the read was cut short and its message may still come.
    reading: bool,
    /// The borrower queued a message that is not yet flushed.
    unflushed: bool,
    /// The heartbeat while lent, if on.
    while_lent: Option<Beating>,
    /// No borrower has sent anything yet: a data message from the server
    /// can be no reply, so it is kept in `greeting`, not taken as one
    /// nobody asked for.
    fresh: bool,
    /// Data messages the server sent first, for the next read.
    greeting: VecDeque<Message>,
    /// Their length in bytes.
    greeting_bytes: usize,
    /// How long a read waits for a message: the manager's default, or
    /// this borrower's own ([`set_read_timeout`](Self::set_read_timeout)).
    read_timeout: ReadTimeout,
    /// Why, if not yet reported.
    why: Option<WsError>,
}

impl WsConn {
    pub(super) fn new(
        ws: WebSocketStream<Io>,
        url: WsUrl,
        peer: SocketAddr,
        subprotocol: Option<String>,
        heartbeat: Arc<dyn Heartbeat>,
        (while_lent, read_timeout): (Option<WhileLent>, Option<Duration>),
    ) -> Self {
        Self {
            ws,
            url,
            peer,
            subprotocol,
            heartbeat,
            owed: 0,
            broken: false,
            peer_closed: false,
            reading: false,
            unflushed: false,
            while_lent: while_lent.map(|schedule| Beating {
                schedule,
                sleep: None,
                missed: 0,
            }),
            fresh: true,
            greeting: VecDeque::new(),
            greeting_bytes: 0,
            read_timeout: ReadTimeout {
                default: read_timeout,
                now: read_timeout,
                sleep: None,
            },
            why: None,
        }
    }

    /// The URL the connection was made to (its key).
    pub fn url(&self) -> &WsUrl {
        &self.url
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The TCP socket beneath (for its addresses and socket options: data
    /// read from it directly would be lost to the WebSocket).
    pub fn tcp(&self) -> &tokio::net::TcpStream {
        self.ws.get_ref().tcp()
    }

    /// The subprotocol the server chose (`Sec-WebSocket-Protocol`), if
    /// one was asked for.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// How long each read (`next()`) of this borrower waits for a message
    /// before it fails with an I/O error of kind `TimedOut`
    /// ([`WsError::ReadTimedOut`]), the connection then not lent again;
    /// `None`: as long as the server is silent (the heartbeat while lent
    /// still finds a dead peer). Until the connection comes back: the next
    /// borrower has the manager's
    /// [`read_timeout`](super::WsManager::read_timeout) again.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout.now = timeout;
        self.read_timeout.sleep = None;
    }

    /// This borrower's read timeout (see [`set_read_timeout`](Self::set_read_timeout)).
    pub(super) fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.now
    }

    /// Whether the connection is unusable: a Close frame, an error or the
    /// end of the stream was read, the sink was closed, or a data message
    /// arrived unasked while it was idle (after a borrower had sent
    /// something: before, it is kept for the next read).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The connection is unusable because of `why`.
    fn fail(&mut self, why: WsError) {
        if let WsError::Closed(_) = why {
            self.peer_closed = true;
        }
        self.broken = true;
        self.why.get_or_insert(why);
    }

    /// Sends the answer to the server's own heartbeat, flushing what it
    /// can now (the rest goes with the next read or write).
    fn send_answer(
        &mut self,
        answer: Message,
        cx: &mut Context<'_>,
    ) -> Result<(), tungstenite::Error> {
        // tokio-tungstenite queues a message even when its buffer is full
        // (`start_send` without `poll_ready` is accepted).
        Pin::new(&mut self.ws).start_send(answer)?;
        match Pin::new(&mut self.ws).poll_flush(cx) {
            Poll::Ready(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Why the connection is broken, if known and not yet taken.
    pub(super) fn why(&self) -> Option<&WsError> {
        self.why.as_ref()
    }

    /// Why the connection is broken, once (later: that it ended).
    pub(super) fn take_why(&mut self) -> WsError {
        self.why.take().unwrap_or(WsError::Ended)
    }

    /// Reads, without waiting, what arrived while the connection was idle:
    /// a server's Ping (tungstenite queues its Pong, flushed by the next
    /// read and by the flush below), a Pong, a late heartbeat reply (all
    /// dropped), or what makes it broken: a Close frame, an error, the end
    /// of the stream, a data message nobody asked for. Whether that newly
    /// broke it
    /// (see [`why`](Self::why)).
    ///
    /// Polled with a no-op waker: nothing is woken when more arrives, the
    /// next look reads it (see the module docs for why there is no reader
    /// task).
    pub(super) fn read_idle(&mut self) -> bool {
        if self.broken {
            return false;
        }
        if self.reading || self.unflushed {
            self.fail(WsError::Interrupted);
            return true;
        }
        // The next borrower's silence starts when it first waits, and it
        // has the manager's read timeout.
        if let Some(lent) = &mut self.while_lent {
            lent.missed = 0;
            lent.sleep = None;
        }
        self.read_timeout.now = self.read_timeout.default;
        self.read_timeout.sleep = None;
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..IDLE_READS {
            let msg = match Pin::new(&mut self.ws).poll_next(&mut cx) {
                Poll::Pending => break,
                Poll::Ready(Some(Ok(msg))) => msg,
                Poll::Ready(Some(Err(e))) => {
                    self.fail(WsError::Protocol(e));
                    return true;
                }
                Poll::Ready(None) => {
                    self.fail(WsError::Ended);
                    return true;
                }
            };
            if let Some(answer) = self.heartbeat.answer(&msg) {
                if let Err(e) = self.send_answer(answer, &mut cx) {
                    self.fail(WsError::Protocol(e));
                    return true;
                }
                continue;
            }
            match msg {
                msg if self.owed > 0 && self.heartbeat.is_reply(&msg) => self.owed -= 1,
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                Message::Close(frame) => {
                    self.fail(WsError::Closed(frame));
                    // tungstenite queued the Close that answers it.
                    let _ = Pin::new(&mut self.ws).poll_flush(&mut cx);
                    return true;
                }
                msg => {
                    if let Err(why) = self.keep_greeting(msg) {
                        self.fail(why);
                        return true;
                    }
                }
            }
        }
        // The Pong to a Ping read last is queued until the next read or
        // flush: flush it now, not at the next look.
        if let Poll::Ready(Err(e)) = Pin::new(&mut self.ws).poll_flush(&mut cx) {
            self.fail(WsError::Protocol(e));
            return true;
        }
        false
    }

    /// One heartbeat: sends `heartbeat`'s message and reads until its
    /// reply. May be dropped at any await: a message half sent is finished
    /// by the next write or flush, a reply not yet read is owed and dropped
    /// when it comes.
    pub(super) async fn beat(&mut self) -> Result<(), WsError> {
        let heartbeat = Arc::clone(&self.heartbeat);
        let sent = std::future::poll_fn(|cx| Pin::new(&mut self.ws).poll_ready(cx)).await;
        sent.and_then(|()| Pin::new(&mut self.ws).start_send(heartbeat.message()))
            .map_err(|e| self.failed(e))?;
        self.owed += 1;
        std::future::poll_fn(|cx| Pin::new(&mut self.ws).poll_flush(cx))
            .await
            .map_err(|e| self.failed(e))?;
        loop {
            let next = std::future::poll_fn(|cx| Pin::new(&mut self.ws).poll_next(cx)).await;
            let msg = match next {
                Some(Ok(msg)) => msg,
                Some(Err(e)) => return Err(self.failed(e)),
                None => {
                    self.broken = true;
                    return Err(WsError::Ended);
                }
            };
            if let Some(answer) = heartbeat.answer(&msg) {
                let mut answer = Some(answer);
                std::future::poll_fn(|cx| {
                    Poll::Ready(self.send_answer(answer.take().expect("once"), cx))
                })
                .await
                .map_err(|e| self.failed(e))?;
                continue;
            }
            match msg {
                msg if heartbeat.is_reply(&msg) => {
                    self.owed -= 1;
                    return Ok(());
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                Message::Close(frame) => {
                    self.broken = true;
                    self.peer_closed = true;
                    return Err(WsError::Closed(frame));
                }
                msg => {
                    if let Err(why) = self.keep_greeting(msg) {
                        self.broken = true;
                        return Err(why);
                    }
                }
            }
        }
    }

    /// A data message that arrived when no borrower was reading: kept for
    /// the next read if no borrower has sent anything yet (and fewer than
    /// [`MAX_GREETING`] messages and [`MAX_GREETING_BYTES`] are kept),
    /// else the error that makes the connection broken (it may be the
    /// reply to a request nobody reads, or a feed nobody reads).
    fn keep_greeting(&mut self, msg: Message) -> Result<(), WsError> {
        let bytes = self.greeting_bytes + msg.len();
        if self.fresh && self.greeting.len() < MAX_GREETING && bytes <= MAX_GREETING_BYTES {
            self.greeting.push_back(msg);
            self.greeting_bytes = bytes;
            return Ok(());
        }
        Err(match msg {
            Message::Binary(data) => unsolicited("binary", data.len()),
            other => unsolicited("text", other.len()),
        })
    }

    /// While the borrower waits for a message: a heartbeat after each
    /// `every` of silence, and the borrower's error once `max_missed`
    /// went unanswered. Registers `cx` for the next one.
    fn beat_while_lent(&mut self, cx: &mut Context<'_>) -> Option<tungstenite::Error> {
        loop {
            let lent = self.while_lent.as_mut()?;
            let WhileLent { every, max_missed } = lent.schedule;
            let sleep = lent
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
            if sleep.as_mut().poll(cx).is_pending() {
                return None;
            }
            if lent.missed >= max_missed {
                let why = WsError::HeartbeatMissed {
                    missed: lent.missed,
                    every,
                };
                let error = io::Error::new(io::ErrorKind::TimedOut, why.to_string());
                self.fail(why);
                return Some(tungstenite::Error::Io(error));
            }
            lent.missed += 1;
            sleep.as_mut().reset(Instant::now() + every);
            // Owed: its reply is dropped when it comes.
            self.owed += 1;
            let message = self.heartbeat.message();
            let sent = Pin::new(&mut self.ws).start_send(message).and_then(|()| {
                match Pin::new(&mut self.ws).poll_flush(cx) {
                    Poll::Ready(Err(e)) => Err(e),
                    _ => Ok(()),
                }
            });
            if let Err(e) = sent {
                self.broken = true;
                return Some(e);
            }
        }
    }

    /// Marks the connection broken by `e` (already reported), and returns
    /// it as the heartbeat's error.
    fn failed(&mut self, e: tungstenite::Error) -> WsError {
        self.broken = true;
        WsError::Protocol(e)
    }

    /// Whether the server sent a Close frame, whose answer is to flush.
    pub(super) fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Sends a Close frame (code 1000) and flushes it; does not wait for
    /// the server's. After the server's own Close, flushes the Close that
    /// tungstenite queued to answer it.
    pub(super) async fn close(&mut self) {
        if self.peer_closed {
            let _ = std::future::poll_fn(|cx| Pin::new(&mut self.ws).poll_flush(cx)).await;
            return;
        }
        let frame = tungstenite::protocol::CloseFrame {
            code: tungstenite::protocol::frame::coding::CloseCode::Normal,
            reason: "".into(),
        };
        self.broken = true;
        let _ = self.ws.close(Some(frame)).await;
    }
}

fn unsolicited(kind: &'static str, len: usize) -> WsError {
    WsError::Unsolicited { kind, len }
}

impl fmt::Debug for WsConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsConn")
            .field("url", &self.url)
            .field("peer", &self.peer)
            .field("subprotocol", &self.subprotocol)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}
