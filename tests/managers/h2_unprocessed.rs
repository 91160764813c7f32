//! A request the HTTP/2 server did not process goes again (RFC 9113
//! §8.7): refused by a `GOAWAY` whose last stream is below it, or by
//! `REFUSED_STREAM`. Against a hand-written HTTP/2 server (raw frames,
//! `support::grpc::raw`) that does exactly that to the first request of
//! its first connection, and serves everything else.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use connpool::Pool;
use connpool::managers::http::HttpManager;
use connpool::managers::service::HttpService;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::{Service, ServiceExt};

use crate::support::grpc::raw::{GOAWAY, SETTINGS, frame, read_frame};

/// What the raw connection does to the first request it reads.
#[derive(Clone, Copy)]
enum Refusal {
    /// `GOAWAY` with last stream 0 (graceful), then nothing more.
    Goaway,
    /// `RST_STREAM` `REFUSED_STREAM`; later requests on the connection are
    /// answered `200` with no body.
    RefusedStream,
}

/// A frame on `stream`.
fn frame_on(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = frame(kind, flags, payload);
    f[5..9].copy_from_slice(&stream.to_be_bytes());
    f
}

/// The first connection: raw frames, refusing its first request.
async fn refuse(mut s: TcpStream, how: Refusal) -> std::io::Result<()> {
    const HEADERS: u8 = 0x1;
    const RST_STREAM: u8 = 0x3;
    const END_STREAM_HEADERS: u8 = 0x5;
    const REFUSED_STREAM: u32 = 0x7;
    let mut preface = [0u8; 24];
    s.read_exact(&mut preface).await?;
    s.write_all(&frame(SETTINGS, 0, &[])).await?;
    let mut requests = 0;
    loop {
        let (head, _) = read_frame(&mut s).await?;
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        match head[3] {
            SETTINGS if head[4] & 1 == 0 => s.write_all(&frame(SETTINGS, 1, &[])).await?,
            HEADERS => {
                requests += 1;
                let reply = match (how, requests) {
                    (Refusal::Goaway, _) => {
                        let mut goaway = 0u32.to_be_bytes().to_vec();
                        goaway.extend_from_slice(&0u32.to_be_bytes());
                        frame(GOAWAY, 0, &goaway)
                    }
                    (Refusal::RefusedStream, 1) => {
                        frame_on(RST_STREAM, 0, stream, &REFUSED_STREAM.to_be_bytes())
                    }
                    // `:status: 200` (HPACK static index 8), no body.
                    (Refusal::RefusedStream, _) => {
                        frame_on(HEADERS, END_STREAM_HEADERS, stream, &[0x88])
                    }
                };
                s.write_all(&reply).await?;
            }
            _ => {}
        }
    }
}

/// A server whose first connection refuses its first request (`how`) and
/// whose other connections are hyper's, answering `hello`. Counts them.
async fn start(how: Refusal) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            if count.fetch_add(1, Ordering::SeqCst) == 0 {
                tokio::spawn(refuse(socket, how));
                continue;
            }
            let service = service_fn(|_: hyper::Request<Incoming>| async {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("hello"))))
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), service),
            );
        }
    });
    (addr, accepted)
}

fn post() -> http::Request<Full<Bytes>> {
    // POST: not idempotent, and still safe to send again, since the server
    // did not process it.
    http::Request::post("/")
        .body(Full::new(Bytes::from("payload")))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_refused_by_goaway_goes_again_on_a_new_connection() {
    let (addr, accepted) = start(Refusal::Goaway).await;
    let pool = Pool::builder(HttpManager::http2()).build().await.unwrap();
    let mut svc = HttpService::new(pool.clone(), addr);
    let response = svc.ready().await.unwrap().call(post()).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "hello");
    assert_eq!(svc.retries(), 1);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_goes_again() {
    let (addr, _) = start(Refusal::RefusedStream).await;
    let pool = Pool::builder(HttpManager::http2()).build().await.unwrap();
    let mut svc = HttpService::new(pool.clone(), addr);
    let response = svc.ready().await.unwrap().call(post()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(svc.retries(), 1);
}
