//! A fault-injecting TCP proxy on 127.0.0.1, in front of any upstream
//! address (the in-process echo server, a throwaway PostgreSQL, later a gRPC
//! server): [`FaultProxy`]. Its [`Fault`] is switched at run time and acts
//! on live connections as well as new ones:
//!
//! - `Fault::None`: pass-through.
//! - `Fault::Blackhole`: a half-open peer (dead NAT, crashed host). Every
//!   byte read from either side is discarded, nothing is forwarded, no side
//!   is closed or reset (a FIN is held back too). New connections are
//!   accepted and held without dialing upstream. When the fault clears, a
//!   held connection that never reached upstream is closed (FIN); a live one
//!   carries on, its lost bytes lost (the stream is out of step: a client
//!   must have given up on the request whose reply was lost).
//! - `Fault::Reset`: every live connection is reset (`SO_LINGER 0`, then
//!   dropped: the client sees RST) the moment the fault is set, and every
//!   new one right after it is accepted.
//! - `Fault::Delay`: each chunk, either way, is held this long before it is
//!   forwarded.
//! - `Fault::Freeze`: a frozen server (`SIGSTOP`): the proxy reads nothing
//!   from either side and dials nothing, so the kernel still accepts new
//!   connections and acknowledges what clients send (until its buffers
//!   fill), and nothing is answered. When the fault clears, everything
//!   held goes through, late: replies to requests whose clients gave up
//!   included.
//! - `Fault::CloseAfter`: each connection forwards this many more bytes
//!   (both directions together, counted from when it sees the fault), then
//!   both sides are closed (FIN), mid-message if that is where the budget
//!   ends.
//!
//! [`FaultProxy::sever`] turns every connection open now into a black hole
//! for good, while new ones pass: the flows a NAT or a rebooted host forgot,
//! which no local check (`health`'s peek) can tell from healthy ones.
//!
//! The proxy counts the connections it accepted (= dial attempts that
//! reached it) and the connections the fault cut (reset, closed). Dropping
//! it stops the listener and closes every connection it holds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does to traffic; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    Blackhole,
    Reset,
    Delay(Duration),
    CloseAfter(usize),
    Freeze,
}

#[derive(Default)]
struct Tally {
    accepted: AtomicUsize,
    /// Connections the proxy reset or closed because of a fault.
    cut: AtomicUsize,
    /// Connections currently held (either side open).
    live: AtomicUsize,
    /// Connections accepted before this number were severed.
    severed_below: AtomicUsize,
}

/// A fault-injecting TCP proxy on 127.0.0.1 to `upstream`.
pub struct FaultProxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    fault: watch::Sender<Fault>,
    counts: Arc<Tally>,
    acceptor: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1, passing traffic through.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (fault, rx) = watch::channel(Fault::None);
        let counts = Arc::new(Tally::default());
        let c = Arc::clone(&counts);
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let id = c.accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(id, client, upstream, rx.clone(), Arc::clone(&c)));
            }
        });
        FaultProxy { addr, upstream, fault, counts, acceptor }
    }

    /// Switches the fault (live connections see it at once).
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// Back to pass-through.
    pub fn clear(&self) {
        self.set(Fault::None);
    }

    /// Every connection accepted so far becomes a black hole for good
    /// (whatever the fault later); new connections are not affected.
    pub fn sever(&self) {
        self.counts.severed_below.store(
            self.counts.accepted.load(Ordering::SeqCst),
            Ordering::SeqCst,
        );
        // Wake the connection tasks: same fault, new version.
        self.fault.send_modify(|_| {});
    }

    /// Shorthand for `set(Fault::Blackhole)`.
    pub fn blackhole(&self) {
        self.set(Fault::Blackhole);
    }

    pub fn fault(&self) -> Fault {
        *self.fault.borrow()
    }

    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Connections accepted so far: the dial attempts that reached the proxy.
    pub fn accepted(&self) -> usize {
        self.counts.accepted.load(Ordering::SeqCst)
    }

    /// Connections reset or closed by a fault so far.
    pub fn cut(&self) -> usize {
        self.counts.cut.load(Ordering::SeqCst)
    }

    /// Connections the proxy holds now.
    pub fn live(&self) -> usize {
        self.counts.live.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The listener goes with the acceptor; the connection tasks see the
        // watch sender gone and close their sockets.
        self.acceptor.abort();
    }
}

/// Counts a held connection while it lives.
struct Live(Arc<Tally>);

impl Live {
    fn new(c: &Arc<Tally>) -> Live {
        c.live.fetch_add(1, Ordering::SeqCst);
        Live(Arc::clone(c))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

fn rst(stream: &TcpStream) {
    let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// Waits until the fault changes; `None` once the proxy is gone.
async fn next_fault(rx: &mut watch::Receiver<Fault>) -> Option<Fault> {
    rx.changed().await.ok()?;
    Some(*rx.borrow_and_update())
}

async fn serve(
    id: usize,
    client: TcpStream,
    upstream: SocketAddr,
    mut rx: watch::Receiver<Fault>,
    counts: Arc<Tally>,
) {
    let _live = Live::new(&counts);
    let mut fault = *rx.borrow_and_update();
    // Frozen: accepted by the kernel, not served until the thaw.
    while fault == Fault::Freeze {
        let Some(f) = next_fault(&mut rx).await else {
            return;
        };
        fault = f;
    }
    match fault {
        Fault::Reset => {
            counts.cut.fetch_add(1, Ordering::SeqCst);
            rst(&client);
            return;
        }
        Fault::Blackhole => {
            // Hold the socket, read and discard, until the fault changes.
            let mut client = client;
            let mut buf = [0u8; 4096];
            let mut eof = false;
            loop {
                tokio::select! {
                    biased;
                    f = next_fault(&mut rx) => match f {
                        None => return,
                        Some(_) if id < counts.severed_below.load(Ordering::SeqCst) => {}
                        Some(Fault::Blackhole) => {}
                        Some(Fault::Reset) => {
                            counts.cut.fetch_add(1, Ordering::SeqCst);
                            rst(&client);
                            return;
                        }
                        Some(_) => {
                            counts.cut.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    },
                    n = client.read(&mut buf), if !eof => {
                        if n.unwrap_or(0) == 0 {
                            eof = true;
                        }
                    }
                }
            }
        }
        _ => {}
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        // Upstream down: the client sees the refusal as a reset.
        rst(&client);
        return;
    };
    let _ = server.set_nodelay(true);
    let _ = client.set_nodelay(true);
    pump(id, client, server, rx, counts).await;
}

/// Forwards both ways under the current fault until either side ends or a
/// fault cuts the connection.
async fn pump(
    id: usize,
    mut client: TcpStream,
    mut server: TcpStream,
    mut rx: watch::Receiver<Fault>,
    counts: Arc<Tally>,
) {
    let mut fault = *rx.borrow_and_update();
    let severed = |c: &Tally| id < c.severed_below.load(Ordering::SeqCst);
    // A reset set while the upstream was dialed applies now (the loop
    // below acts on changes only).
    if fault == Fault::Reset {
        counts.cut.fetch_add(1, Ordering::SeqCst);
        rst(&client);
        rst(&server);
        return;
    }
    let mut budget = match fault {
        Fault::CloseAfter(n) => n,
        _ => usize::MAX,
    };
    let mut cbuf = [0u8; 8192];
    let mut sbuf = [0u8; 8192];
    // EOF seen while blackholed, not passed on yet.
    let mut held_eof = (false, false);
    loop {
        // Biased: a fault switched before bytes arrived applies to them.
        let (n, from_client) = tokio::select! {
            biased;
            f = next_fault(&mut rx) => {
                let Some(mut f) = f else { return };
                if severed(&counts) {
                    f = Fault::Blackhole;
                }
                fault = f;
                match f {
                    Fault::Reset => {
                        counts.cut.fetch_add(1, Ordering::SeqCst);
                        rst(&client);
                        rst(&server);
                        return;
                    }
                    Fault::CloseAfter(n) => budget = n,
                    Fault::None | Fault::Delay(_) => {
                        budget = usize::MAX;
                        if held_eof.0 || held_eof.1 {
                            // The held FIN goes through now.
                            return;
                        }
                    }
                    Fault::Blackhole | Fault::Freeze => {}
                }
                if budget == 0 {
                    counts.cut.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                continue;
            }
            // Frozen: nothing read, so the kernel holds it.
            r = client.read(&mut cbuf), if !held_eof.0 && fault != Fault::Freeze => (r.unwrap_or(0), true),
            r = server.read(&mut sbuf), if !held_eof.1 && fault != Fault::Freeze => (r.unwrap_or(0), false),
        };
        if n == 0 {
            if fault == Fault::Blackhole {
                if from_client {
                    held_eof.0 = true;
                } else {
                    held_eof.1 = true;
                }
                continue;
            }
            // End of either side (or an error): close both.
            return;
        }
        if severed(&counts) {
            fault = Fault::Blackhole;
        }
        let (buf, to) = if from_client {
            (&cbuf[..n], &mut server)
        } else {
            (&sbuf[..n], &mut client)
        };
        match fault {
            Fault::Blackhole => continue,
            Fault::Delay(d) => tokio::time::sleep(d).await,
            _ => {}
        }
        let take = n.min(budget);
        if to.write_all(&buf[..take]).await.is_err() {
            return;
        }
        if budget != usize::MAX {
            budget -= take;
            if budget == 0 {
                counts.cut.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }
}
