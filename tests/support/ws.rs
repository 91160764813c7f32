//! An in-process WebSocket server (tokio-tungstenite) on 127.0.0.1, plain or
//! over TLS, for the WebSocket manager's tests: it echoes text and binary
//! messages, answers the text `ping` with `pong` if told to (at once or
//! late), checks a bearer token and greets if told to, and its connections can be told
//! to send a message unasked, to close, or to go silent. It counts
//! handshakes, text pings, the Pongs it receives, the text `pong`s that
//! answer its own text pings (not echoed) and the Close frames it gets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// How a server behaves.
#[derive(Clone, Default)]
pub struct Options {
    /// Over TLS with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Answer the text `ping` with `pong`, after this delay (else echo it).
    pub text_pong: Option<Duration>,
    /// Refuse (401, with a body) a handshake without
    /// `Authorization: Bearer <this>`.
    pub token: Option<&'static str>,
    /// Listen here (a restart on the same port) instead of a new port.
    pub addr: Option<SocketAddr>,
    /// Send this text right after the handshake (a server that speaks
    /// first: a `Hello`, a welcome).
    pub greeting: Option<&'static str>,
}

/// What a test tells a server's connections.
enum Cmd {
    /// Send this message unasked; answer when written.
    Send(Message, oneshot::Sender<()>),
    /// Stop reading and writing, keep the socket open.
    Mute,
}

#[derive(Default)]
pub struct Seen {
    pub handshakes: AtomicUsize,
    pub text_pings: AtomicUsize,
    pub pongs: AtomicUsize,
    /// Text `pong`s received (answers to its own text pings).
    pub text_pongs: AtomicUsize,
    /// Close frames received.
    pub closes: AtomicUsize,
    /// Ping frames received (answered by tungstenite).
    pub pings: AtomicUsize,
    /// `Authorization` and `Sec-WebSocket-Protocol` of each handshake.
    pub headers: Mutex<Vec<(Option<String>, Option<String>)>>,
}

pub struct WsServer {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    conns: Arc<Mutex<Vec<mpsc::UnboundedSender<Cmd>>>>,
    /// The accept loop and every connection: aborted (sockets dropped) on
    /// `stop` or drop.
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl WsServer {
    pub async fn start(options: Options) -> WsServer {
        let bind = options
            .addr
            .unwrap_or_else(|| "127.0.0.1:0".parse().unwrap());
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let conns = Arc::new(Mutex::new(Vec::new()));
        let tasks = Arc::new(Mutex::new(JoinSet::new()));
        let (s, c, t) = (Arc::clone(&seen), Arc::clone(&conns), Arc::clone(&tasks));
        tasks.lock().spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (tx, rx) = mpsc::unbounded_channel();
                c.lock().push(tx);
                let (options, seen) = (options.clone(), Arc::clone(&s));
                t.lock().spawn(async move {
                    match &options.tls {
                        None => serve(tcp, rx, options, seen).await,
                        Some(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(config));
                            // A client that refused the certificate ends here.
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                serve(tls, rx, options, seen).await;
                            }
                        }
                    }
                });
            }
        });
        WsServer { addr, seen, conns, tasks }
    }

    /// A plain server with the default options.
    pub async fn echo() -> WsServer {
        WsServer::start(Options::default()).await
    }

    /// `ws://127.0.0.1:port/path` (or `wss://`).
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/path", self.addr)
    }

    pub fn handshakes(&self) -> usize {
        self.seen.handshakes.load(Ordering::SeqCst)
    }

    pub fn text_pings(&self) -> usize {
        self.seen.text_pings.load(Ordering::SeqCst)
    }

    pub fn pongs(&self) -> usize {
        self.seen.pongs.load(Ordering::SeqCst)
    }

    /// Every connection open so far sends `msg` unasked; returns once each
    /// has written it.
    pub async fn send_all(&self, msg: Message) {
        let acks: Vec<_> = self
            .conns
            .lock()
            .iter()
            .filter_map(|tx| {
                let (ack, done) = oneshot::channel();
                tx.send(Cmd::Send(msg.clone(), ack)).ok().map(|()| done)
            })
            .collect();
        assert!(!acks.is_empty(), "no connection to send on");
        for done in acks {
            let _ = done.await;
        }
    }

    /// Every connection open so far stops reading and writing (a silently
    /// dead peer: the socket stays open, nothing is answered).
    pub fn mute_all(&self) {
        for tx in self.conns.lock().iter() {
            let _ = tx.send(Cmd::Mute);
        }
    }

    /// Stops listening and drops every connection (the clients see FIN).
    pub fn stop(&self) {
        self.tasks.lock().abort_all();
    }
}

impl Drop for WsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One connection: the handshake, then echo and commands until it ends.
async fn serve<S>(io: S, mut cmds: mpsc::UnboundedReceiver<Cmd>, options: Options, seen: Arc<Seen>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The signature tungstenite's handshake callback has.
    #[allow(clippy::result_large_err)]
    let check = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let header = |name| {
            req.headers()
                .get(name)
                .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
        };
        let (auth, protocols) = (header("authorization"), header("sec-websocket-protocol"));
        seen.headers.lock().push((auth.clone(), protocols.clone()));
        if let Some(token) = options.token
            && auth.as_deref() != Some(&format!("Bearer {token}"))
        {
            let mut refusal = ErrorResponse::new(Some("bad token".into()));
            *refusal.status_mut() = StatusCode::UNAUTHORIZED;
            return Err(refusal);
        }
        // The first subprotocol asked for is chosen.
        if let Some(first) = protocols.as_deref().and_then(|p| p.split(',').next()) {
            let value = HeaderValue::from_str(first.trim()).unwrap();
            resp.headers_mut().insert("sec-websocket-protocol", value);
        }
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(io, check).await else {
        return;
    };
    seen.handshakes.fetch_add(1, Ordering::SeqCst);
    if let Some(greeting) = options.greeting
        && ws.send(Message::text(greeting)).await.is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            // Commands first: a test's `mute_all` comes before the message
            // it then sends, and must win over it.
            biased;
            cmd = cmds.recv() => match cmd {
                Some(Cmd::Send(msg, ack)) => {
                    let _ = ws.send(msg).await;
                    let _ = ack.send(());
                }
                Some(Cmd::Mute) | None => {
                    // Holds the socket open, reading nothing, until aborted.
                    std::future::pending::<()>().await;
                }
            },
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) if t.as_str() == "ping" && options.text_pong.is_some() => {
                    seen.text_pings.fetch_add(1, Ordering::SeqCst);
                    let delay = options.text_pong.unwrap();
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let _ = ws.send(Message::text("pong")).await;
                }
                Some(Ok(Message::Text(t))) if t.as_str() == "pong" => {
                    seen.text_pongs.fetch_add(1, Ordering::SeqCst);
                }
                Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                    let _ = ws.send(msg).await;
                }
                Some(Ok(Message::Pong(_))) => {
                    seen.pongs.fetch_add(1, Ordering::SeqCst);
                }
                Some(Ok(Message::Close(_))) => {
                    seen.closes.fetch_add(1, Ordering::SeqCst);
                }
                Some(Ok(Message::Ping(_))) => {
                    seen.pings.fetch_add(1, Ordering::SeqCst);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
        }
    }
}

/// A Close frame with `code` and `reason`.
pub fn close_frame(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.into(),
        reason: reason.to_owned().into(),
    }))
}

/// Time under a paused clock for tests with real sockets: while it lives,
/// tokio does not advance the clock on its own, and time moves only by
/// [`advance`](ManualClock::advance). Waits for I/O meanwhile are real
/// waits, bounded in real time ([`until`], [`Watch::arrived`]).
///
/// Auto-advance does not suit real sockets: when every task waits, tokio
/// polls the I/O driver once without waiting and then jumps to the next
/// timer even if that poll woke a task, and a loopback write may reach the
/// peer's socket a little later (the kernel can defer it), so a reply on
/// its way races the timeout that waits for it. A blocking task (this
/// guard's) inhibits auto-advance until it ends.
pub struct ManualClock {
    _stop: std::sync::mpsc::Sender<()>,
}

impl ManualClock {
    pub fn start() -> ManualClock {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        tokio::task::spawn_blocking(move || {
            let _ = stopped.recv();
        });
        ManualClock { _stop: stop }
    }

    /// Moves the clock forward by `d` (the timers due fire), then lets the
    /// tasks they woke run.
    pub async fn advance(&self, d: Duration) {
        tokio::time::advance(d).await;
        super::settle().await;
    }
}

/// Waits until `cond` holds, for at most [`super::BOUND`] of real time
/// (under a [`ManualClock`] too: no timer involved).
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < super::BOUND,
            "{what}: not within {:?}",
            super::BOUND
        );
        tokio::task::yield_now().await;
    }
}

/// A second descriptor on a connection's socket, so a test can wait for
/// the server's bytes or FIN to reach it (readiness: it consumes nothing)
/// while the connection sits idle in the pool.
pub struct Watch(socket2::Socket);

impl Watch {
    pub fn new(conn: &connpool::managers::websocket::WsConn) -> Watch {
        Watch(socket2::SockRef::from(conn.tcp()).try_clone().unwrap())
    }

    /// Waits until something the socket had not yet read reached it, for
    /// at most [`super::BOUND`] of real time.
    pub async fn arrived(&self) {
        let dup: std::net::TcpStream = self.0.try_clone().unwrap().into();
        let stream = tokio::net::TcpStream::from_std(dup).unwrap();
        until("bytes or FIN from the server", || {
            stream.readable().now_or_never().is_some()
        })
        .await;
    }
}
