//! [`GrpcManager`]: dials single-use channels, checks their health, and
//! lends them by the server's stream limit.

use std::io;
use std::net::SocketAddr;
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

use super::conn::{ConnInner, GrpcConn};
use super::error::GrpcError;
use crate::manager::{Lending, Manager};
use crate::managers::h2_frames::{
    DeadOnArrival, FrameState, FrameWatcher, SettingsWait, await_settings, dead_on_arrival,
    lend_by_stream_limit,
};
use crate::managers::tcp::{Destination, TcpManager};

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

/// Makes gRPC channels (one HTTP/2 connection each, h2c) for a keyed
/// [`Pool`](crate::Pool), lent shared, health-checked. See the
/// [module docs](super).
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
    /// Default off (see the [module docs](super) before turning it on).
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
