//! A gRPC manager: pools tonic [`Channel`]s, keyed by [`Destination`], lent
//! *shared*, health-checked with the standard `grpc.health.v1` service.
//!
//! Each pooled [`GrpcConn`] is exactly one HTTP/2 connection. A tonic
//! `Channel` normally reconnects by itself when its connection dies, which
//! would hide a dead connection from the pool (and make the pool's counts
//! lie); [`GrpcManager`] builds each channel with a *single-use* connector,
//! so a channel whose connection is gone stays dead, [`is_broken`](Manager::is_broken)
//! says so, and the pool replaces it with a fresh dial (with its backoff and
//! limits). The connector dials with [`TcpManager`]'s socket setup
//! (`TCP_NODELAY`, kernel TCP keepalive) and wraps the socket in a
//! [`FrameWatcher`], which reads the server's `SETTINGS` (its
//! `MAX_CONCURRENT_STREAMS`) and notices its `GOAWAY`.
//!
//! | [`Manager`] method | here |
//! |---|---|
//! | `connect` | TCP dial, HTTP/2 handshake, wait for the server's first `SETTINGS` (a server that sends none is not HTTP/2: the dial fails), then, with [`check_on_connect`](GrpcManager::check_on_connect) (default on), one health `Check`: a backend that is not `SERVING` fails the dial and is never lent. A connection that is already draining (the server sent `GOAWAY`, say with its `SETTINGS`, or during the `Check`) or closed fails the dial too ([`GrpcError::ClosedDuringSetup`]), with or without the `Check` |
//! | `lending` | shared, up to the server's `MAX_CONCURRENT_STREAMS` (none: the pool's `max_borrowers`, 100 by default) |
//! | `ping` | `grpc.health.v1.Health/Check` for the configured [service](GrpcManager::health_service) (default `""`, the whole server): `SERVING` is healthy; `NOT_SERVING`, `UNKNOWN`, `SERVICE_UNKNOWN` or an RPC error is an error |
//! | `is_broken` | the server sent `GOAWAY` (the connection is *draining*: calls in flight finish, no new ones), or the socket hit end of stream or an error, or the connection was dropped (for example by a missed keepalive PING) |
//! | `close` | drops the handle; the connection ends once the last borrower's clone is gone |
//!
//! # Keepalive, and the servers' PING policy
//!
//! gRPC servers police client PINGs. grpc-go and gRPC C-core servers by
//! default (`EnforcementPolicy{MinTime: 5m, PermitWithoutStream: false}`)
//! count a PING that comes sooner than 5 minutes after the previous one, or
//! while no call is active, as a strike, and after two strikes close the
//! connection with `GOAWAY ENHANCE_YOUR_CALM` (`too_many_pings`), failing
//! calls in flight. So the defaults here stay inside that policy: HTTP/2
//! keepalive PINGs every 5 minutes, and only while calls are active
//! ([`keep_alive_while_idle`](GrpcManager::keep_alive_while_idle) off).
//! Idle pooled connections are checked by the pool instead: its background
//! keepalive ([`keepalive_interval`](crate::Builder::keepalive_interval),
//! every 30 s by default) runs this manager's `ping`, the health `Check`, an
//! ordinary call that no server policy counts against you. Lower the PING
//! interval only for servers configured to allow it (for example tonic
//! servers, which do not police PINGs, or a grpc-go server with a smaller
//! `MinTime` and `PermitWithoutStream: true`).
//!
//! (`tests/grpc.rs` runs both against a server that polices PINGs: with the
//! defaults an idle pooled connection sends none; with
//! `keep_alive_while_idle` on it is cut off with `too_many_pings`, and the
//! pool dials a new one.)
//!
//! # How many connections
//!
//! With the pool's default [`max_borrowers`](crate::Builder::max_borrowers)
//! (100) and a server without a lower stream limit, one connection per key
//! carries up to 100 calls at once, and that is usually the fastest: 32
//! tasks calling through the pool on one connection went as fast as through
//! one tonic `Channel` without a pool, while spreading them over 4 or 8
//! connections (`max_borrowers` 8 or 4) was a few percent and about 15 %
//! slower (in-process tonic server, 2 cores). Each connection is driven by
//! one task, so on many cores a few connections may spread the work better:
//! measure before lowering `max_borrowers`. The per-call cost of a pooled
//! channel over a plain tonic one is small: about 2 % more instructions,
//! most of them hyper's bookkeeping for the keepalive PING timer, a fraction
//! of a percent the frame watcher.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use connpool::Pool;
//! use connpool::managers::grpc::GrpcManager;
//! use connpool::managers::tcp::Destination;
//! use tonic_health::pb::HealthCheckRequest;
//! use tonic_health::pb::health_client::HealthClient;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = GrpcManager::new().health_service("my.package.MyService");
//! let pool = Pool::builder(manager)
//!     .max_open_per_key(8)
//!     // Idle channels get a health Check every 20 s.
//!     .keepalive_interval(Some(Duration::from_secs(20)))
//!     .build()
//!     .await?;
//!
//! let backend = Destination::from("127.0.0.1:50051");
//! let conn = pool.get_for(&backend).await?;
//! // A GrpcConn dereferences to a tonic Channel: clone it into any client.
//! let mut client = HealthClient::new(conn.channel().clone());
//! let reply = client
//!     .check(HealthCheckRequest { service: String::new() })
//!     .await?;
//! println!("{:?} via {}", reply.get_ref().status(), conn.local_addr());
//! # Ok(())
//! # }
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::Uri;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::h2_frames::{
    DeadOnArrival, FrameState, FrameWatcher, SettingsWait, await_settings, dead_on_arrival,
    fmt_dead_on_arrival, lend_by_stream_limit,
};
use super::tcp::{Destination, TcpManager};
use crate::manager::{Lending, Manager};

/// Default [`keep_alive_interval`](GrpcManager::keep_alive_interval): an
/// HTTP/2 PING after 5 minutes without traffic from the server, only while
/// calls are active. 5 minutes is the default `MinTime` of grpc-go and
/// C-core servers: any shorter interval gets the connection closed with
/// `GOAWAY too_many_pings`. It still finds a server that vanished under a
/// long call (a stream waiting for messages) within 5 min 20 s.
pub const DEFAULT_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(300);
/// Default [`keep_alive_timeout`](GrpcManager::keep_alive_timeout): 20 s for
/// the PING's ACK, gRPC's own default (`KEEPALIVE_TIMEOUT`).
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Default [`connect_timeout`](GrpcManager::connect_timeout) of the TCP dial
/// and HTTP/2 handshake: 10 s, like the pool's own default dial bound.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`settings_timeout`](GrpcManager::settings_timeout): 5 s for the
/// server's first `SETTINGS` frame, which an HTTP/2 server sends at once.
pub const DEFAULT_SETTINGS_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a gRPC dial or health check failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum GrpcError {
    /// The TCP dial or the HTTP/2 handshake failed (the cause is the source).
    Connect(tonic::transport::Error),
    /// The server sent no `SETTINGS` frame within the settings timeout: it
    /// does not speak HTTP/2 (h2c, without TLS), or hangs.
    NoSettings {
        /// How long the dial waited.
        waited: Duration,
    },
    /// The server closed the connection before its `SETTINGS` frame.
    ClosedBeforeSettings,
    /// The health check answered, and not `SERVING`.
    Unhealthy {
        /// The service checked (`""`: the whole server).
        service: String,
        /// What the server said: `NOT_SERVING`, `UNKNOWN` or `SERVICE_UNKNOWN`.
        status: ServingStatus,
    },
    /// The health check call failed (a `NOT_FOUND` status: the server has no
    /// health service, or does not know the service name).
    Rpc(tonic::Status),
    /// The server sent `SETTINGS` and then, before the dial completed,
    /// `GOAWAY` (often in the same write: a server shutting down, or at its
    /// connection limit, accepts and turns the connection away at once), or
    /// the connection closed: it would fail every call, so it is not handed
    /// out.
    ClosedDuringSetup {
        /// The `GOAWAY` error code (0: graceful); `None`: no `GOAWAY`, the
        /// connection closed.
        goaway: Option<u32>,
        /// The `GOAWAY` debug data, if short and printable.
        debug_data: Option<String>,
    },
    /// The connection is closed, or draining after the server's `GOAWAY`.
    Closed {
        /// The `GOAWAY` error code, if the server sent one (0: graceful;
        /// 0xb: `ENHANCE_YOUR_CALM`, gRPC's `too_many_pings`).
        goaway: Option<u32>,
    },
}

impl fmt::Display for GrpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrpcError::Connect(e) => {
                // tonic's transport error nests its causes a few layers
                // deep, some repeating others: write each new one.
                write!(f, "gRPC connect failed: {e}")?;
                let mut written = e.to_string();
                let mut next = e.source();
                while let Some(cause) = next {
                    let text = cause.to_string();
                    if !written.contains(&text) {
                        write!(f, ": {text}")?;
                        written = text;
                    }
                    next = cause.source();
                }
                Ok(())
            }
            GrpcError::NoSettings { waited } => write!(
                f,
                "no HTTP/2 SETTINGS frame from the server within {waited:?}: not a gRPC (h2c) server?"
            ),
            GrpcError::ClosedBeforeSettings => f.write_str(
                "the server closed the connection before its HTTP/2 SETTINGS frame: not a gRPC (h2c) server?",
            ),
            GrpcError::Unhealthy { service, status } => write!(
                f,
                "gRPC health check of service {service:?}: {}",
                status.as_str_name()
            ),
            GrpcError::Rpc(status) => write!(
                f,
                "gRPC health check failed: {:?}: {}",
                status.code(),
                status.message()
            ),
            GrpcError::ClosedDuringSetup { goaway, debug_data } => {
                fmt_dead_on_arrival(f, "gRPC", *goaway, debug_data.as_deref())
            }
            GrpcError::Closed { goaway: Some(0xb) } => f.write_str(
                "gRPC connection closed by the server: GOAWAY ENHANCE_YOUR_CALM (too_many_pings?)",
            ),
            GrpcError::Closed {
                goaway: Some(code),
            } => write!(f, "gRPC connection draining: GOAWAY (error code {code:#x})"),
            GrpcError::Closed { goaway: None } => f.write_str("gRPC connection closed"),
        }
    }
}

/// Each cause is written into the message, so the source is the cause's own
/// (the crate's rule: see `connpool::Error`); `Connect` writes its whole
/// chain.
impl StdError for GrpcError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            GrpcError::Connect(_) => None,
            GrpcError::Rpc(s) => s.source(),
            _ => None,
        }
    }
}

/// A pooled gRPC connection: a tonic [`Channel`] over exactly one HTTP/2
/// connection (it dereferences to the channel; clone the channel into any
/// generated client). Cheap to clone, one reference count: each borrower of
/// a shared connection holds its own handle, and the pool makes one per
/// checkout.
#[derive(Clone)]
pub struct GrpcConn {
    inner: Arc<ConnInner>,
}

/// What the handles of one connection share. The channel is not cloned per
/// handle: a tonic `Channel` clone allocates (its buffer's sender state),
/// and borrowers clone the channel anyway to build a client.
struct ConnInner {
    channel: Channel,
    frames: Arc<FrameState>,
    local: SocketAddr,
    peer: SocketAddr,
}

impl GrpcConn {
    /// The channel.
    pub fn channel(&self) -> &Channel {
        &self.inner.channel
    }

    /// The connection's local address (tells connections apart).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer
    }

    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS`, from its latest
    /// `SETTINGS` frame that set it; `None`: no limit set.
    pub fn peer_max_concurrent_streams(&self) -> Option<u32> {
        self.inner.frames.peer_max_concurrent_streams()
    }

    /// Whether the server sent `GOAWAY`: calls in flight finish, new ones
    /// fail; the pool lends this connection to no one new.
    pub fn is_draining(&self) -> bool {
        self.inner.frames.goaway_received()
    }

    /// Whether no new call can go through: draining, or the connection ended
    /// (the channel does not reconnect).
    pub fn is_closed(&self) -> bool {
        self.inner.frames.is_unusable()
    }

    /// What the frame watcher learned about the connection.
    pub fn frame_state(&self) -> &FrameState {
        &self.inner.frames
    }
}

impl Deref for GrpcConn {
    type Target = Channel;

    fn deref(&self) -> &Channel {
        &self.inner.channel
    }
}

impl fmt::Debug for GrpcConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcConn")
            .field("local", &self.inner.local)
            .field("peer", &self.inner.peer)
            .field("frames", &self.inner.frames)
            .finish_non_exhaustive()
    }
}

/// Makes gRPC channels (one HTTP/2 connection each, h2c) for a keyed
/// [`Pool`](crate::Pool), lent shared, health-checked. See the
/// [module docs](self).
///
/// | setting | default | why |
/// |---|---|---|
/// | [`with_tcp`](GrpcManager::with_tcp) | [`TcpManager::new`]: `TCP_NODELAY`, kernel keepalive 60 s / 10 s / 3 | small frames go out at once; a vanished server is found within 90 s even where PINGs are off |
/// | [`health_service`](GrpcManager::health_service) | `""` | the whole server's health, which every health service reports |
/// | [`check_on_connect`](GrpcManager::check_on_connect) | on | a backend that is up but `NOT_SERVING` (starting, draining) fails the dial instead of being lent; one extra round trip per dial |
/// | [`keep_alive_interval`](GrpcManager::keep_alive_interval) | 5 min ([`DEFAULT_KEEP_ALIVE_INTERVAL`]) | the servers' default `MinTime`: more often gets `GOAWAY too_many_pings` |
/// | [`keep_alive_timeout`](GrpcManager::keep_alive_timeout) | 20 s ([`DEFAULT_KEEP_ALIVE_TIMEOUT`]) | gRPC's default |
/// | [`keep_alive_while_idle`](GrpcManager::keep_alive_while_idle) | off | servers refuse PINGs without active calls (`PermitWithoutStream: false`); idle connections get the pool's keepalive (a health `Check`) instead |
/// | [`connect_timeout`](GrpcManager::connect_timeout) | 10 s ([`DEFAULT_CONNECT_TIMEOUT`]) | bounds the dial and handshake inside tonic |
/// | [`settings_timeout`](GrpcManager::settings_timeout) | 5 s ([`DEFAULT_SETTINGS_TIMEOUT`]) | an HTTP/2 server sends `SETTINGS` at once; silence means it is not one |
#[derive(Debug, Clone)]
pub struct GrpcManager {
    tcp: TcpManager,
    service: String,
    check_on_connect: bool,
    keep_alive_interval: Option<Duration>,
    keep_alive_timeout: Duration,
    keep_alive_while_idle: bool,
    connect_timeout: Duration,
    settings_timeout: Duration,
}

impl Default for GrpcManager {
    fn default() -> Self {
        Self::new()
    }
}

/// What the single-use connector hands back to `connect`.
struct Dialed {
    frames: Arc<FrameState>,
    local: SocketAddr,
    peer: SocketAddr,
}

impl GrpcManager {
    /// A manager with the defaults (see the table).
    pub fn new() -> Self {
        Self {
            tcp: TcpManager::new(),
            service: String::new(),
            check_on_connect: true,
            keep_alive_interval: Some(DEFAULT_KEEP_ALIVE_INTERVAL),
            keep_alive_timeout: DEFAULT_KEEP_ALIVE_TIMEOUT,
            keep_alive_while_idle: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            settings_timeout: DEFAULT_SETTINGS_TIMEOUT,
        }
    }

    /// The TCP dialer: its socket options (`TCP_NODELAY`, kernel keepalive)
    /// apply to every connection. Its ping and `unread_data_is_broken`
    /// setting are not used.
    pub fn with_tcp(mut self, tcp: TcpManager) -> Self {
        self.tcp = tcp;
        self
    }

    /// The service named in health checks (default `""`: the whole server).
    pub fn health_service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// Whether a dial ends with a health check that must say `SERVING`
    /// (default on).
    pub fn check_on_connect(mut self, on: bool) -> Self {
        self.check_on_connect = on;
        self
    }

    /// Interval of HTTP/2 keepalive PINGs (sent after this long without
    /// traffic from the server); `None` turns them off. Default 5 min.
    pub fn keep_alive_interval(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.keep_alive_interval = interval.into();
        self
    }

    /// How long a keepalive PING waits for its ACK before the connection is
    /// closed. Default 20 s.
    pub fn keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.keep_alive_timeout = timeout;
        self
    }

    /// Whether keepalive PINGs are also sent while no call is active.
    /// Default off (see the [module docs](self) before turning it on).
    pub fn keep_alive_while_idle(mut self, on: bool) -> Self {
        self.keep_alive_while_idle = on;
        self
    }

    /// Bound of the TCP dial and HTTP/2 handshake. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a dial waits for the server's first `SETTINGS` frame.
    /// Default 5 s.
    pub fn settings_timeout(mut self, timeout: Duration) -> Self {
        self.settings_timeout = timeout;
        self
    }

    /// The service named in health checks.
    pub fn health_service_name(&self) -> &str {
        &self.service
    }

    /// The TCP dialer.
    pub fn tcp(&self) -> &TcpManager {
        &self.tcp
    }

    /// One `grpc.health.v1.Health/Check` on `channel`.
    async fn check(&self, channel: &Channel) -> Result<(), GrpcError> {
        let reply = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: self.service.clone(),
            })
            .await
            .map_err(GrpcError::Rpc)?;
        match reply.get_ref().status() {
            ServingStatus::Serving => Ok(()),
            status => Err(GrpcError::Unhealthy {
                service: self.service.clone(),
                status,
            }),
        }
    }
}

#[async_trait]
impl Manager for GrpcManager {
    type Key = Destination;
    type Connection = GrpcConn;
    type Error = GrpcError;

    async fn connect(&self, dest: &Destination) -> Result<GrpcConn, GrpcError> {
        let mut endpoint = Endpoint::from_shared(format!("http://{dest}"))
            .map_err(GrpcError::Connect)?
            .connect_timeout(self.connect_timeout)
            .keep_alive_timeout(self.keep_alive_timeout)
            .keep_alive_while_idle(self.keep_alive_while_idle);
        if let Some(interval) = self.keep_alive_interval {
            endpoint = endpoint.http2_keep_alive_interval(interval);
        }

        // Single use: the first call dials; any later one (tonic reconnecting
        // after the connection died) fails, so the channel stays dead and the
        // pool sees it.
        let plan = Arc::new(Mutex::new(Some((self.tcp.clone(), dest.clone()))));
        let dialed: Arc<Mutex<Option<Dialed>>> = Arc::new(Mutex::new(None));
        let out = Arc::clone(&dialed);
        let connector = tower::service_fn(move |_: Uri| {
            let plan = plan.lock().take();
            let out = Arc::clone(&out);
            async move {
                let (tcp, dest) = plan.ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotConnected,
                        "this pooled channel's connection is gone (pooled channels do not reconnect; the pool dials anew)",
                    )
                })?;
                let conn = tcp.connect(&dest).await?;
                let peer = conn.peer();
                let local = conn.local_addr()?;
                let watcher = FrameWatcher::new(conn.into_inner());
                *out.lock() = Some(Dialed {
                    frames: watcher.state(),
                    local,
                    peer,
                });
                Ok::<_, io::Error>(TokioIo::new(watcher))
            }
        });
        let channel = endpoint
            .connect_with_connector(connector)
            .await
            .map_err(GrpcError::Connect)?;
        let Some(Dialed {
            frames,
            local,
            peer,
        }) = dialed.lock().take()
        else {
            // Unreachable in practice: tonic connected, so the connector ran.
            return Err(GrpcError::Closed { goaway: None });
        };
        if let Err(why) = await_settings(&frames, self.settings_timeout).await {
            return Err(match why {
                SettingsWait::Closed => GrpcError::ClosedBeforeSettings,
                SettingsWait::TimedOut => GrpcError::NoSettings {
                    waited: self.settings_timeout,
                },
            });
        }
        let dead = || {
            dead_on_arrival(&frames, false).map(|DeadOnArrival { goaway, debug_data }| {
                GrpcError::ClosedDuringSetup { goaway, debug_data }
            })
        };
        if let Some(e) = dead() {
            return Err(e);
        }
        if self.check_on_connect {
            // A GOAWAY during the check: the check may still pass (the
            // server finishes the call), or fail for that reason; either
            // way the connection is draining, and that is the error.
            let checked = self.check(&channel).await;
            if let Some(e) = dead() {
                return Err(e);
            }
            checked?;
        }
        Ok(GrpcConn {
            inner: Arc::new(ConnInner {
                channel,
                frames,
                local,
                peer,
            }),
        })
    }

    /// The health `Check` (fails at once on a closed or draining connection).
    async fn ping(&self, conn: &mut GrpcConn) -> Result<(), GrpcError> {
        if conn.is_closed() {
            return Err(GrpcError::Closed {
                goaway: conn.frame_state().goaway_error_code(),
            });
        }
        self.check(conn.channel()).await
    }

    fn is_broken(&self, conn: &mut GrpcConn) -> bool {
        conn.is_closed()
    }

    fn lending(&self, conn: &GrpcConn) -> Lending<GrpcConn> {
        lend_by_stream_limit(conn.frame_state())
    }
}
