//! A gRPC server killed and started again on its port, as a client sees
//! it (every connection reset, no GOAWAY, every new one reset too while it
//! is down: a `FaultProxy` in front of the in-process server, since an
//! in-process tonic server cannot drop the connections it serves), called
//! through `GrpcService` with each call's own deadline (`grpc-timeout`):
//! while it is down every call ends within its deadline with
//! `UNAVAILABLE`; once it is back, calls succeed again within about a
//! probe's delay, and none after the first success fails.
//!
//! Real time: the server is down for a fixed 500 ms (a fault has to be on
//! for a while); the waits for an outcome are bounded polls.

use std::time::{Duration, Instant};

use connpool::Pool;
use connpool::managers::grpc::{GrpcManager, GrpcService};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::support::fault::{Fault, FaultProxy};
use crate::support::grpc::GrpcServer;

/// Each call's deadline.
const DEADLINE: Duration = Duration::from_secs(2);
/// Time past a deadline within which a call must have ended.
const SLACK: Duration = Duration::from_millis(500);

type Client = HealthClient<GrpcService<GrpcManager>>;

async fn call(client: &Client) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(HealthCheckRequest::default());
    request.set_timeout(DEADLINE);
    client.clone().check(request).await.map(drop)
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
    let client: Client = HealthClient::new(GrpcService::new(pool.clone(), addr));
    for _ in 0..8 {
        call(&client).await.unwrap();
    }

    proxy.set(Fault::Reset);
    let down = Instant::now();
    let mut failed = 0;
    while down.elapsed() < Duration::from_millis(500) {
        let start = Instant::now();
        let status = call(&client).await.expect_err("a call answered while down");
        assert_eq!(status.code(), Code::Unavailable, "{status}");
        assert!(start.elapsed() < DEADLINE + SLACK, "{:?}", start.elapsed());
        failed += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failed > 0);

    proxy.clear();
    let back = Instant::now();
    while let Err(status) = call(&client).await {
        assert!(
            back.elapsed() < Duration::from_secs(3),
            "no call served within 3 s of the restart: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = back.elapsed();
    let after = (0..64).map(|_| call(&client));
    for got in futures_util::future::join_all(after).await {
        got.unwrap();
    }
    eprintln!("{failed} calls failed while down; the first served {first:?} after the restart");
    pool.close().await;
    server.stop().await;
}
