//! The test HTTP/2 server: hyper's, in-process on 127.0.0.1, h2c.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub(super) enum Cmd {
    /// Drop the connection: the client sees FIN without GOAWAY.
    Close,
    /// Graceful shutdown: GOAWAY, in-flight requests finish.
    GoAway,
}

struct Shared {
    accepted: AtomicUsize,
    /// Connections whose serving has not ended.
    open: AtomicUsize,
    in_flight: AtomicUsize,
    served: AtomicUsize,
    /// Requests to `/slow` wait until this turns true.
    release: watch::Sender<bool>,
    conns: Mutex<Vec<mpsc::UnboundedSender<Cmd>>>,
}

/// A hyper HTTP/2 (h2c) server: `/` answers `hello`, `/slow` answers
/// `slow` once released. Counts connections and requests in flight.
pub(super) struct H2Server {
    pub(super) addr: SocketAddr,
    shared: Arc<Shared>,
}

impl H2Server {
    pub(super) async fn start(max_streams: Option<u32>) -> H2Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            accepted: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            release: watch::channel(false).0,
            conns: Mutex::new(Vec::new()),
        });
        let server = Arc::clone(&shared);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                server.accepted.fetch_add(1, Ordering::SeqCst);
                server.open.fetch_add(1, Ordering::SeqCst);
                let (tx, mut rx) = mpsc::unbounded_channel();
                server.conns.lock().push(tx);
                let handler = Arc::clone(&server);
                let open = Arc::clone(&server);
                tokio::spawn(async move {
                    let _open = OnDrop(move || open.open.fetch_sub(1, Ordering::SeqCst));
                    let mut builder =
                        hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                    builder.max_concurrent_streams(max_streams);
                    let conn = builder.serve_connection(
                        TokioIo::new(stream),
                        service_fn(move |req| handle(Arc::clone(&handler), req)),
                    );
                    tokio::pin!(conn);
                    loop {
                        tokio::select! {
                            _ = conn.as_mut() => return,
                            cmd = rx.recv() => match cmd {
                                None => {}
                                Some(Cmd::Close) => return,
                                Some(Cmd::GoAway) => conn.as_mut().graceful_shutdown(),
                            },
                        }
                    }
                });
            }
        });
        H2Server { addr, shared }
    }

    pub(super) fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    pub(super) fn open(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    pub(super) fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    pub(super) fn release(&self) {
        self.shared.release.send_replace(true);
    }

    pub(super) fn each(&self, cmd: fn() -> Cmd) {
        for c in self.shared.conns.lock().iter() {
            let _ = c.send(cmd());
        }
    }
}

/// Runs its closure when dropped (a connection's serving task ended, or
/// was aborted).
struct OnDrop<F: FnMut() -> usize>(F);

impl<F: FnMut() -> usize> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

async fn handle(
    server: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    server.in_flight.fetch_add(1, Ordering::SeqCst);
    let body = if req.uri().path() == "/slow" {
        let mut release = server.release.subscribe();
        let _ = release.wait_for(|r| *r).await;
        "slow"
    } else {
        "hello"
    };
    server.in_flight.fetch_sub(1, Ordering::SeqCst);
    server.served.fetch_add(1, Ordering::SeqCst);
    Ok(Response::new(Full::new(Bytes::from_static(
        body.as_bytes(),
    ))))
}
