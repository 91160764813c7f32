//! `HttpService`: a generated tonic client calling through the pool gets
//! the gRPC status codes a tonic `Channel` gives (`UNAVAILABLE` for what a
//! retry policy may try again), with the pool's message: a refused dial, a
//! key backing off, a checkout deadline, a closed pool, and a call whose
//! connection is cut under it.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::grpc::GrpcManager;
use connpool::managers::service::HttpService;
use connpool::managers::tcp::Destination;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::support::fault::{Fault, FaultProxy};
use crate::support::grpc::GrpcServer;
use crate::support::until;

async fn check(service: &HttpService<GrpcManager>) -> Result<(), tonic::Status> {
    let mut client = HealthClient::new(service.clone());
    client.check(HealthCheckRequest::default()).await.map(drop)
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_refused_dial_and_a_backoff_are_unavailable_a_closed_pool_cancelled() {
    let pool = Pool::builder(GrpcManager::new()).build().await.unwrap();
    let service = HttpService::new(pool.clone(), ("127.0.0.1", closed_port()));

    let refused = check(&service).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().starts_with("connect failed: "),
        "{refused:?}"
    );
    assert!(refused.message().contains("refused"), "{refused:?}");

    let backing_off = check(&service).await.unwrap_err();
    assert_eq!(backing_off.code(), Code::Unavailable, "{backing_off:?}");
    assert!(
        backing_off.message().starts_with("dials are backing off"),
        "{backing_off:?}"
    );

    pool.close().await;
    let closed = check(&service).await.unwrap_err();
    assert_eq!(closed.code(), Code::Cancelled, "{closed:?}");
    assert_eq!(closed.message(), "the pool is closed");
}

/// A server that accepts connections and never speaks HTTP/2: the dial
/// waits for its `SETTINGS`, and the call runs into the checkout deadline.
#[tokio::test(start_paused = true)]
async fn the_checkout_deadline_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let pool = Pool::builder(GrpcManager::new())
        .checkout_timeout(Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    let service = HttpService::new(pool.clone(), Destination::from(addr));
    let timed_out = check(&service).await.unwrap_err();
    assert_eq!(timed_out.code(), Code::Unavailable, "{timed_out:?}");
    assert!(
        timed_out.message().starts_with(&format!(
            "no connection available to {addr} within the checkout deadline"
        )),
        "{timed_out:?}"
    );
    pool.close().await;
}

/// A call in flight whose connection is cut: `UNAVAILABLE`, and the next
/// call goes through a new connection.
#[tokio::test]
async fn a_call_whose_connection_is_cut_is_unavailable() {
    let server = GrpcServer::start(None).await;
    let proxy = FaultProxy::start(server.addr).await;
    let pool = Pool::builder(GrpcManager::new()).build().await.unwrap();
    let service = HttpService::new(pool.clone(), Destination::from(proxy.addr));
    check(&service).await.expect("a first call");

    proxy.blackhole();
    let call = tokio::spawn({
        let service = service.clone();
        async move { check(&service).await }
    });
    until("the call has its connection", || {
        pool.state().borrowers == 1
    })
    .await;
    proxy.set(Fault::Reset);
    let cut = call.await.unwrap().unwrap_err();
    assert_eq!(cut.code(), Code::Unavailable, "{cut:?}");
    assert!(cut.message().starts_with("HTTP request failed"), "{cut:?}");

    proxy.clear();
    check(&service).await.expect("a new connection");
    pool.close().await;
}
