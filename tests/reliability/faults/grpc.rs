//! The gRPC target: an in-process tonic server with the health service, one
//! unary health `Check` a request.

use std::net::SocketAddr;

use connpool::async_trait;
use connpool::managers::Origin;
use connpool::managers::grpc::GrpcManager;
use connpool::managers::http::HttpConn;

type GrpcConn = HttpConn<tonic::body::Body>;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::{CONNECT, Target, ms};
use crate::support::grpc::GrpcServer;

/// HTTP/2 keepalive of the test manager, interval and ACK timeout alike
/// (the defaults, 5 min + 20 s, suit grpc-go's PING policy; a tonic
/// server does not police PINGs). PINGs go out only while calls are
/// active, as by default: idle connections are the health check's
/// business. A black-holed connection with calls in flight is closed by
/// a missed PING within 2 × this, and `health` then refuses it to new
/// borrowers. Here each caller's own 300 ms request timeout still ends
/// its call first and marks the connection broken, so the figures come
/// out the same with the defaults (measured); the PING is the backstop
/// for callers without a timeout of their own (`managers/grpc/keepalive.rs`,
/// `keepalive_finds_a_blackholed_server_under_an_active_call`).
pub const KEEP_ALIVE: std::time::Duration = ms(200);

/// The in-process tonic server with the health service; one request is
/// a unary `grpc.health.v1.Health/Check` (`""`), which must answer
/// `SERVING`.
pub struct Grpc {
    pub server: GrpcServer,
    name: &'static str,
    max_streams: u32,
}

impl Grpc {
    /// A server whose `MAX_CONCURRENT_STREAMS` is `max_streams`: the
    /// borrowers one connection takes (1: lent exclusively).
    pub async fn start(name: &'static str, max_streams: u32) -> Grpc {
        Grpc { server: GrpcServer::start(Some(max_streams)).await, name, max_streams }
    }
}

#[async_trait]
impl Target for Grpc {
    type M = GrpcManager;
    type Key = Origin;

    fn name(&self) -> &'static str {
        self.name
    }

    fn upstream(&self) -> SocketAddr {
        self.server.addr
    }

    fn manager(&self, addr: SocketAddr) -> (GrpcManager, Origin) {
        let manager = GrpcManager::new()
            .settings_timeout(CONNECT)
            .http2_keep_alive_interval(KEEP_ALIVE)
            .http2_keep_alive_timeout(KEEP_ALIVE);
        (manager, Origin::from(addr))
    }

    async fn op(conn: &mut GrpcConn, _n: u64) -> Result<(), String> {
        let reply = HealthClient::new((*conn).clone())
            .check(HealthCheckRequest { service: String::new() })
            .await
            .map_err(|e| e.to_string())?;
        match reply.get_ref().status() {
            ServingStatus::Serving => Ok(()),
            status => Err(format!("health: {}", status.as_str_name())),
        }
    }

    fn borrowers_per_conn(&self) -> usize {
        self.max_streams as usize
    }

    fn conn_id(conn: &GrpcConn) -> Option<SocketAddr> {
        Some(conn.local_addr())
    }
}
