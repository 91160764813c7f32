//! `HttpService`, the per-call tower service over a pool of HTTP/2
//! connections, against real in-process hyper and tonic servers on
//! loopback: a call holds its connection's place exactly as long as its
//! response body is open, calls past the server's stream limit open more
//! connections, tonic clients call through it, and routing by authority
//! gives each host its own key.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use connpool::Pool;
use connpool::managers::HttpError;
use connpool::managers::Origin;
use connpool::managers::http::HttpBody;
use connpool::managers::http::HttpManager;
use connpool::managers::service::HttpService;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tower::{Service, ServiceExt};

use crate::support::{BOUND, Counts, ZERO, counts, until};

type Streams = Arc<Mutex<Vec<mpsc::Sender<Result<Frame<Bytes>, Infallible>>>>>;

/// A hyper HTTP/2 (h2c) server: `/` answers `hello`; `/stream` sends
/// `first` at once and the rest only when [`finish`](Self::finish) is
/// called. Its connections can be cut ([`cut`](Self::cut)).
pub(crate) struct StreamServer {
    pub(crate) addr: SocketAddr,
    open_streams: Streams,
    accepted: Arc<AtomicUsize>,
    #[cfg_attr(not(feature = "balance"), allow(dead_code))]
    served: Arc<AtomicUsize>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    #[cfg_attr(not(feature = "balance"), allow(dead_code))]
    listener: JoinHandle<()>,
    /// While set, `/` answers `503 Service Unavailable`.
    #[cfg_attr(not(feature = "balance"), allow(dead_code))]
    failing: Arc<AtomicBool>,
}

impl StreamServer {
    pub(crate) async fn start(ip: &str, max_streams: Option<u32>) -> StreamServer {
        Self::serve(TcpListener::bind((ip, 0)).await.unwrap(), max_streams)
    }

    /// A new server on the address of one killed: its listener's socket
    /// closes when the aborted task is dropped, soon after.
    #[cfg(feature = "balance")]
    pub(crate) async fn start_at(addr: SocketAddr) -> StreamServer {
        let start = std::time::Instant::now();
        loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => return Self::serve(listener, None),
                Err(e) => assert!(start.elapsed() < BOUND, "{addr}: {e}"),
            }
            tokio::task::yield_now().await;
        }
    }

    fn serve(listener: TcpListener, max_streams: Option<u32>) -> StreamServer {
        let addr = listener.local_addr().unwrap();
        let open_streams: Streams = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(AtomicUsize::new(0));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (streams, count, tasks) = (open_streams.clone(), accepted.clone(), conns.clone());
        let requests = served.clone();
        let failing = Arc::new(AtomicBool::new(false));
        let fails = failing.clone();
        let listener = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (streams, requests) = (streams.clone(), requests.clone());
                let fails = fails.clone();
                let serve = service_fn(move |req: Request<Incoming>| {
                    let streams = streams.clone();
                    requests.fetch_add(1, Ordering::SeqCst);
                    let fails = fails.load(Ordering::SeqCst);
                    async move {
                        if fails {
                            let mut response = Response::new(Full::default().boxed());
                            *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                            return Ok::<_, Infallible>(response);
                        }
                        Ok::<_, Infallible>(respond(&req, &streams).await)
                    }
                });
                let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                builder.max_concurrent_streams(max_streams);
                tasks.lock().push(tokio::spawn(async move {
                    let _ = builder.serve_connection(TokioIo::new(socket), serve).await;
                }));
            }
        });
        StreamServer { addr, open_streams, accepted, served, conns, listener, failing }
    }

    /// From now on, `/` answers `503` (`true`) or as usual (`false`).
    #[cfg_attr(not(feature = "balance"), allow(dead_code))]
    pub(crate) fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Stops accepting and drops every connection: a dead server (the
    /// balancer's tests).
    #[cfg_attr(not(feature = "balance"), allow(dead_code))]
    pub(crate) fn kill(&self) {
        self.listener.abort();
        self.cut();
    }

    /// Requests received.
    #[cfg_attr(not(feature = "balance"), allow(dead_code))]
    pub(crate) fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    /// Ends every open `/stream` response with `last`.
    pub(crate) async fn finish(&self) {
        let senders: Vec<_> = self.open_streams.lock().drain(..).collect();
        for tx in senders {
            let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"last")))).await;
        }
    }

    /// Drops every connection without a `GOAWAY`.
    fn cut(&self) {
        for task in self.conns.lock().drain(..) {
            task.abort();
        }
    }

    pub(crate) fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn respond(
    req: &Request<Incoming>,
    streams: &Streams,
) -> Response<BoxBody<Bytes, Infallible>> {
    if req.uri().path() == "/stream" {
        let (tx, rx) = mpsc::channel(4);
        tx.send(Ok(Frame::data(Bytes::from_static(b"first"))))
            .await
            .unwrap();
        streams.lock().push(tx);
        Response::new(StreamBody::new(ReceiverStream::new(rx)).boxed())
    } else {
        Response::new(Full::new(Bytes::from_static(b"hello")).boxed())
    }
}

type Svc = HttpService<HttpManager>;

async fn service_to(server: &StreamServer) -> Svc {
    let pool = Pool::builder(HttpManager::http2()).build().await.unwrap();
    HttpService::new(pool, server.addr)
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path).body(Full::default()).unwrap()
}

async fn call(
    svc: &mut Svc,
    request: Request<Full<Bytes>>,
) -> Result<Response<HttpBody>, HttpError> {
    svc.ready().await?.call(request).await
}

async fn next_chunk(body: &mut HttpBody) -> Bytes {
    let frame = body.frame().await.expect("a frame").expect("no error");
    frame.into_data().expect("a data frame")
}

/// Borrowed by one call, on one connection.
const ONE_CALL: Counts = Counts { open: 1, lent: 1, borrowers: 1, ..ZERO };
/// One connection, idle in the pool.
const ONE_IDLE: Counts = Counts { open: 1, idle: 1, ..ZERO };

#[tokio::test]
async fn a_streaming_response_holds_its_borrow_until_its_body_ends() {
    let server = StreamServer::start("127.0.0.1", None).await;
    let mut svc = service_to(&server).await;
    let pool = svc.pool().clone();

    let mut body = call(&mut svc, get("/stream")).await.unwrap().into_body();
    assert_eq!(next_chunk(&mut body).await, "first");
    assert!(body.holds_connection());
    assert_eq!(counts(&pool), ONE_CALL, "the open stream keeps its place");
    assert_eq!(svc.in_flight(), 1, "its load counts the open call");

    server.finish().await;
    assert_eq!(next_chunk(&mut body).await, "last");
    while let Some(frame) = body.frame().await {
        let data = frame.expect("no error").into_data().expect("a data frame");
        assert!(
            data.is_empty(),
            "only the end of the stream is left: {data:?}"
        );
    }
    assert!(!body.holds_connection());
    assert_eq!(svc.in_flight(), 0);
    assert_eq!(
        counts(&pool),
        ONE_IDLE,
        "given back when the body ended, before it was dropped"
    );
    drop(body);
    assert_eq!(pool.state().counters.dials, 1);
}

#[tokio::test]
async fn dropping_an_unfinished_body_gives_its_place_back() {
    let server = StreamServer::start("127.0.0.1", None).await;
    let mut svc = service_to(&server).await;
    let pool = svc.pool().clone();

    let response = call(&mut svc, get("/stream")).await.unwrap();
    assert_eq!(counts(&pool), ONE_CALL);
    drop(response);
    assert_eq!(counts(&pool), ONE_IDLE);

    // The connection is reused: the reset stream did not break it.
    let body = call(&mut svc, get("/")).await.unwrap().into_body();
    assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
    assert_eq!(counts(&pool), ONE_IDLE);
    assert_eq!(pool.state().counters.dials, 1);
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn calls_beyond_the_stream_limit_spread_over_new_connections() {
    let server = StreamServer::start("127.0.0.1", Some(2)).await;
    let mut svc = service_to(&server).await;
    let pool = svc.pool().clone();

    let mut bodies = Vec::new();
    for _ in 0..5 {
        let mut body = call(&mut svc, get("/stream")).await.unwrap().into_body();
        assert_eq!(next_chunk(&mut body).await, "first");
        bodies.push(body);
    }
    let state = pool.state();
    assert_eq!((state.open, state.borrowers), (3, 5), "2 + 2 + 1 streams");
    assert_eq!(server.accepted(), 3);

    server.finish().await;
    for body in bodies {
        assert_eq!(body.collect().await.unwrap().to_bytes(), "last");
    }
    assert_eq!(counts(&pool), Counts { open: 3, idle: 3, ..ZERO });
}

#[tokio::test]
async fn a_cut_connection_fails_only_its_calls_and_is_replaced() {
    let server = StreamServer::start("127.0.0.1", None).await;
    let mut svc = service_to(&server).await;
    let pool = svc.pool().clone();

    let mut body = call(&mut svc, get("/stream")).await.unwrap().into_body();
    assert_eq!(next_chunk(&mut body).await, "first");
    server.cut();
    let failed = body.frame().await.expect("an error frame");
    assert!(failed.is_err(), "the call in flight fails: {failed:?}");
    assert!(!body.holds_connection());
    until("the pool closes the dead connection", || {
        pool.state().counters.closed_broken == 1
    })
    .await;

    let body = call(&mut svc, get("/")).await.unwrap().into_body();
    assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
    assert_eq!(pool.state().counters.dials, 2);
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn routing_by_authority_gives_each_host_its_own_key() {
    let a = StreamServer::start("127.0.0.1", None).await;
    let b = StreamServer::start("127.0.0.2", None).await;
    let pool = Pool::builder(HttpManager::http2()).build().await.unwrap();
    let mut svc = HttpService::by_authority(pool.clone());

    for server in [&a, &b, &a, &b] {
        let uri = format!("http://{}/", server.addr);
        let body = call(&mut svc, get(&uri)).await.unwrap().into_body();
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
    }
    for server in [&a, &b] {
        let key = pool
            .key_state(&Origin::http(server.addr))
            .expect("a key per host");
        assert_eq!((key.open, key.counters.dials), (1, 1));
        assert_eq!(server.accepted(), 1);
    }

    let e = call(&mut svc, get("/no-authority")).await.unwrap_err();
    assert!(matches!(e, HttpError::NoAuthority(_)), "{e:?}");
    assert!(
        e.to_string().contains("\"/no-authority\" has no authority"),
        "{e}"
    );
}

#[tokio::test]
async fn a_failed_dial_reads_well_through_the_service() {
    // A port nobody listens on: bind, note it, close.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let pool = Pool::builder(HttpManager::http2())
        .no_backoff()
        .checkout_timeout(BOUND)
        .build()
        .await
        .unwrap();
    let mut svc = HttpService::new(pool, addr);
    let e = call(&mut svc, get("/")).await.unwrap_err();
    assert!(e.pool_error().is_some(), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains(&addr.to_string()) && message.contains("refused"),
        "{message}"
    );
}

#[cfg(feature = "grpc")]
mod tonic_client {
    use connpool::Pool;
    use connpool::managers::http::HttpManager;
    use connpool::managers::service::HttpService;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    use crate::support::grpc::{GrpcServer, SERVICE};
    use crate::support::{Counts, ZERO, counts};

    #[tokio::test]
    async fn a_tonic_client_calls_through_the_service_and_frees_each_call() {
        let server = GrpcServer::start(None).await;
        let manager = HttpManager::http2().with_body::<tonic::body::Body>();
        let pool = Pool::builder(manager).build().await.unwrap();
        let mut client = HealthClient::new(HttpService::new(pool.clone(), server.addr));

        for service in ["", SERVICE, "", SERVICE] {
            let request = HealthCheckRequest { service: service.into() };
            let reply = client.check(request).await.unwrap();
            assert_eq!(reply.get_ref().status(), ServingStatus::Serving);
            assert_eq!(
                counts(&pool),
                Counts { open: 1, idle: 1, ..ZERO },
                "a finished call frees its place"
            );
        }
        assert_eq!(pool.state().counters.dials, 1);
        assert_eq!(server.accepted(), 1);

        let status = client
            .check(HealthCheckRequest { service: "no.such.Service".into() })
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::NotFound,
            "the server's own status: {status}"
        );
    }
}
