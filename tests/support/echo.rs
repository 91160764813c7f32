//! In-process servers for the TCP manager's tests, on 127.0.0.1 only: a line
//! echo server that answers `ping\n` with `pong\n` (and can be told to close,
//! reset, go silent, hold its pongs or send unsolicited bytes). The proxy
//! that injects faults (black hole, reset, delay, close after N bytes) in
//! front of it is [`super::fault::FaultProxy`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use socket2::SockRef;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What a test can tell one server-side connection.
#[derive(Debug)]
enum Cmd {
    /// Drop the socket: the client sees FIN.
    Close,
    /// `SO_LINGER 0`, then drop: the client sees RST.
    Reset,
    /// Write these bytes unasked.
    Send(&'static [u8]),
    /// Answer the held ping.
    Release,
}

struct Handle {
    id: usize,
    cmd: mpsc::UnboundedSender<Cmd>,
    /// Pings get no answer.
    mute: Arc<AtomicBool>,
    /// Pings are answered only on `Cmd::Release`.
    hold: Arc<AtomicBool>,
}

struct Inner {
    accepted: AtomicUsize,
    current: AtomicUsize,
    max_current: AtomicUsize,
    pings: AtomicUsize,
    conns: Mutex<Vec<Handle>>,
    held_tx: mpsc::UnboundedSender<usize>,
}

/// A line echo server on 127.0.0.1: each line comes back as is, except
/// `ping\n`, answered with `pong\n`. Counts connections (accepted, open now,
/// most open at once) and pings.
pub struct EchoServer {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    held_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<usize>>,
}

impl EchoServer {
    pub async fn start() -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (held_tx, held_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            accepted: AtomicUsize::new(0),
            current: AtomicUsize::new(0),
            max_current: AtomicUsize::new(0),
            pings: AtomicUsize::new(0),
            conns: Mutex::new(Vec::new()),
            held_tx,
        });
        let server = Arc::clone(&inner);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let id = server.accepted.fetch_add(1, Ordering::SeqCst);
                let now = server.current.fetch_add(1, Ordering::SeqCst) + 1;
                server.max_current.fetch_max(now, Ordering::SeqCst);
                let (tx, rx) = mpsc::unbounded_channel();
                let mute = Arc::new(AtomicBool::new(false));
                let hold = Arc::new(AtomicBool::new(false));
                server.conns.lock().push(Handle {
                    id,
                    cmd: tx,
                    mute: Arc::clone(&mute),
                    hold: Arc::clone(&hold),
                });
                let server = Arc::clone(&server);
                tokio::spawn(serve(id, stream, rx, mute, hold, server));
            }
        });
        EchoServer { addr, inner, held_rx: tokio::sync::Mutex::new(held_rx) }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.inner.accepted.load(Ordering::SeqCst)
    }

    /// Most connections open at once.
    pub fn max_concurrent(&self) -> usize {
        self.inner.max_current.load(Ordering::SeqCst)
    }

    /// `ping\n` lines received.
    pub fn pings(&self) -> usize {
        self.inner.pings.load(Ordering::SeqCst)
    }

    fn each(&self, f: impl Fn(&Handle)) {
        for h in self.inner.conns.lock().iter() {
            f(h);
        }
    }

    /// Closes every connection accepted so far (FIN).
    pub fn close_all(&self) {
        self.each(|h| drop(h.cmd.send(Cmd::Close)));
    }

    /// Resets every connection accepted so far (RST).
    pub fn reset_all(&self) {
        self.each(|h| drop(h.cmd.send(Cmd::Reset)));
    }

    /// Sends `bytes` unasked on every connection accepted so far.
    pub fn send_all(&self, bytes: &'static [u8]) {
        self.each(|h| drop(h.cmd.send(Cmd::Send(bytes))));
    }

    /// Connections accepted so far stop answering pings (they stay open and
    /// keep echoing other lines). Takes effect at once.
    pub fn mute_all(&self) {
        self.each(|h| h.mute.store(true, Ordering::SeqCst));
    }

    /// Connections accepted so far hold each ping's answer until
    /// [`release_all`](Self::release_all); each held ping is reported to
    /// [`next_held_ping`](Self::next_held_ping). Takes effect at once.
    pub fn hold_all(&self) {
        self.each(|h| h.hold.store(true, Ordering::SeqCst));
    }

    /// Answers the held pings (and stops holding).
    pub fn release_all(&self) {
        self.each(|h| {
            h.hold.store(false, Ordering::SeqCst);
            let _ = h.cmd.send(Cmd::Release);
        });
    }

    /// Waits (at most 5 s) until a connection holds a ping; returns its id.
    pub async fn next_held_ping(&self) -> usize {
        let mut rx = self.held_rx.lock().await;
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("no ping was held within 5 s")
            .expect("server gone")
    }
}

struct Open(Arc<Inner>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve(
    id: usize,
    stream: TcpStream,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    mute: Arc<AtomicBool>,
    hold: Arc<AtomicBool>,
    server: Arc<Inner>,
) {
    let _open = Open(Arc::clone(&server));
    let mut stream = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None | Some(Cmd::Close) => return,
                Some(Cmd::Reset) => {
                    SockRef::from(stream.get_ref()).set_linger(Some(Duration::ZERO)).unwrap();
                    return;
                }
                Some(Cmd::Send(bytes)) => {
                    if stream.get_mut().write_all(bytes).await.is_err() {
                        return;
                    }
                }
                Some(Cmd::Release) => {}
            },
            n = stream.read_until(b'\n', &mut line) => {
                match n {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let reply: Vec<u8> = if line == b"ping\n" {
                    server.pings.fetch_add(1, Ordering::SeqCst);
                    if mute.load(Ordering::SeqCst) {
                        line.clear();
                        continue;
                    }
                    if hold.load(Ordering::SeqCst) {
                        let _ = server.held_tx.send(id);
                        loop {
                            match cmds.recv().await {
                                Some(Cmd::Release) => break,
                                Some(Cmd::Send(_)) => {}
                                Some(Cmd::Reset) => {
                                    SockRef::from(stream.get_ref())
                                        .set_linger(Some(Duration::ZERO))
                                        .unwrap();
                                    return;
                                }
                                None | Some(Cmd::Close) => return,
                            }
                        }
                    }
                    b"pong\n".to_vec()
                } else {
                    std::mem::take(&mut line)
                };
                line.clear();
                if stream.get_mut().write_all(&reply).await.is_err() {
                    return;
                }
            }
        }
    }
}
