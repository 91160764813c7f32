//! An in-process tonic server on 127.0.0.1 with tonic-health's health
//! service (`""` and [`SERVICE`] `SERVING`), counting the connections it
//! accepts, with a chosen `MAX_CONCURRENT_STREAMS`: [`GrpcServer`]. Used by
//! `tests/grpc.rs` and, behind `fault_support`'s proxy, `tests/faults.rs`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// Bound of the waits for the server (its graceful stop).
pub const BOUND: Duration = Duration::from_secs(5);
/// A service the health service reports besides `""`.
pub const SERVICE: &str = "test.Svc";

/// A tonic server with the health service (`""` and `test.Svc` SERVING),
/// counting the connections it accepts.
pub struct GrpcServer {
    pub addr: SocketAddr,
    pub reporter: HealthReporter,
    accepted: Arc<AtomicUsize>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

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
        let counter = Arc::clone(&accepted);
        let incoming = TcpListenerStream::new(listener).map(move |conn| {
            if conn.is_ok() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            conn
        });
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
        GrpcServer {
            addr,
            reporter,
            accepted,
            shutdown: Some(tx),
            task,
        }
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
