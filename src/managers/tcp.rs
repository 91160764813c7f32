//! A [`Manager`] for TCP streams: [`TcpManager`].
//!
//! - **Keyed by destination** ([`Destination`]): a `SocketAddr`, or a
//!   `"host:port"` string resolved asynchronously on every dial (so DNS
//!   changes are followed as connections are replaced). Each resolved address
//!   is tried in turn. The pool's `connect_timeout` bounds the whole dial,
//!   resolution included.
//! - **`TCP_NODELAY` on** by default: pooled connections mostly carry small
//!   request/response messages, which Nagle's algorithm would delay.
//! - **Kernel TCP keepalive** on by default ([`TcpKeepaliveConfig`],
//!   60 s / 10 s / 3 probes), so a peer that vanished is noticed even while a
//!   connection is lent and its user waits on a read.
//! - **Dead-peer detection on checkout and return** ([`Manager::is_broken`]):
//!   a non-blocking `MSG_PEEK` of one byte, which consumes nothing, tells
//!   whether the peer closed (FIN: end of stream) or reset (RST: an error).
//!   Bytes nobody asked for waiting on an idle connection (a late reply to a
//!   request whose borrower gave up) mean the stream is out of step: by
//!   default that connection is broken too
//!   ([`unread_data_is_broken`](TcpManager::unread_data_is_broken)).
//! - **An application-level ping** ([`Ping`]), supplied for the protocol
//!   spoken over the stream, used by the pool's health checks and background
//!   keepalive: [`LinePing`] for a fixed request / reply such as
//!   `ping\n` → `pong\n`, or your own implementation. Without one
//!   ([`NoPing`]) a ping is the same local peek: it finds peers that closed,
//!   not peers that went silent.
//! - **Abandoned pings**: the pool drops a ping future at its timeout or when
//!   its getter gives up. A [`TcpConn`] remembers a ping that started and did
//!   not finish (request maybe written, reply maybe half read) and reports
//!   itself broken from then on, so its reply can never reach the next user.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use connpool::managers::tcp::{Destination, LinePing, TcpKeepaliveConfig, TcpManager};
//! use connpool::{HealthCheck, Pool};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = TcpManager::new()
//!     .keepalive(TcpKeepaliveConfig {
//!         time: Duration::from_secs(30),
//!         interval: Duration::from_secs(5),
//!         retries: 4,
//!     })
//!     .with_ping(LinePing::new("PING\r\n", "+PONG\r\n"));
//! let pool = Pool::builder(manager)
//!     .max_open_per_key(8)
//!     .health_check(HealthCheck::Always)
//!     .build()
//!     .await?;
//!
//! let redis = Destination::from("localhost:6379");
//! let mut conn = pool.get_for(&redis).await?;
//! conn.write_all(b"PING\r\n").await?;
//! let mut reply = [0; 7];
//! conn.read_exact(&mut reply).await?;
//! assert_eq!(&reply, b"+PONG\r\n");
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::manager::Manager;

/// Default idle time before the kernel sends the first keepalive probe
/// (`TCP_KEEPIDLE`): 60 s, curl's default. The system default (7200 s on
/// Linux) leaves a silently dead peer undetected for over two hours; 60 s is
/// below the idle limits of common NATs, firewalls and cloud load balancers
/// (AWS NLB 350 s, Azure LB 4 min, consumer NATs often 2–5 min), and costs one
/// empty segment a minute on a connection that carries nothing else.
pub const DEFAULT_KEEPALIVE_TIME: Duration = Duration::from_secs(60);
/// Default time between unanswered keepalive probes (`TCP_KEEPINTVL`): 10 s.
/// Once the first probe goes unanswered the peer is likely gone; probing
/// every 10 s declares it dead quickly while riding out a lost segment or two.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Default number of unanswered probes before the kernel drops the
/// connection (`TCP_KEEPCNT`): 3, so a single or double packet loss never
/// kills a healthy connection, and a dead peer is declared within
/// 60 + 3 × 10 = 90 s of silence.
pub const DEFAULT_KEEPALIVE_RETRIES: u32 = 3;

/// Kernel TCP keepalive settings, applied to every connection through
/// [`socket2::TcpKeepalive`] (and enabling `SO_KEEPALIVE`).
///
/// Kernel keepalive probes only an *idle* socket (nothing sent and unacked).
/// It complements the pool's own background keepalive (an app-level ping of
/// idle pooled connections, see [`Ping`]): it also watches connections that
/// are lent while their user waits on a read, and keeps NAT mappings of
/// long-lived quiet connections alive. The kernel counts in whole seconds
/// (Windows in milliseconds): sub-second parts are dropped, and values are
/// raised to at least 1 s (1 probe for `retries`), which every system accepts.
///
/// On systems where `socket2` cannot set `interval` or `retries` (OpenBSD,
/// Solaris, Haiku…), those fields are ignored and the system's values apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpKeepaliveConfig {
    /// Idle time before the first probe (`TCP_KEEPIDLE`; `TCP_KEEPALIVE` on macOS).
    pub time: Duration,
    /// Time between unanswered probes (`TCP_KEEPINTVL`).
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped (`TCP_KEEPCNT`).
    pub retries: u32,
}

impl Default for TcpKeepaliveConfig {
    /// 60 s / 10 s / 3 ([`DEFAULT_KEEPALIVE_TIME`],
    /// [`DEFAULT_KEEPALIVE_INTERVAL`], [`DEFAULT_KEEPALIVE_RETRIES`]).
    fn default() -> Self {
        Self {
            time: DEFAULT_KEEPALIVE_TIME,
            interval: DEFAULT_KEEPALIVE_INTERVAL,
            retries: DEFAULT_KEEPALIVE_RETRIES,
        }
    }
}

impl TcpKeepaliveConfig {
    #[allow(unused_mut)]
    fn to_socket2(self) -> TcpKeepalive {
        let at_least_a_second = |d: Duration| d.max(Duration::from_secs(1));
        let mut ka = TcpKeepalive::new().with_time(at_least_a_second(self.time));
        #[cfg(any(
            target_os = "android",
            target_os = "dragonfly",
            target_os = "freebsd",
            target_os = "fuchsia",
            target_os = "illumos",
            target_os = "ios",
            target_os = "visionos",
            target_os = "linux",
            target_os = "macos",
            target_os = "netbsd",
            target_os = "tvos",
            target_os = "watchos",
            target_os = "windows",
            target_os = "cygwin",
        ))]
        {
            ka = ka
                .with_interval(at_least_a_second(self.interval))
                .with_retries(self.retries.max(1));
        }
        ka
    }
}

/// Where a [`TcpManager`] connects: the pool's key.
///
/// Made from a [`SocketAddr`] (or `(IpAddr, u16)`), or from a `"host:port"`
/// string (or `(&str, u16)`), which is resolved on every dial. A string
/// holding an IP address and port (`"127.0.0.1:80"`, `"[::1]:80"`) becomes
/// the address itself, so it is the same key as the `SocketAddr`. A string
/// that is not `host:port` (no port, a port out of range, an empty host,
/// an unclosed `[`, an IPv6 address without brackets, a character no host
/// name has, such as a space) is accepted here and fails at dial time with
/// [`io::ErrorKind::InvalidInput`], in a message naming the string and what
/// is wrong with it. Cheap to clone.
///
/// ```
/// use std::net::SocketAddr;
/// use connpool::managers::tcp::Destination;
///
/// let addr: SocketAddr = "127.0.0.1:6379".parse().unwrap();
/// assert_eq!(Destination::from("127.0.0.1:6379"), Destination::from(addr));
/// assert_eq!(Destination::from(("localhost", 6379)), Destination::from("localhost:6379"));
/// assert_eq!(Destination::from("localhost:6379").socket_addr(), None);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Destination(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Addr(SocketAddr),
    Name(Arc<str>),
}

impl Destination {
    /// The address, if this destination is one (no resolution needed).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match &self.0 {
            Repr::Addr(a) => Some(*a),
            Repr::Name(_) => None,
        }
    }

    /// The addresses to try, in order: the address itself, or the
    /// resolution of `host:port` (asynchronous; through the system resolver).
    /// A malformed `host:port` fails with [`io::ErrorKind::InvalidInput`]
    /// before any lookup.
    pub async fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        match &self.0 {
            Repr::Addr(a) => Ok(vec![*a]),
            Repr::Name(name) => {
                if let Err(what) = check_host_port(name) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("invalid destination {name:?}: {what}"),
                    ));
                }
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&**name)
                    .await
                    .map_err(|e| context(e, format!("resolving {name}")))?
                    .collect();
                if addrs.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("resolving {name}: no addresses"),
                    ));
                }
                Ok(addrs)
            }
        }
    }
}

/// What is wrong with `s` as a `host:port` to resolve, if anything. (An IP
/// address and port never gets here: it parsed as a `SocketAddr`.)
fn check_host_port(s: &str) -> Result<(), String> {
    const EXPECTED: &str = "expected host:port, as \"localhost:80\" or \"[::1]:80\"";
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(format!("unclosed '[' ({EXPECTED})"));
        };
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("[{inside}] is not an IPv6 address"));
        }
        match after.strip_prefix(':') {
            Some(port) => (None, port),
            None => return Err(format!("no port after ']' ({EXPECTED})")),
        }
    } else {
        match s.rsplit_once(':') {
            Some((host, port)) => (Some(host), port),
            None => return Err(format!("no port ({EXPECTED})")),
        }
    };
    if port.is_empty() {
        return Err(format!("no port ({EXPECTED})"));
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {port:?} is not a number"));
    }
    if port.parse::<u16>().is_err() {
        return Err(format!("port {port} is out of range (at most 65535)"));
    }
    let Some(host) = host else {
        return Ok(());
    };
    if host.is_empty() {
        return Err(format!("no host ({EXPECTED})"));
    }
    if host.contains(':') {
        return Err(format!(
            "{host:?} has a ':': an IPv6 address needs brackets, as \"[::1]:80\""
        ));
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!("the host has {c:?}, which no host name has"));
    }
    if host.len() > 253 {
        return Err(format!(
            "the host is {} bytes long, a host name at most 253",
            host.len()
        ));
    }
    let labels = host.strip_suffix('.').unwrap_or(host);
    if labels.split('.').any(str::is_empty) {
        return Err("the host has an empty label (\"..\" or a leading '.')".to_owned());
    }
    if let Some(label) = labels.split('.').find(|l| l.len() > 63) {
        return Err(format!(
            "the host has a label of {} bytes, at most 63 in a host name",
            label.len()
        ));
    }
    Ok(())
}

impl From<SocketAddr> for Destination {
    fn from(addr: SocketAddr) -> Self {
        Destination(Repr::Addr(addr))
    }
}

impl From<(IpAddr, u16)> for Destination {
    fn from((ip, port): (IpAddr, u16)) -> Self {
        SocketAddr::new(ip, port).into()
    }
}

impl From<&str> for Destination {
    fn from(s: &str) -> Self {
        match s.parse::<SocketAddr>() {
            Ok(addr) => addr.into(),
            Err(_) => Destination(Repr::Name(s.into())),
        }
    }
}

impl From<String> for Destination {
    fn from(s: String) -> Self {
        match s.parse::<SocketAddr>() {
            Ok(addr) => addr.into(),
            Err(_) => Destination(Repr::Name(s.into())),
        }
    }
}

impl From<(&str, u16)> for Destination {
    /// A host name, an IP address, or a bracketed IPv6 address, and a port.
    fn from((host, port): (&str, u16)) -> Self {
        match host.parse::<IpAddr>() {
            Ok(ip) => (ip, port).into(),
            Err(_) => format!("{host}:{port}").into(),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Addr(a) => a.fmt(f),
            Repr::Name(n) => f.write_str(n),
        }
    }
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Destination({self})")
    }
}

/// An io error of the same kind with context in front of its message. Its
/// source is the original's source, not the original, whose message it
/// already carries.
fn context(e: io::Error, what: String) -> io::Error {
    #[derive(Debug)]
    struct Context {
        what: String,
        source: io::Error,
    }
    impl fmt::Display for Context {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}: {}", self.what, self.source)
        }
    }
    impl std::error::Error for Context {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.source.source()
        }
    }
    io::Error::new(e.kind(), Context { what, source: e })
}

/// The application-level ping of the protocol spoken over the stream: one
/// round trip that proves the peer still answers.
///
/// Used by the pool's health check (before lending an idle connection) and
/// background keepalive. The stream is idle when it is called (nothing
/// unread). It may be dropped at any await (timeout, getter gone): the
/// [`TcpConn`] then reports itself broken and is closed, so an
/// implementation needs no cleanup.
///
/// ```
/// use connpool::async_trait;
/// use connpool::managers::tcp::Ping;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tokio::net::TcpStream;
///
/// /// A binary protocol: opcode 0x01 is a ping, answered by a 0x02 byte.
/// struct OpcodePing;
///
/// #[async_trait]
/// impl Ping for OpcodePing {
///     async fn ping(&self, stream: &mut TcpStream) -> std::io::Result<()> {
///         stream.write_all(&[0x01]).await?;
///         match stream.read_u8().await? {
///             0x02 => Ok(()),
///             other => Err(std::io::Error::new(
///                 std::io::ErrorKind::InvalidData,
///                 format!("unexpected reply {other:#x}"),
///             )),
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait Ping: Send + Sync + 'static {
    /// Does one round trip on `stream`; an error (or never finishing) means
    /// the connection is not healthy.
    async fn ping(&self, stream: &mut TcpStream) -> io::Result<()>;
}

/// No application-level ping: the manager's ping is only the local,
/// non-blocking check that the peer has not closed the connection (no
/// traffic). Health checks and keepalive then find peers that closed or
/// reset, not peers that went silent (kernel keepalive finds those, slowly).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoPing;

#[async_trait]
impl Ping for NoPing {
    async fn ping(&self, _stream: &mut TcpStream) -> io::Result<()> {
        Ok(())
    }
}

/// A fixed request / reply ping: writes `request`, reads exactly
/// `expect.len()` bytes and checks they are `expect`. The default is a line
/// protocol's `ping\n` → `pong\n`.
///
/// ```
/// use connpool::managers::tcp::LinePing;
///
/// let redis = LinePing::new("PING\r\n", "+PONG\r\n");
/// assert_eq!(redis.expect(), b"+PONG\r\n");
/// let default = LinePing::default();
/// assert_eq!(default.request(), b"ping\n");
/// assert_eq!(default.expect(), b"pong\n");
/// ```
///
/// The reply must be exactly `expect`: a reply with variable content
/// (memcached's `version\r\n` → `VERSION 1.6.21\r\n`) would leave bytes
/// unread, which the manager then treats as a stream out of step (see
/// [`unread_data_is_broken`](TcpManager::unread_data_is_broken)). Implement
/// [`Ping`] for those.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePing {
    request: Vec<u8>,
    expect: Vec<u8>,
}

impl LinePing {
    /// A ping that writes `request` and expects exactly `expect` back.
    pub fn new(request: impl Into<Vec<u8>>, expect: impl Into<Vec<u8>>) -> Self {
        Self {
            request: request.into(),
            expect: expect.into(),
        }
    }

    /// What is written.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// What must come back.
    pub fn expect(&self) -> &[u8] {
        &self.expect
    }
}

impl Default for LinePing {
    /// `ping\n` → `pong\n`.
    fn default() -> Self {
        Self::new(&b"ping\n"[..], &b"pong\n"[..])
    }
}

#[async_trait]
impl Ping for LinePing {
    async fn ping(&self, stream: &mut TcpStream) -> io::Result<()> {
        stream.write_all(&self.request).await?;
        let mut reply = vec![0; self.expect.len()];
        stream.read_exact(&mut reply).await?;
        if reply == self.expect {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "ping reply {:?}, expected {:?}",
                    String::from_utf8_lossy(&reply),
                    String::from_utf8_lossy(&self.expect)
                ),
            ))
        }
    }
}

/// A pooled TCP connection: a [`TcpStream`] (it dereferences to it, and is
/// itself [`AsyncRead`] + [`AsyncWrite`]) plus what the manager needs to
/// know whether it may be reused.
#[derive(Debug)]
pub struct TcpConn {
    stream: TcpStream,
    peer: SocketAddr,
    /// A ping started and has not finished: its reply may still arrive.
    ping_in_flight: bool,
}

/// What a non-blocking peek says about the peer.
#[derive(Debug, PartialEq, Eq)]
enum PeerState {
    /// Connected, nothing to read.
    Quiet,
    /// Bytes are waiting to be read.
    Unread,
    /// The peer closed (end of stream) or the connection failed (reset,
    /// keepalive timeout…).
    Gone,
}

impl TcpConn {
    /// Wraps a connected stream.
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        let peer = stream.peer_addr()?;
        Ok(Self {
            stream,
            peer,
            ping_in_flight: false,
        })
    }

    /// The stream.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The stream, mutably.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The stream, for good.
    pub fn into_inner(self) -> TcpStream {
        self.stream
    }

    /// The address the connection was made to (the one that answered, when
    /// the destination resolved to several).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether a ping was abandoned mid-exchange (dropped or failed): the
    /// stream may still hold its reply and is unusable.
    pub fn ping_abandoned(&self) -> bool {
        self.ping_in_flight
    }

    /// A one-byte `MSG_PEEK` on the non-blocking socket: consumes nothing,
    /// never waits.
    fn peer_state(&self) -> PeerState {
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        let sock = SockRef::from(&self.stream);
        loop {
            return match sock.peek(&mut byte) {
                Ok(0) => PeerState::Gone,
                Ok(_) => PeerState::Unread,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => PeerState::Quiet,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => PeerState::Gone,
            };
        }
    }
}

impl Deref for TcpConn {
    type Target = TcpStream;

    fn deref(&self) -> &TcpStream {
        &self.stream
    }
}

impl DerefMut for TcpConn {
    fn deref_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

impl AsyncRead for TcpConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A [`Manager`] of TCP connections, keyed by [`Destination`], with the
/// application-level ping `P` (see [`Ping`]).
///
/// | setting | default | why |
/// |---|---|---|
/// | [`nodelay`](TcpManager::nodelay) | on | small request/response messages are not held back by Nagle |
/// | [`keepalive`](TcpManager::keepalive) | 60 s / 10 s / 3 ([`TcpKeepaliveConfig`]) | a dead peer is found within 90 s, even on a lent connection |
/// | [`with_ping`](TcpManager::with_ping) | [`NoPing`] | the protocol is unknown; pass a [`LinePing`] or your [`Ping`] |
/// | [`unread_data_is_broken`](TcpManager::unread_data_is_broken) | on | an unsolicited byte on an idle request/response stream means it is out of step |
///
/// `connect` resolves the destination, tries each address in turn, and sets
/// the socket options; failures are [`io::Error`]s of the original kind,
/// whose message names the destination (and the address tried, for a name)
/// and carries the original error's message. The
/// pool's `connect_timeout` bounds the whole dial: there is no per-address
/// timeout, so an address that swallows SYNs uses it all up. `is_broken` is a non-blocking one-byte
/// peek (no I/O wait, nothing consumed) plus the abandoned-ping flag of
/// [`TcpConn`]. `ping` fails at once if `is_broken` would say so, then runs
/// `P`. `close` drops the stream (the kernel sends FIN, or RST if unread data
/// was pending).
///
/// A borrower that gives up mid-request (an error, a cancelled future) should
/// call [`Pooled::mark_broken`](crate::Pooled::mark_broken): a reply that
/// arrives after the connection came back is only caught if it arrives before
/// the next checkout.
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
    pub fn keepalive(mut self, keepalive: impl Into<Option<TcpKeepaliveConfig>>) -> Self {
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
    pub fn keepalive_config(&self) -> Option<TcpKeepaliveConfig> {
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
        stream.set_nodelay(self.nodelay)?;
        if let Some(ka) = self.keepalive {
            SockRef::from(stream).set_tcp_keepalive(&ka.to_socket2())?;
        }
        Ok(())
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
