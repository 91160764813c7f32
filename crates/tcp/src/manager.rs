//! [`TcpManager`]: dials a [`Destination`], sets the socket options, and
//! judges whether a connection may be reused.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::net::TcpStream;

use super::conn::{PeerState, TcpConn};
use super::destination::{Destination, Repr, context};
use super::keepalive::TcpKeepaliveConfig;
use super::ping::{PingFn, PingFuture, line_ping};
use super::socket::{self, SocketOptions};
use crate::transport::{TlsConfig, secure};
use connpool_core::{Health, Manager};

/// A [`Manager`] of TCP connections, keyed by [`Destination`], with an
/// application-level ping where the protocol has one.
///
/// | setting | default | why |
/// |---|---|---|
/// | [`nodelay`](TcpManager::nodelay) | on | small request/response messages are not held back by Nagle |
/// | [`tcp_keepalive`](TcpManager::tcp_keepalive), [`tcp_keepalive_interval`](TcpManager::tcp_keepalive_interval), [`tcp_keepalive_retries`](TcpManager::tcp_keepalive_retries) | 60 s / 10 s / 3, and `TCP_USER_TIMEOUT` 90 s from them (Linux) | a dead peer is found within 90 s, even on a lent connection: by the probes while nothing is in flight, by the user timeout while a write waits for its acknowledgement |
/// | [`with_ping`](TcpManager::with_ping), [`line_ping`](TcpManager::line_ping) | none: a ping is the local peek of `health` | the protocol is unknown; give a request/reply pair or your own ping |
/// | [`unread_data_is_broken`](TcpManager::unread_data_is_broken) | on | an unsolicited byte on an idle request/response stream means it is out of step |
/// | [`tls`](TcpManager::tls), [`alpn`](TcpManager::alpn) (`tls` feature) | plain TCP | TLS over every connection, the certificate chain and host name verified |
///
/// `connect` resolves the destination, tries each address in turn, and sets
/// the socket options. While an address has not answered, a fresh attempt
/// starts beside the others every 500 ms (the first to connect wins): a
/// SYN lost to a partition is sent again by the kernel only a second or
/// more later, so a dial begun during a partition connects within 500 ms
/// of its heal (every manager dials through here, PostgreSQL's dial too).
/// Failures are [`io::Error`]s of the original kind, whose message names
/// the destination (and the address tried, for a name) and carries the
/// original error's message. The pool's `connect_timeout` bounds the whole
/// dial: there is no per-address timeout, so an address that swallows SYNs
/// uses it all up. `health` is a non-blocking one-byte peek (no I/O
/// wait, nothing consumed) plus the abandoned-ping and abandoned-exchange
/// flags of [`TcpConn`] (over TLS, bytes waiting may be the server's
/// session tickets, which arrive unasked: TLS reads them then, without
/// waiting, and only data for the application or a close is a verdict).
/// `ping` fails at once if `health` would say broken,
/// then runs the application-level ping, if any. `close` drops the stream (the kernel sends FIN,
/// or RST if unread data was pending).
///
/// A borrower that gives up mid-exchange (a deadline, a cancelled future)
/// while its read waits for the reply, or its write waits to go out, gives
/// back a broken connection: [`TcpConn`] watches its own reads and writes,
/// so the late reply reaches nobody. A borrower that gives up between the
/// write and the read should call [`Pooled::mark_broken`](connpool_core::Pooled::mark_broken): a reply
/// that arrives after the connection came back is otherwise only caught
/// if it arrives before the next checkout.
///
/// The guard a checkout returns, [`Pooled<TcpManager>`](connpool_core::Pooled), is
/// itself [`AsyncRead`](tokio::io::AsyncRead) +
/// [`AsyncWrite`](tokio::io::AsyncWrite), reading and writing the
/// [`TcpConn`] it holds: pass `&mut conn` to `tokio::io::copy` or any code
/// generic over a reader or writer, without detaching the connection.
///
/// ```no_run
/// use connpool_tcp::pool::Pool;
/// use connpool_tcp::{Destination, TcpManager};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(TcpManager::new()).build().await?;
/// let mut conn = pool.get_for(&Destination::from("localhost:7")).await?;
/// conn.write_all(b"hello\n").await?;
/// // The echo, copied out of the guard into any writer.
/// let mut reply = Vec::new();
/// tokio::io::copy(&mut (&mut conn).take(6), &mut reply).await?;
/// assert_eq!(reply, b"hello\n");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TcpManager {
    nodelay: bool,
    keepalive: Option<TcpKeepaliveConfig>,
    unread_data_is_broken: bool,
    /// The application-level ping, if any.
    ping: Option<PingFn>,
    /// TLS over every connection, if set (with `alpn` offered, if any).
    tls: Option<TlsConfig>,
    /// The ALPN protocols to offer over TLS (none: the configuration's).
    alpn: Vec<Vec<u8>>,
}

impl fmt::Debug for TcpManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpManager")
            .field("nodelay", &self.nodelay)
            .field("keepalive", &self.keepalive)
            .field("unread_data_is_broken", &self.unread_data_is_broken)
            .field("tls", &self.tls.is_some())
            .field("alpn", &self.alpn.len())
            .finish_non_exhaustive()
    }
}

impl TcpManager {
    /// A manager with the defaults: `TCP_NODELAY` on, kernel keepalive
    /// 60 s / 10 s / 3, no application-level ping.
    pub fn new() -> Self {
        Self {
            nodelay: true,
            keepalive: Some(TcpKeepaliveConfig::default()),
            unread_data_is_broken: true,
            ping: None,
            tls: None,
            alpn: Vec::new(),
        }
    }
}

impl Default for TcpManager {
    fn default() -> Self {
        Self::new()
    }
}

impl TcpManager {
    /// Sets `TCP_NODELAY` on new connections (default on).
    pub fn nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = nodelay;
        self
    }

    /// Kernel TCP keepalive of new connections: the idle time before the
    /// first probe (`TCP_KEEPIDLE`; `TCP_KEEPALIVE` on macOS), default
    /// [`TCP_KEEPALIVE_TIME`](super::TCP_KEEPALIVE_TIME) (60 s);
    /// `None` leaves `SO_KEEPALIVE` off (and sets no `TCP_USER_TIMEOUT`).
    ///
    /// Kernel keepalive probes only an *idle* socket (nothing sent and
    /// unacked). It complements the pool's own keepalive (an app-level ping
    /// of idle pooled connections, see [`with_ping`](Self::with_ping)): it also watches
    /// connections that are lent while their user waits on a read, and
    /// keeps NAT mappings of long-lived quiet connections alive.
    ///
    /// A socket with data in flight is never probed: a write to a vanished
    /// peer would be retransmitted for TCP's own minutes (about 15 on
    /// Linux). So on Linux the same settings also set `TCP_USER_TIMEOUT` to
    /// `time + interval × retries` (90 s by default), as grpc-go does: a
    /// write unacknowledged for that long fails the connection, and the
    /// deadline a dead peer is found by is the same whether the connection
    /// was quiet or busy. (With both set, Linux closes an idle connection
    /// at that same point, so the probes' own verdict is unchanged.) It
    /// sends nothing: a socket option, checked by the kernel's own
    /// retransmission timer. The kernel counts in whole seconds (Windows in
    /// milliseconds): sub-second parts are dropped, and values are raised
    /// to at least 1 s (1 probe for the retries), which every system
    /// accepts. On systems where `socket2` cannot set the interval or the
    /// retries (OpenBSD, Solaris, Haiku…), those are the system's.
    pub fn tcp_keepalive(mut self, time: Option<Duration>) -> Self {
        let rest = self.keepalive.unwrap_or_default();
        self.keepalive = time.map(|time| TcpKeepaliveConfig { time, ..rest });
        self
    }

    /// Time between unanswered kernel keepalive probes (`TCP_KEEPINTVL`),
    /// default [`TCP_KEEPALIVE_INTERVAL`](super::TCP_KEEPALIVE_INTERVAL)
    /// (10 s). Applies while [`tcp_keepalive`](Self::tcp_keepalive) is on.
    pub fn tcp_keepalive_interval(mut self, interval: Duration) -> Self {
        if let Some(k) = &mut self.keepalive {
            k.interval = interval;
        }
        self
    }

    /// Unanswered kernel keepalive probes before the connection is dropped
    /// (`TCP_KEEPCNT`), default
    /// [`TCP_KEEPALIVE_RETRIES`](super::TCP_KEEPALIVE_RETRIES) (3).
    /// Applies while [`tcp_keepalive`](Self::tcp_keepalive) is on.
    pub fn tcp_keepalive_retries(mut self, retries: u32) -> Self {
        if let Some(k) = &mut self.keepalive {
            k.retries = retries;
        }
        self
    }

    /// The application-level ping of the protocol spoken over the stream,
    /// used by health checks and background keepalive: one round trip that
    /// proves the peer still answers; an error (or never finishing) means
    /// the connection is not healthy. Default none: a ping is the local
    /// peek that finds peers that closed, not peers that went silent. (Not
    /// named `ping`, which would shadow [`Manager::ping`] in method calls.)
    ///
    /// `ping` gets the connection (over TLS when it has it), idle: nothing
    /// unread. Its future may be dropped at any await (timeout, getter
    /// gone): the [`TcpConn`] then reports itself broken and is closed, so
    /// a ping needs no cleanup. It is user code: a panic is a failed ping.
    ///
    /// ```
    /// use connpool_tcp::{TcpConn, TcpManager};
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// // A binary protocol: opcode 0x01 is a ping, answered by a 0x02 byte.
    /// let manager = TcpManager::new().with_ping(|conn: &mut TcpConn| {
    ///     Box::pin(async move {
    ///         conn.write_all(&[0x01]).await?;
    ///         match conn.read_u8().await? {
    ///             0x02 => Ok(()),
    ///             other => Err(std::io::Error::new(
    ///                 std::io::ErrorKind::InvalidData,
    ///                 format!("unexpected reply {other:#x}"),
    ///             )),
    ///         }
    ///     })
    /// });
    /// ```
    pub fn with_ping<F>(mut self, ping: F) -> Self
    where
        F: for<'a> Fn(&'a mut TcpConn) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'a>>
            + Send
            + Sync
            + 'static,
    {
        self.ping = Some(Arc::new(ping));
        self
    }

    /// An application-level ping of one fixed exchange: writes `request`,
    /// then reads exactly `expect.len()` bytes, which must equal `expect`
    /// (e.g. `"PING\r\n"` → `"+PONG\r\n"`). A different reply fails the
    /// ping with [`InvalidData`](io::ErrorKind::InvalidData), and the
    /// connection is then broken (its stream position is unknown).
    ///
    /// The reply must be exactly `expect`: a reply with variable content
    /// (memcached's `version\r\n` → `VERSION 1.6.21\r\n`) would leave bytes
    /// unread, which the manager then treats as a stream out of step (see
    /// [`unread_data_is_broken`](Self::unread_data_is_broken)). Give
    /// those a ping of your own ([`with_ping`](Self::with_ping)).
    pub fn line_ping(mut self, request: impl Into<Vec<u8>>, expect: impl Into<Vec<u8>>) -> Self {
        self.ping = Some(line_ping(request.into(), expect.into()));
        self
    }

    /// Whether bytes waiting unread on a connection coming back to the pool,
    /// or taken from it, make it broken, and so does a read left waiting
    /// for data when it came back (default on). Right for request/response
    /// protocols, where such bytes are a reply nobody will read (lending the
    /// connection would hand it to the next user). Turn it off for protocols
    /// whose server sends unsolicited messages (greetings, notifications)
    /// that the next borrower is expected to read. (A write left waiting
    /// makes the connection broken either way: half a message may be out.)
    pub fn unread_data_is_broken(mut self, on: bool) -> Self {
        self.unread_data_is_broken = on;
        self
    }

    /// TLS over every connection (`tls` feature): the handshake follows
    /// the TCP dial, with SNI from the destination's host, and the
    /// server's certificate must chain to [`TlsConfig`]'s roots and name
    /// that host (or the configuration's
    /// [`server_name`](crate::tls::TlsConfig::server_name)). ALPN: the
    /// configuration's own list, or [`alpn`](Self::alpn)'s.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        let alpn: Vec<&[u8]> = self.alpn.iter().map(Vec::as_slice).collect();
        self.tls = Some(if alpn.is_empty() {
            tls
        } else {
            tls.with_alpn(&alpn)
        });
        self
    }

    /// Offers `protocols` in ALPN (for example `[b"redis"]`) over
    /// [`tls`](Self::tls), set before or after this (without TLS there is
    /// nothing to offer).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn alpn(mut self, protocols: &[&[u8]]) -> Self {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self.tls = self.tls.map(|tls| tls.with_alpn(protocols));
        self
    }

    /// The TCP half of a dial: resolves `dest`, connects to an address,
    /// sets the socket options; the stream and the address that answered.
    pub(crate) async fn dial(&self, dest: &Destination) -> io::Result<(TcpStream, SocketAddr)> {
        let addrs = dest.resolve().await?;
        // A name is followed by the address it resolved to; an address is
        // said once.
        let target = |addr: SocketAddr| match dest.0 {
            Repr::Addr(_) => addr.to_string(),
            Repr::Name(_) => format!("{dest} ({addr})"),
        };
        let mut last = None;
        for addr in addrs {
            match socket::connect(addr).await {
                Ok(stream) => {
                    self.configure(&stream)
                        .map_err(|e| context(e, format!("configuring {}", target(addr))))?;
                    return Ok((stream, addr));
                }
                Err(e) => last = Some(context(e, format!("connecting to {}", target(addr)))),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    fn configure(&self, stream: &TcpStream) -> io::Result<()> {
        SocketOptions {
            nodelay: self.nodelay,
            keepalive: self.keepalive.map(TcpKeepaliveConfig::to_socket2),
            user_timeout: self.keepalive.map(TcpKeepaliveConfig::user_timeout),
        }
        .apply(stream)
    }

    fn check(&self, conn: &mut TcpConn) -> bool {
        // A failed read or write leaves the stream untrusted; a write left
        // waiting may have sent half a message; a read left waiting was a
        // reply given up on (unless unsolicited data is this
        // protocol's way: then it was a wait for the next push).
        let io = conn.watch();
        if conn.ping_in_flight
            || io.failed
            || io.write_waiting
            || (io.read_waiting && self.unread_data_is_broken)
        {
            return true;
        }
        match conn.peer_state() {
            PeerState::Quiet => false,
            // Over TLS, bytes may be the server's session tickets, which
            // arrive unasked after the handshake: TLS reads them, and only
            // what they carry for the application (or a close) counts.
            PeerState::Unread if conn.is_tls() => self.unread_data_is_broken && conn.tls_has_more(),
            PeerState::Unread => self.unread_data_is_broken,
            PeerState::Gone => true,
        }
    }
}

#[async_trait]
impl Manager for TcpManager {
    type Key = Destination;
    type Connection = TcpConn;
    type Error = io::Error;

    /// The key's `Display` form (`host:port`).
    fn key_name(&self, key: &Destination) -> String {
        key.to_string()
    }

    async fn connect(&self, dest: &Destination) -> io::Result<TcpConn> {
        let (tcp, _) = self.dial(dest).await?;
        TcpConn::of(secure(tcp, self.tls.as_ref(), dest).await?)
    }

    async fn ping(&self, conn: &mut TcpConn) -> io::Result<()> {
        if self.check(conn) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection closed by the peer, or out of step",
            ));
        }
        let Some(ping) = &self.ping else {
            return Ok(());
        };
        conn.ping_in_flight = true;
        let exchange: PingFuture<'_> = ping(conn);
        exchange.await?;
        // Only reached when the exchange completed: a dropped or failed ping
        // leaves the flag set, and the connection broken.
        conn.ping_in_flight = false;
        Ok(())
    }

    fn health(&self, conn: &mut TcpConn) -> Health {
        if self.check(conn) {
            Health::Broken
        } else {
            Health::Ready
        }
    }
}
