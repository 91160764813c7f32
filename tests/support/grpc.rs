//! An in-process tonic server on 127.0.0.1 with tonic-health's health
//! service (`""` and [`SERVICE`] `SERVING`), counting the connections it
//! accepts, with a chosen `MAX_CONCURRENT_STREAMS`: [`GrpcServer`]. Used by
//! `managers/grpc/` and, behind [`super::fault`]'s proxy, `reliability/faults/`.
//!
//! And, without tonic (so `managers/http2.rs` uses it too, with the `http`
//! feature alone), raw HTTP/2 for scripted servers: [`raw`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
#[cfg(feature = "grpc")]
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
#[cfg(feature = "grpc")]
use tokio::time::timeout;
#[cfg(feature = "grpc")]
use tokio_stream::StreamExt;
#[cfg(feature = "grpc")]
use tokio_stream::wrappers::TcpListenerStream;
#[cfg(feature = "grpc")]
use tonic::transport::Server;
#[cfg(feature = "grpc")]
use tonic_health::ServingStatus;
#[cfg(feature = "grpc")]
use tonic_health::server::HealthReporter;

#[cfg(feature = "grpc")]
use super::BOUND;

/// A service the health service reports besides `""`.
pub const SERVICE: &str = "test.Svc";

/// A tonic server with the health service (`""` and `test.Svc` SERVING),
/// counting the connections it accepts.
#[cfg(feature = "grpc")]
pub struct GrpcServer {
    pub addr: SocketAddr,
    pub reporter: HealthReporter,
    accepted: Arc<AtomicUsize>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

#[cfg(feature = "grpc")]
impl GrpcServer {
    /// On a free port; `max_streams` is its `MAX_CONCURRENT_STREAMS`
    /// (`None`: tonic's default).
    pub async fn start(max_streams: Option<u32>) -> GrpcServer {
        Self::start_on("127.0.0.1:0".parse().unwrap(), max_streams).await
    }

    pub async fn start_on(addr: SocketAddr, max_streams: Option<u32>) -> GrpcServer {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status(SERVICE, ServingStatus::Serving)
            .await;
        let accepted = Arc::new(AtomicUsize::new(0));
        let incoming = counted(listener, Arc::clone(&accepted));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            Server::builder()
                .max_concurrent_streams(max_streams)
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        GrpcServer { addr, reporter, accepted, shutdown: Some(tx), task }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Stops at once, without waiting for connections to finish (a graceful
    /// shutdown would wait forever for a connection behind a black hole).
    pub fn abort(self) {
        self.task.abort();
    }

    /// Graceful shutdown (GOAWAY to every connection); waits until the
    /// server has stopped (at most 5 s).
    pub async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        timeout(BOUND, &mut self.task)
            .await
            .expect("server stopped within 5 s")
            .unwrap();
    }
}

/// The connections `listener` accepts, each counted in `accepted`.
#[cfg(feature = "grpc")]
fn counted(
    listener: TcpListener,
    accepted: Arc<AtomicUsize>,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    TcpListenerStream::new(listener).map(move |conn| {
        if conn.is_ok() {
            accepted.fetch_add(1, Ordering::SeqCst);
        }
        conn
    })
}

/// A tonic server *without* the `grpc.health.v1` service: it answers
/// health checks `UNIMPLEMENTED`, as most gRPC servers do. Its one
/// service is [`ECHO`]: tonic-health's `Check` under another name, called
/// with [`echo`].
#[cfg(feature = "grpc")]
pub struct NoHealthServer {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

/// The service [`NoHealthServer`] serves.
#[cfg(feature = "grpc")]
pub const ECHO: &str = "test.Echo";

#[cfg(feature = "grpc")]
impl NoHealthServer {
    pub async fn start() -> NoHealthServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_reporter, health) = tonic_health::server::health_reporter();
        let accepted = Arc::new(AtomicUsize::new(0));
        let incoming = counted(listener, Arc::clone(&accepted));
        let task = tokio::spawn(async move {
            Server::builder()
                .add_service(Renamed(health))
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
        NoHealthServer { addr, accepted, task }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

#[cfg(feature = "grpc")]
impl Drop for NoHealthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One `test.Echo/Check` call through `transport` (a pooled service, or a
/// checked-out connection): `SERVING` back.
#[cfg(feature = "grpc")]
pub async fn echo<T>(transport: T) -> Result<(), tonic::Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
    let mut client = tonic::client::Grpc::new(transport);
    client
        .ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.into().to_string()))?;
    let path = http::uri::PathAndQuery::from_static("/test.Echo/Check");
    let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
    let reply = client
        .unary(
            tonic::Request::new(HealthCheckRequest::default()),
            path,
            codec,
        )
        .await?;
    assert_eq!(reply.get_ref().status, ServingStatus::Serving as i32);
    Ok(())
}

/// A service served under [`ECHO`]'s name instead of its own.
#[cfg(feature = "grpc")]
#[derive(Clone)]
struct Renamed<S>(S);

#[cfg(feature = "grpc")]
impl<S> tonic::server::NamedService for Renamed<S> {
    const NAME: &'static str = ECHO;
}

#[cfg(feature = "grpc")]
impl<S, B> tower::Service<http::Request<B>> for Renamed<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request
            .uri()
            .path()
            .replacen("/test.Echo/", "/grpc.health.v1.Health/", 1);
        *request.uri_mut() = path.parse().unwrap();
        self.0.call(request)
    }
}

/// How long an HTTP/2 client with keepalive (`interval`, `timeout`) took to
/// declare a peer behind a black hole dead: hyper PINGs `interval` after
/// the last frame read (the response, just before the black hole), then
/// waits `timeout` for the ACK; so at least `interval`, at most twice
/// `interval + timeout` (+ 500 ms of scheduling).
#[track_caller]
pub fn assert_keepalive_verdict(took: Duration, interval: Duration, timeout: Duration) {
    assert!(
        took >= interval,
        "{took:?}: faster than a PING could be due"
    );
    assert!(
        took <= 2 * (interval + timeout) + Duration::from_millis(500),
        "{took:?}"
    );
}

/// Raw HTTP/2: frames on stream 0, and a server that turns every
/// connection away as it opens.
pub mod raw {
    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Frame type `SETTINGS`.
    pub const SETTINGS: u8 = 0x4;
    /// Frame type `PING`.
    pub const PING: u8 = 0x6;
    /// Frame type `GOAWAY`.
    pub const GOAWAY: u8 = 0x7;
    /// The `ACK` flag (of `SETTINGS` and `PING`).
    pub const ACK: u8 = 0x1;

    /// A frame on stream 0 (the connection): 9-byte header, then `payload`.
    pub fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        frame.extend_from_slice(&[kind, flags, 0, 0, 0, 0]);
        frame.extend_from_slice(payload);
        frame
    }

    /// The next frame from `s`: its 9-byte header (length, type, flags,
    /// stream) and its payload.
    pub async fn read_frame(
        s: &mut (impl tokio::io::AsyncRead + Unpin),
    ) -> std::io::Result<([u8; 9], Vec<u8>)> {
        let mut head = [0u8; 9];
        s.read_exact(&mut head).await?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0; len];
        s.read_exact(&mut payload).await?;
        Ok((head, payload))
    }

    /// A `GOAWAY` frame: last stream 0 (no stream was processed), `code`,
    /// then `debug` data.
    pub fn goaway(code: u32, debug: &[u8]) -> Vec<u8> {
        let mut payload = 0u32.to_be_bytes().to_vec();
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(debug);
        frame(GOAWAY, 0, &payload)
    }

    /// A server shutting down (or at its connection limit) as some do:
    /// it accepts, reads the client's preface, and answers with one write
    /// holding both its (empty) `SETTINGS` and `GOAWAY` with `code` and
    /// `debug`; then it reads until the client closes. Counts connections.
    pub struct GoawayOnConnect {
        pub addr: SocketAddr,
        accepted: Arc<AtomicUsize>,
        task: JoinHandle<()>,
    }

    impl GoawayOnConnect {
        pub async fn start(code: u32, debug: &'static [u8]) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let accepted = Arc::<AtomicUsize>::default();
            let counter = Arc::clone(&accepted);
            let task = tokio::spawn(async move {
                while let Ok((mut s, _)) = listener.accept().await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(async move {
                        let mut preface = [0u8; 24];
                        s.read_exact(&mut preface).await?;
                        let mut reply = frame(SETTINGS, 0, &[]);
                        reply.extend(goaway(code, debug));
                        s.write_all(&reply).await?;
                        let mut sink = [0u8; 1024];
                        while s.read(&mut sink).await? > 0 {}
                        Ok::<_, std::io::Error>(())
                    });
                }
            });
            Self { addr, accepted, task }
        }

        /// Connections accepted so far.
        pub fn accepted(&self) -> usize {
            self.accepted.load(Ordering::SeqCst)
        }
    }

    /// The message of a dial that [`GoawayOnConnect`] turned away (started
    /// with the debug data `shutting down`) says so.
    #[track_caller]
    pub fn assert_goaway_during_setup(message: &str) {
        for part in ["GOAWAY", "during connection setup", "shutting down"] {
            assert!(message.contains(part), "{message}");
        }
    }

    impl Drop for GoawayOnConnect {
        fn drop(&mut self) {
            self.task.abort();
        }
    }
}
