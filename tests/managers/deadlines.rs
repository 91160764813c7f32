//! A deadline on every call through the services: the service's
//! `timeout` (a clone's own for some calls), gRPC's `grpc-timeout`. Against
//! frozen servers (they read the request and never answer, or answer part
//! of a body and stop): the call fails with `TimedOut`, naming its
//! deadline, and no connection is lent again in the middle of an exchange.
//! Real I/O on loopback with deadlines of a few hundred milliseconds: the
//! servers never answer, so only the deadline can end a call.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use connpool::Pool;
use connpool::managers::HttpError;
use connpool::managers::http::HttpManager;
use connpool::managers::service::HttpService;
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

use super::http1::scripted::{Reply, Scripted, ok};

const DEADLINE: Duration = Duration::from_millis(200);

fn get(uri: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(uri)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// An h2c server: `/` answers `hello`; `/partial` sends `first` and then
/// nothing more, without ending; every other path never answers.
async fn frozen_h2() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let service = service_fn(|req: hyper::Request<Incoming>| async move {
                match req.uri().path() {
                    "/" => {}
                    "/partial" => {
                        let (tx, rx) = tokio::sync::mpsc::channel(1);
                        tx.send(Ok::<_, Infallible>(Frame::data(Bytes::from("first"))))
                            .await
                            .unwrap();
                        // The sender lives on: the body never ends.
                        tokio::spawn(async move {
                            let _tx = tx;
                            std::future::pending::<()>().await
                        });
                        let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
                        return Ok::<_, Infallible>(hyper::Response::new(body.boxed()));
                    }
                    _ => std::future::pending().await,
                }
                Ok(hyper::Response::new(
                    Full::new(Bytes::from("hello")).boxed(),
                ))
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), service),
            );
        }
    });
    addr
}

/// The first request on the first connection is never answered; every
/// other is.
fn frozen_first(conn: usize, req: usize) -> Reply {
    match (conn, req) {
        (0, 0) => Reply::Hang,
        (c, _) => Reply::Send(ok("", &format!("conn {c}"))),
    }
}

#[tokio::test]
async fn http1_a_frozen_server_fails_the_call_at_its_deadline_and_its_connection_is_closed() {
    let server = Scripted::start(frozen_first).await;
    let pool = Pool::builder(HttpManager::http1()).build().await.unwrap();
    let mut svc = HttpService::new(pool.clone(), server.addr).timeout(DEADLINE);
    let e = svc.ready().await.unwrap().call(get("/")).await.unwrap_err();
    assert!(
        matches!(e, HttpError::TimedOut { after } if after == DEADLINE),
        "{e:?}"
    );
    assert!(e.to_string().contains("deadline of 200ms"), "{e}");
    // The connection was left mid-exchange: closed, never lent again; the
    // next call gets a new one and is answered.
    let response = svc.ready().await.unwrap().call(get("/")).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "conn 1");
    assert_eq!(pool.state().counters.closed_broken, 1);
    assert_eq!(svc.in_flight(), 0);
    // Counted where operators look: past its deadline waiting for the reply.
    let counters = pool.state().counters;
    assert_eq!((counters.reply_timeouts, counters.timeouts), (1, 0));
}

/// A clone bound to one instant: its calls share it. The second call of a
/// one-second budget, begun 600 ms in against a server that does not
/// answer it, fails when the budget ends (its own one second would have
/// run 600 ms longer); and a call that waits for a connection past it is
/// counted as waiting for one.
#[tokio::test]
async fn calls_of_a_clone_bound_to_one_instant_share_it() {
    const BUDGET: Duration = Duration::from_secs(1);
    fn second_hangs(_: usize, req: usize) -> Reply {
        match req {
            0 => Reply::Send(ok("", "first")),
            _ => Reply::Hang,
        }
    }
    let server = Scripted::start(second_hangs).await;
    let pool = Pool::builder(HttpManager::http1())
        .max_open(1)
        .build()
        .await
        .unwrap();
    let svc = HttpService::new(pool.clone(), server.addr).timeout(BUDGET);
    let start = tokio::time::Instant::now();
    let request = svc.deadline(start + BUDGET);
    let body = request.get("/").await.unwrap().into_body().text().await;
    assert_eq!(body.unwrap(), "first");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let second = tokio::time::Instant::now();
    let e = request.get("/").await.unwrap_err();
    assert!(
        matches!(e, HttpError::TimedOut { after } if after <= BUDGET),
        "{e:?}"
    );
    let took = second.elapsed();
    assert!(
        took < Duration::from_millis(700),
        "the shared deadline: {took:?}"
    );
    assert!(start.elapsed() >= BUDGET, "{:?}", start.elapsed());
    assert_eq!(pool.state().counters.reply_timeouts, 1);

    // The only connection held: a call bound to an instant 200 ms away
    // fails waiting for a connection, and is counted so.
    let held = pool.get_for(&server.addr.into()).await.unwrap();
    let e = svc
        .deadline(tokio::time::Instant::now() + DEADLINE)
        .get("/")
        .await
        .unwrap_err();
    assert!(matches!(e, HttpError::TimedOut { .. }), "{e:?}");
    assert_eq!(pool.state().counters.timeouts, 1);
    drop(held);
}

#[tokio::test]
async fn http1_a_body_that_stops_fails_at_the_deadline() {
    // Headers and three bytes of a ten-byte body, then nothing.
    let server = Scripted::start(|_, _| {
        Reply::Send("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc".to_owned())
    })
    .await;
    let pool = Pool::builder(HttpManager::http1()).build().await.unwrap();
    let mut svc = HttpService::new(pool.clone(), server.addr).timeout(DEADLINE);
    let response = svc.ready().await.unwrap().call(get("/")).await.unwrap();
    let mut body = response.into_body();
    let e = loop {
        match body.frame().await {
            Some(Ok(_)) => continue,
            Some(Err(e)) => break e,
            None => panic!("the body ended"),
        }
    };
    assert!(matches!(e, HttpError::TimedOut { .. }), "{e:?}");
    assert!(!body.holds_connection());
    assert!(body.frame().await.is_none(), "ended after its error");
    drop(body);
    pool.settled().await;
    assert_eq!(pool.state().counters.closed_broken, 1, "not reused");
    assert_eq!(pool.state().counters.reply_timeouts, 1, "counted");
}

/// A clone of the service with a deadline of its own bounds its calls by
/// it; the service it was cloned from keeps its own.
#[tokio::test]
async fn a_clone_with_its_own_deadline_bounds_its_calls() {
    let server = Scripted::start(|_, _| Reply::Hang).await;
    let pool = Pool::builder(HttpManager::http1()).build().await.unwrap();
    let svc = HttpService::new(pool, server.addr).timeout(Duration::from_secs(3600));
    let mut short = svc.clone().timeout(DEADLINE);
    let e = short
        .ready()
        .await
        .unwrap()
        .call(get("/"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, HttpError::TimedOut { after } if after == DEADLINE),
        "{e:?}"
    );
    assert!(format!("{svc:?}").contains("3600s"), "{svc:?}");
}

#[tokio::test]
async fn http2_a_frozen_stream_fails_at_its_deadline_and_the_connection_serves_on() {
    let addr = frozen_h2().await;
    let pool = Pool::builder(HttpManager::http2()).build().await.unwrap();
    let mut svc = HttpService::new(pool.clone(), addr).timeout(DEADLINE);
    let e = svc
        .ready()
        .await
        .unwrap()
        .call(get("/hang"))
        .await
        .unwrap_err();
    assert!(matches!(e, HttpError::TimedOut { .. }), "{e:?}");

    let response = svc
        .ready()
        .await
        .unwrap()
        .call(get("/partial"))
        .await
        .unwrap();
    let mut body = response.into_body();
    assert_eq!(
        body.frame().await.unwrap().unwrap().into_data().unwrap(),
        "first"
    );
    let e = body.frame().await.unwrap().unwrap_err();
    assert!(matches!(e, HttpError::TimedOut { .. }), "{e:?}");
    drop(body);

    // Only the streams were given up: the connection answers on.
    let response = svc.ready().await.unwrap().call(get("/")).await.unwrap();
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "hello"
    );
    assert_eq!(pool.state().counters.dials, 1);
    assert_eq!(svc.in_flight(), 0);
}

#[cfg(feature = "grpc")]
#[tokio::test]
async fn grpc_the_calls_grpc_timeout_is_its_deadline() {
    use connpool::managers::grpc::GrpcManager;
    use connpool::managers::service::HttpService;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let addr = frozen_h2().await;
    let manager = GrpcManager::new().check_on_connect(false);
    let pool = Pool::builder(manager).build().await.unwrap();
    let mut client = HealthClient::new(HttpService::new(pool, addr));
    let mut request = tonic::Request::new(HealthCheckRequest::default());
    request.set_timeout(DEADLINE);
    let status = client.check(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("deadline of 200ms"), "{status:?}");
}

/// Past the headers, the body of a call through `HttpService` fails as a
/// tonic `Channel`'s would: with a `Status`, here `DEADLINE_EXCEEDED`.
#[cfg(feature = "grpc")]
#[tokio::test]
async fn grpc_a_body_past_its_deadline_fails_with_the_status() {
    use connpool::managers::grpc::GrpcManager;
    use connpool::managers::service::HttpService;

    let addr = frozen_h2().await;
    let manager = GrpcManager::new().check_on_connect(false);
    let pool = Pool::builder(manager).build().await.unwrap();
    let mut svc = HttpService::new(pool, addr);
    let mut request = http::Request::post("/partial")
        .body(tonic::body::Body::empty())
        .unwrap();
    request
        .headers_mut()
        .insert("grpc-timeout", http::HeaderValue::from_static("200m"));
    let response = svc.ready().await.unwrap().call(request).await.unwrap();
    let mut body = response.into_body();
    assert_eq!(
        body.frame().await.unwrap().unwrap().into_data().unwrap(),
        "first"
    );
    let status = body.frame().await.unwrap().unwrap_err();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
}
