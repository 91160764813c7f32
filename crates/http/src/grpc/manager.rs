//! [`GrpcManager`]: dials HTTP/2 connections as the HTTP manager does, checks
//! their health, and lends them by the server's stream limit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::HttpError;
use crate::Origin;
use crate::h2_frames::{DeadOnArrival, dead_on_arrival, lend_by_stream_limit};
use crate::{HttpConn, HttpManager};
use connpool_core::{Health, Lending, Manager};
use connpool_tcp::TcpManager;

/// Default [`http2_keep_alive_interval`](GrpcManager::http2_keep_alive_interval): an
/// HTTP/2 PING after 5 minutes without traffic from the server, only while
/// calls are active. 5 minutes is the default `MinTime` of grpc-go and
/// C-core servers: any shorter interval gets the connection closed with
/// `GOAWAY too_many_pings`. It still finds a server that vanished under a
/// long call (a stream waiting for messages) within 5 min 20 s.
pub const GRPC_PING_INTERVAL: Duration = Duration::from_secs(300);
/// Default [`http2_keep_alive_timeout`](GrpcManager::http2_keep_alive_timeout): 20 s for
/// the PING's ACK, gRPC's own default (`KEEPALIVE_TIMEOUT`).
pub const GRPC_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Default [`settings_timeout`](GrpcManager::settings_timeout): 5 s for the
/// server's first `SETTINGS` frame, which an HTTP/2 server sends at once.
pub const GRPC_SETTINGS_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP/2's `ENHANCE_YOUR_CALM` error code: what gRPC servers close a
/// connection with when its client PINGs too often.
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// A gRPC connection: an HTTP/2 connection for tonic's body.
type GrpcConn = HttpConn<tonic::body::Body>;

/// Makes gRPC connections (one HTTP/2 connection each: h2c in plaintext, h2 over TLS) for a keyed
/// [`Pool`](connpool_core::Pool), lent shared, health-checked. See the
/// [module docs](super).
///
/// | setting | default | why |
/// |---|---|---|
/// | [`with_tcp`](GrpcManager::with_tcp) | [`TcpManager::new`]: `TCP_NODELAY`, kernel keepalive 60 s / 10 s / 3 | small frames go out at once; a vanished server is found within 90 s even where PINGs are off |
/// | [`health_service`](GrpcManager::health_service) | `""` | the whole server's health, which every health service reports |
/// | [`check_on_connect`](GrpcManager::check_on_connect) | on | a backend that is up but `NOT_SERVING` (starting, draining) fails the dial instead of being lent; one extra round trip per dial. A server without the health service (`UNIMPLEMENTED`) passes: its health is not known, only that it answers |
/// | [`http2_keep_alive_interval`](GrpcManager::http2_keep_alive_interval) | 5 min ([`GRPC_PING_INTERVAL`]) | the servers' default `MinTime`: more often gets `GOAWAY too_many_pings` |
/// | [`http2_keep_alive_timeout`](GrpcManager::http2_keep_alive_timeout) | 20 s ([`GRPC_PING_TIMEOUT`]) | gRPC's default |
/// | [`http2_keep_alive_while_idle`](GrpcManager::http2_keep_alive_while_idle) | off | servers refuse PINGs without active calls (`PermitWithoutStream: false`); idle connections get the pool's keepalive (a health `Check`) instead |
/// | [`settings_timeout`](GrpcManager::settings_timeout) | 5 s ([`GRPC_SETTINGS_TIMEOUT`]) | an HTTP/2 server sends `SETTINGS` at once; silence means it is not one |
#[derive(Debug, Clone)]
pub struct GrpcManager {
    http2: HttpManager<tonic::body::Body>,
    service: String,
    check_on_connect: bool,
    /// The configured keepalive interval (`http2` holds it too).
    http2_keep_alive_interval: Option<Duration>,
    /// Per key, the keepalive interval after `too_many_pings` back-offs.
    backed_off: Arc<Mutex<HashMap<Origin, Duration>>>,
    /// Keys whose server answered a health check with `UNIMPLEMENTED`
    /// (logged once each).
    no_health_service: Arc<Mutex<HashSet<Origin>>>,
}

impl Default for GrpcManager {
    fn default() -> Self {
        Self::new()
    }
}

impl GrpcManager {
    /// A manager with the defaults (see the table).
    pub fn new() -> Self {
        let http2 = HttpManager::http2()
            .with_body()
            .http2_keep_alive_interval(Some(GRPC_PING_INTERVAL))
            .http2_keep_alive_timeout(GRPC_PING_TIMEOUT)
            .http2_keep_alive_while_idle(false)
            .settings_timeout(GRPC_SETTINGS_TIMEOUT);
        Self {
            http2,
            service: String::new(),
            check_on_connect: true,
            http2_keep_alive_interval: Some(GRPC_PING_INTERVAL),
            backed_off: Arc::default(),
            no_health_service: Arc::default(),
        }
    }

    /// The TCP dialer: its socket options (`TCP_NODELAY`, kernel keepalive)
    /// apply to every connection. Its ping and `unread_data_is_broken`
    /// setting are not used.
    pub fn with_tcp(mut self, tcp: TcpManager) -> Self {
        self.http2 = self.http2.with_tcp(tcp);
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
    /// Doubled for new connections to a server that answered PINGs with
    /// `GOAWAY too_many_pings` (see [`http2_keep_alive_interval_for`](Self::http2_keep_alive_interval_for)).
    pub fn http2_keep_alive_interval(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.http2_keep_alive_interval = interval.into();
        self.http2 = self
            .http2
            .http2_keep_alive_interval(self.http2_keep_alive_interval);
        self
    }

    /// The keepalive PING interval of new connections to `dest`: the
    /// configured one, doubled each time a connection to `dest` was closed
    /// by the server with `GOAWAY ENHANCE_YOUR_CALM` and the debug data
    /// `too_many_pings` (gRPC's rule, gRFC A8; each logged once at
    /// `warn`). Shared by the manager's clones; forgotten with the manager.
    pub fn http2_keep_alive_interval_for(&self, dest: &Origin) -> Option<Duration> {
        let interval = self.http2_keep_alive_interval?;
        Some(
            self.backed_off
                .lock()
                .get(dest)
                .copied()
                .unwrap_or(interval),
        )
    }

    /// If the connection's frames tell that the server closed it for
    /// `too_many_pings`, and this connection was not counted yet: new
    /// connections to its key PING half as often.
    fn note_too_many_pings(&self, conn: &GrpcConn) {
        let (Some(frames), Some(dest)) = (conn.frame_state(), conn.origin()) else {
            return;
        };
        let calm = frames.goaway_error_code() == Some(ENHANCE_YOUR_CALM)
            && frames.goaway_debug_data().as_deref() == Some(b"too_many_pings".as_slice());
        if !calm || !frames.first_calm_notice() {
            return;
        }
        let Some(interval) = self.http2_keep_alive_interval_for(dest) else {
            return;
        };
        let doubled = interval.checked_mul(2).unwrap_or(interval);
        self.backed_off.lock().insert(dest.clone(), doubled);
        tracing::warn!(
            destination = %dest,
            http2_keep_alive_interval = ?doubled,
            "the server closed a connection with GOAWAY too_many_pings: new connections PING half as often"
        );
    }

    /// The first time a key's server answers a health check with
    /// `UNIMPLEMENTED`: a `warn` line that its health is not checked.
    fn note_no_health_service(&self, conn: &GrpcConn) {
        let Some(dest) = conn.origin() else {
            return;
        };
        let mut noted = self.no_health_service.lock();
        // Each ping of such a server comes here: no clone once it is noted.
        if !noted.contains(dest) && noted.insert(dest.clone()) {
            drop(noted);
            tracing::warn!(
                destination = %dest,
                "the server has no grpc.health.v1 service (UNIMPLEMENTED): its connections are \
                 taken as healthy while it answers"
            );
        }
    }

    /// How long a keepalive PING waits for its ACK before the connection is
    /// closed. Default 20 s.
    pub fn http2_keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.http2 = self.http2.http2_keep_alive_timeout(timeout);
        self
    }

    /// Whether keepalive PINGs are also sent while no call is active.
    /// Default off (see the [module docs](super) before turning it on).
    pub fn http2_keep_alive_while_idle(mut self, on: bool) -> Self {
        self.http2 = self.http2.http2_keep_alive_while_idle(on);
        self
    }

    /// How long a dial waits for the server's first `SETTINGS` frame.
    /// Default 5 s.
    pub fn settings_timeout(mut self, timeout: Duration) -> Self {
        self.http2 = self.http2.settings_timeout(timeout);
        self
    }

    /// gRPC over TLS (ALPN `h2`) with `tls`'s roots and certificates, for
    /// `https` origins and origins without a scheme (see
    /// [`HttpManager::tls`]). Without it, an `https` origin is refused.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: connpool_tcp::tls::TlsConfig) -> Self {
        self.http2 = self.http2.tls(tls);
        self
    }

    /// The service named in health checks.
    pub fn health_service_name(&self) -> &str {
        &self.service
    }

    /// The TCP dialer.
    pub fn tcp(&self) -> &TcpManager {
        self.http2.tcp()
    }

    /// One `grpc.health.v1.Health/Check` on `conn`. A server without the
    /// health service answers `UNIMPLEMENTED`: healthy (gRFC A17), since
    /// the answer came over the connection; logged once per key.
    async fn check(&self, conn: &GrpcConn) -> Result<(), HttpError> {
        let reply = HealthClient::new(conn.clone())
            .check(HealthCheckRequest {
                service: self.service.clone(),
            })
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                self.note_no_health_service(conn);
                return Ok(());
            }
            Err(status) => return Err(HttpError::Rpc(status)),
        };
        match reply.get_ref().status() {
            ServingStatus::Serving => Ok(()),
            status => Err(HttpError::Unhealthy {
                service: self.service.clone(),
                status,
            }),
        }
    }
}

#[async_trait]
impl Manager for GrpcManager {
    type Key = Origin;
    type Connection = HttpConn<tonic::body::Body>;
    type Error = HttpError;

    /// The key's `Display` form (`https://host:port`, or `host:port`).
    fn key_name(&self, key: &Origin) -> String {
        key.to_string()
    }
    async fn connect(&self, dest: &Origin) -> Result<GrpcConn, HttpError> {
        let backed_off = self.backed_off.lock().get(dest).copied();
        let dial = async {
            match backed_off {
                Some(interval) => {
                    let http2 = self.http2.clone().http2_keep_alive_interval(Some(interval));
                    http2.connect_http2(dest).await
                }
                None => self.http2.connect_http2(dest).await,
            }
        };
        // Bounded, with the health check below, by the pool's
        // `connect_timeout`.
        let conn = GrpcConn::from(dial.await?);
        if self.check_on_connect {
            // A GOAWAY during the check: the check may still pass (the
            // server finishes the call), or fail for that reason; either
            // way the connection is draining, and that is the error.
            let checked = self.check(&conn).await;
            let dead = conn.frame_state().and_then(|f| dead_on_arrival(f, false));
            if let Some(DeadOnArrival { goaway, debug_data }) = dead {
                self.note_too_many_pings(&conn);
                return Err(HttpError::ClosedDuringSetup { goaway, debug_data });
            }
            checked?;
        }
        Ok(conn)
    }

    /// The health `Check` (fails at once on a closed or draining connection).
    async fn ping(&self, conn: &mut GrpcConn) -> Result<(), HttpError> {
        if !conn.is_reusable() {
            self.note_too_many_pings(conn);
            return Err(HttpError::Closed {
                goaway: conn.goaway_error_code(),
            });
        }
        self.check(conn).await
    }

    fn health(&self, conn: &mut GrpcConn) -> Health {
        if conn.is_reusable() {
            return Health::Ready;
        }
        self.note_too_many_pings(conn);
        if conn.ended_by_server() {
            Health::ClosedByServer
        } else {
            Health::Broken
        }
    }

    fn lending(&self, conn: &GrpcConn) -> Lending<GrpcConn> {
        match conn.frame_state() {
            Some(frames) => lend_by_stream_limit(frames),
            None => Lending::exclusive(),
        }
    }

    /// Ends the connection, even where a clone of a checked-out handle is
    /// still held (its calls then fail `UNAVAILABLE`).
    async fn close(&self, conn: GrpcConn) {
        conn.end();
    }
}
