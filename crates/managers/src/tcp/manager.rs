//! [`TcpManager`]: dials a [`Destination`], sets the socket options, and
//! judges whether a connection may be reused.

use std::io;
use std::net::SocketAddr;

use async_trait::async_trait;
use tokio::net::TcpStream;

use super::conn::{PeerState, TcpConn};
use super::destination::{Destination, Repr, context};
use super::keepalive::TcpKeepaliveConfig;
use super::ping::{NoPing, Ping};
use super::socket::SocketOptions;
use connpool_core::Manager;

/// A [`Manager`] of TCP connections, keyed by [`Destination`], with the
/// application-level ping `P` (see [`Ping`]).
///
/// | setting | default | why |
/// |---|---|---|
/// | [`nodelay`](TcpManager::nodelay) | on | small request/response messages are not held back by Nagle |
/// | [`tcp_keepalive`](TcpManager::tcp_keepalive) | 60 s / 10 s / 3 ([`TcpKeepaliveConfig`]), and `TCP_USER_TIMEOUT` 90 s from them (Linux) | a dead peer is found within 90 s, even on a lent connection: by the probes while nothing is in flight, by the user timeout while a write waits for its acknowledgement |
/// | [`with_ping`](TcpManager::with_ping) | [`NoPing`] | the protocol is unknown; pass a [`LinePing`](super::LinePing) or your [`Ping`] |
/// | [`unread_data_is_broken`](TcpManager::unread_data_is_broken) | on | an unsolicited byte on an idle request/response stream means it is out of step |
///
/// `connect` resolves the destination, tries each address in turn, and sets
/// the socket options; failures are [`io::Error`]s of the original kind,
/// whose message names the destination (and the address tried, for a name)
/// and carries the original error's message. The pool's `connect_timeout`
/// bounds the whole dial: there is no per-address timeout, so an address
/// that swallows SYNs uses it all up. `is_broken` is a non-blocking one-byte
/// peek (no I/O wait, nothing consumed) plus the abandoned-ping flag of
/// [`TcpConn`]. `ping` fails at once if `is_broken` would say so, then runs
/// `P`. `close` drops the stream (the kernel sends FIN, or RST if unread data
/// was pending).
///
/// A borrower that gives up mid-request (an error, a cancelled future) should
/// call [`Pooled::mark_broken`](connpool_core::Pooled::mark_broken): a reply that
/// arrives after the connection came back is only caught if it arrives before
/// the next checkout.
///
/// The guard a checkout returns, [`Pooled<TcpManager<P>>`](connpool_core::Pooled), is
/// itself [`AsyncRead`](tokio::io::AsyncRead) +
/// [`AsyncWrite`](tokio::io::AsyncWrite), reading and writing the
/// [`TcpConn`] it holds: pass `&mut conn` to `tokio::io::copy` or any code
/// generic over a reader or writer, without detaching the connection.
///
/// ```no_run
/// use connpool::Pool;
/// use connpool::managers::tcp::{Destination, TcpManager};
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
#[derive(Debug, Clone)]
pub struct TcpManager<P = NoPing> {
    nodelay: bool,
    keepalive: Option<TcpKeepaliveConfig>,
    unread_data_is_broken: bool,
    ping: P,
}

impl TcpManager<NoPing> {
    /// A manager with the defaults: `TCP_NODELAY` on, kernel keepalive
    /// 60 s / 10 s / 3, no application-level ping.
    pub fn new() -> Self {
        Self {
            nodelay: true,
            keepalive: Some(TcpKeepaliveConfig::default()),
            unread_data_is_broken: true,
            ping: NoPing,
        }
    }
}

impl Default for TcpManager<NoPing> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Ping> TcpManager<P> {
    /// Sets `TCP_NODELAY` on new connections (default on).
    pub fn nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = nodelay;
        self
    }

    /// Kernel TCP keepalive of new connections; `None` leaves `SO_KEEPALIVE`
    /// off. Default [`TcpKeepaliveConfig::default`] (60 s / 10 s / 3).
    pub fn tcp_keepalive(mut self, keepalive: impl Into<Option<TcpKeepaliveConfig>>) -> Self {
        self.keepalive = keepalive.into();
        self
    }

    /// The application-level ping used by health checks and background
    /// keepalive (default [`NoPing`]). (Not named `ping`, which would shadow
    /// [`Manager::ping`] in method calls.)
    pub fn with_ping<Q: Ping>(self, ping: Q) -> TcpManager<Q> {
        TcpManager {
            nodelay: self.nodelay,
            keepalive: self.keepalive,
            unread_data_is_broken: self.unread_data_is_broken,
            ping,
        }
    }

    /// Whether bytes waiting unread on a connection coming back to the pool,
    /// or taken from it, make it broken (default on). Right for
    /// request/response protocols, where such bytes are a reply nobody will
    /// read (lending the connection would hand it to the next user). Turn it
    /// off for protocols whose server sends unsolicited messages (greetings,
    /// notifications) that the next borrower is expected to read.
    pub fn unread_data_is_broken(mut self, on: bool) -> Self {
        self.unread_data_is_broken = on;
        self
    }

    /// The kernel keepalive settings, if on.
    pub fn tcp_keepalive_config(&self) -> Option<TcpKeepaliveConfig> {
        self.keepalive
    }

    /// Whether `TCP_NODELAY` is set on new connections.
    pub fn is_nodelay(&self) -> bool {
        self.nodelay
    }

    /// The application-level ping.
    pub fn pinger(&self) -> &P {
        &self.ping
    }

    fn configure(&self, stream: &TcpStream) -> io::Result<()> {
        SocketOptions {
            nodelay: self.nodelay,
            keepalive: self.keepalive.map(TcpKeepaliveConfig::to_socket2),
            user_timeout: self.keepalive.map(TcpKeepaliveConfig::user_timeout),
        }
        .apply(stream)
    }

    fn check(&self, conn: &TcpConn) -> bool {
        if conn.ping_in_flight {
            return true;
        }
        match conn.peer_state() {
            PeerState::Quiet => false,
            PeerState::Unread => self.unread_data_is_broken,
            PeerState::Gone => true,
        }
    }
}

#[async_trait]
impl<P: Ping> Manager for TcpManager<P> {
    type Key = Destination;
    type Connection = TcpConn;
    type Error = io::Error;

    /// The key's `Display` form (`host:port`).
    fn key_name(&self, key: &Destination) -> String {
        key.to_string()
    }

    async fn connect(&self, dest: &Destination) -> io::Result<TcpConn> {
        let addrs = dest.resolve().await?;
        // A name is followed by the address it resolved to; an address is
        // said once.
        let target = |addr: SocketAddr| match dest.0 {
            Repr::Addr(_) => addr.to_string(),
            Repr::Name(_) => format!("{dest} ({addr})"),
        };
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    self.configure(&stream)
                        .map_err(|e| context(e, format!("configuring {}", target(addr))))?;
                    return TcpConn::new(stream);
                }
                Err(e) => last = Some(context(e, format!("connecting to {}", target(addr)))),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    async fn ping(&self, conn: &mut TcpConn) -> io::Result<()> {
        if self.check(conn) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection closed by the peer, or out of step",
            ));
        }
        conn.ping_in_flight = true;
        self.ping.ping(&mut conn.stream).await?;
        // Only reached when the exchange completed: a dropped or failed ping
        // leaves the flag set, and `is_broken` true.
        conn.ping_in_flight = false;
        Ok(())
    }

    fn is_broken(&self, conn: &mut TcpConn) -> bool {
        self.check(conn)
    }
}
