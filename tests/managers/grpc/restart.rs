//! A gRPC server killed and started again on its port, as a client sees
//! it (every connection reset, no GOAWAY, every new one reset too while it
//! is down: a `FaultProxy` in front of the in-process server, since an
//! in-process tonic server cannot drop the connections it serves), called
//! through `HttpService` with each call's own deadline (`grpc-timeout`),
//! through `support::outage` (what it asserts is there); every failure is
//! `UNAVAILABLE`. And the server frozen (the proxy reads nothing: the
//! kernel accepts and acknowledges, nothing answers) and thawed: every
//! call ends `DEADLINE_EXCEEDED` at its `grpc-timeout`, and the first after
//! the thaw is served.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::grpc::GrpcManager;
use connpool::managers::service::HttpService;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::support::fault::{Fault, FaultProxy};
use crate::support::grpc::GrpcServer;
use crate::support::outage::behind;

/// Each call's deadline.
const DEADLINE: Duration = Duration::from_secs(2);

type Client = HealthClient<HttpService<GrpcManager>>;

/// One health check under [`DEADLINE`]; every failure is `UNAVAILABLE`.
async fn call(client: &Client) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(HealthCheckRequest::default());
    request.set_timeout(DEADLINE);
    let got = client.clone().check(request).await.map(drop);
    if let Err(status) = &got {
        assert_eq!(status.code(), Code::Unavailable, "{status}");
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted() {
    let server = GrpcServer::start(None).await;
    let proxy = FaultProxy::start(server.addr).await;
    let addr = proxy.addr;
    let pool = Pool::builder(GrpcManager::new())
        .checkout_timeout(DEADLINE)
        .build()
        .await
        .unwrap();
    let client: Client = HealthClient::new(HttpService::new(pool.clone(), addr));
    for _ in 0..8 {
        call(&client).await.unwrap();
    }

    behind("gRPC", DEADLINE, &proxy, Fault::Reset, || call(&client)).await;
    pool.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_frozen_and_thawed() {
    const SHORT: Duration = Duration::from_millis(300);
    let server = GrpcServer::start(None).await;
    let proxy = FaultProxy::start(server.addr).await;
    let pool = Pool::builder(GrpcManager::new())
        .checkout_timeout(SHORT)
        .build()
        .await
        .unwrap();
    let client: Client = HealthClient::new(HttpService::new(pool.clone(), proxy.addr));
    let call = || async {
        let mut request = tonic::Request::new(HealthCheckRequest::default());
        request.set_timeout(SHORT);
        let got = client.clone().check(request).await.map(drop);
        if let Err(status) = &got {
            assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
        }
        got
    };
    for _ in 0..8 {
        call().await.unwrap();
    }
    behind("gRPC frozen", SHORT, &proxy, Fault::Freeze, call).await;
    pool.close().await;
    server.stop().await;
}
