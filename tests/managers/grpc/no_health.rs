//! A gRPC server without the `grpc.health.v1` service (most servers): with
//! the defaults its connections are checked on connect, pinged while idle
//! and kept, and many calls ride one connection.

use std::time::Duration;

use connpool::managers::Origin;
use connpool::managers::grpc::GrpcManager;
use connpool::managers::service::HttpService;
use connpool::{Manager, Pool};
use tokio::time::timeout;

use crate::support::grpc::{NoHealthServer, echo};

// 1,000 calls through the pooled service with the defaults: every one
// served, over the one connection, which also passes the pool's idle
// health check (the same `Check`, answered UNIMPLEMENTED).
#[tokio::test]
async fn a_server_without_the_health_service_serves_with_the_defaults() {
    let server = NoHealthServer::start().await;
    let dest = Origin::from(server.addr);
    let pool = Pool::builder(GrpcManager::new()).build().await.unwrap();
    let service = HttpService::new(pool.clone(), dest.clone());

    echo(service.clone()).await.unwrap();
    let calls = async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let service = service.clone();
            tasks.spawn(async move {
                for _ in 0..125 {
                    echo(service.clone()).await.unwrap();
                }
            });
        }
        tasks.join_all().await
    };
    timeout(Duration::from_secs(30), calls)
        .await
        .expect("1,000 calls within 30 s");

    // The idle health check (a ping), as the pool runs it on a connection
    // idle past `health_check`, and as its keepalive does.
    let mut conn = pool.get_for(&dest).await.unwrap();
    pool.manager().ping(&mut conn).await.unwrap();
    assert!(!pool.manager().health(&mut conn).is_broken());
    drop(conn);
    echo(service.clone()).await.unwrap();

    let state = pool.state();
    assert_eq!(server.accepted(), 1, "{state:?}");
    assert_eq!(state.counters.dials, 1);
    assert_eq!(state.counters.dial_failures, 0);
    assert_eq!(state.counters.closed_total(), 0);
    pool.close().await;
}

// The same server, its connection idle past the health-check window
// (checked before every lending with `Duration::ZERO`): lent and kept.
#[tokio::test]
async fn the_check_before_lending_passes_on_a_server_without_it() {
    let server = NoHealthServer::start().await;
    let dest = Origin::from(server.addr);
    let pool = Pool::builder(GrpcManager::new())
        .health_check(Duration::ZERO)
        .build()
        .await
        .unwrap();
    for _ in 0..6 {
        let conn = pool.get_for(&dest).await.unwrap();
        echo((*conn).clone()).await.unwrap();
    }
    let state = pool.state();
    assert_eq!(server.accepted(), 1, "{state:?}");
    assert_eq!(state.counters.health_checks, 5, "{state:?}");
    assert_eq!(state.counters.health_check_failures, 0, "{state:?}");
    pool.close().await;
}
