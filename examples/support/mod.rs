//! Servers shared by the examples and `benches/naive.rs`, all in-process on
//! 127.0.0.1 except PostgreSQL: a TCP echo server, a tonic server with the
//! standard health service, a WebSocket echo server, and, from Debian's
//! packages, PostgreSQL (`DATABASE_URL`, else a throwaway server started
//! by `pg_server.rs`), redis-server (`redis_server.rs`) and nginx
//! (`nginx_server.rs`): the launchers the tests use too.
//!
//! Each server task is spawned on the runtime of its caller.
#![allow(dead_code)]

#[cfg(feature = "postgres")]
#[path = "pg_server.rs"]
pub mod pg_support;
#[cfg(feature = "redis")]
#[path = "redis_server.rs"]
pub mod redis_support;

pub mod python_http;
#[cfg(feature = "tls")]
pub mod tls;
pub mod turns;
#[cfg(feature = "websocket")]
pub mod ws;

#[cfg(feature = "http")]
#[path = "nginx_server.rs"]
pub mod nginx;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Connections a server accepted so far.
#[derive(Clone, Default)]
pub struct Accepted(Arc<AtomicUsize>);

impl Accepted {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A TCP echo server: every byte comes back.
pub async fn echo_server() -> std::io::Result<(SocketAddr, Accepted)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accepted = Accepted::default();
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            counter.add();
            tokio::spawn(async move {
                let _ = sock.set_nodelay(true);
                let mut buf = [0u8; 1024];
                loop {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if sock.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    Ok((addr, accepted))
}

/// The echo request: 64 bytes.
pub const PAYLOAD: &[u8; 64] = b"connpool example payload: 64 bytes of echo, sent and read back..";

/// One echo round trip: 64 bytes out, the same 64 back.
pub async fn echo_round_trip(
    stream: &mut (impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin),
) -> std::io::Result<()> {
    stream.write_all(PAYLOAD).await?;
    let mut buf = [0u8; PAYLOAD.len()];
    stream.read_exact(&mut buf).await?;
    if &buf != PAYLOAD {
        return Err(std::io::Error::other("echo: wrong bytes back"));
    }
    Ok(())
}

/// A tonic server with the health service (everything `SERVING`), at most
/// `max_streams` concurrent streams per connection (`None`: no limit).
#[cfg(feature = "grpc")]
pub async fn grpc_server(max_streams: Option<u32>) -> std::io::Result<(SocketAddr, Accepted)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accepted = Accepted::default();
    let counter = accepted.clone();
    // `serve_with_incoming` leaves socket options to us: TCP_NODELAY, as
    // `Server::tcp_nodelay` would (else small replies wait for delayed ACKs).
    use tokio_stream::StreamExt;
    use tokio_stream::wrappers::TcpListenerStream;

    let incoming = TcpListenerStream::new(listener).map(move |conn| {
        let conn = conn?;
        counter.add();
        conn.set_nodelay(true)?;
        Ok::<_, std::io::Error>(conn)
    });
    let (reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(async move {
        let _reporter = reporter; // keeps the statuses alive
        tonic::transport::Server::builder()
            .max_concurrent_streams(max_streams)
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
    });
    Ok((addr, accepted))
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One unary `grpc.health.v1.Health/Check` of the whole server, through
/// any tonic transport (a tonic `Channel`, a pooled gRPC connection); an
/// error unless it answers `SERVING`.
#[cfg(feature = "grpc")]
pub async fn health_check<T>(channel: T) -> Result<(), BoxError>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<BoxError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<BoxError> + Send,
{
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    if reply.get_ref().status() != ServingStatus::Serving {
        return Err(format!("health check: {:?}", reply.get_ref().status()).into());
    }
    Ok(())
}

/// `SELECT 1` (simple query protocol, one round trip).
#[cfg(feature = "postgres")]
pub async fn select_1(client: &tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
    client.simple_query("SELECT 1").await.map(drop)
}

/// The PostgreSQL server of `DATABASE_URL`, else a throwaway one (started
/// here, stopped when the last handle drops). `Err(why)` if none can be had,
/// also where the launcher would panic (`CI=true`, a failed `initdb`):
/// callers skip PostgreSQL rather than fail. Blocking.
#[cfg(feature = "postgres")]
pub fn postgres() -> Result<Arc<pg_support::PgServer>, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // the payload is reported below
    let started = std::panic::catch_unwind(pg_support::shared);
    std::panic::set_hook(hook);
    match started {
        Ok(Some(server)) => Ok(server),
        // The launcher printed why (SKIPPED ...) on stderr.
        Ok(None) => {
            Err("no PostgreSQL server could be started (see the SKIPPED line above)".into())
        }
        Err(payload) => Err(payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "the PostgreSQL launcher panicked".into())),
    }
}
