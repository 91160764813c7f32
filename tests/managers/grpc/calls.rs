//! Calls through pooled channels, and a backend whose health service says
//! NOT_SERVING (or does not know the service).

use std::time::Duration;

use connpool::managers::HttpError;
use connpool::managers::Origin;
use connpool::managers::grpc::GrpcManager;
use connpool::{Manager, Pool};
use tokio::time::timeout;
use tonic_health::ServingStatus;
use tonic_health::pb::health_check_response::ServingStatus as Status;

use crate::support::grpc::{GrpcServer, SERVICE};
use crate::support::{ZERO, counts};

use super::{check, manager_error};

// Calls go through pooled channels, from many tasks at once; the server's
// stream limit is read from its SETTINGS and is the lending limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_round_trip_through_pooled_channels() {
    let server = GrpcServer::start(Some(16)).await;
    let dest = Origin::from(server.addr);
    let pool = Pool::builder(GrpcManager::new())
        .max_open_per_key(4)
        .build()
        .await
        .unwrap();
    let mut conn = pool.get_for(&dest).await.unwrap();
    assert_eq!(check(&conn, "").await.unwrap(), Status::Serving);
    assert_eq!(conn.peer_max_concurrent_streams(), Some(16));
    assert_eq!(pool.manager().lending(&conn).max_borrowers(), 16);
    assert_eq!(conn.peer_addr(), server.addr);
    assert!(!conn.is_draining() && !pool.manager().health(&mut conn).is_broken());
    pool.manager().ping(&mut conn).await.unwrap();
    drop(conn);

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let pool = pool.clone();
        let dest = dest.clone();
        tasks.spawn(async move {
            for _ in 0..10 {
                let conn = pool.get_for(&dest).await.unwrap();
                assert_eq!(check(&conn, SERVICE).await.unwrap(), Status::Serving);
            }
        });
    }
    timeout(Duration::from_secs(20), tasks.join_all())
        .await
        .expect("80 calls within 20 s");
    assert!(server.accepted() <= 4, "{}", server.accepted());
    assert_eq!(pool.state().counters.gets, 81);
    pool.close().await;
    server.stop().await;
}

// A service switched to NOT_SERVING: with Duration::ZERO its idle
// connection fails the check and the fresh dial fails the check on connect,
// so the getter gets a clear error and nothing is lent; back to SERVING, it
// is served again. A service the server does not know is an RPC error.
#[tokio::test]
async fn a_not_serving_backend_is_not_lent() {
    let server = GrpcServer::start(None).await;
    let dest = Origin::from(server.addr);
    let pool = Pool::builder(GrpcManager::new().health_service(SERVICE))
        .health_check(Duration::ZERO)
        .no_backoff()
        .build()
        .await
        .unwrap();
    let conn = pool.get_for(&dest).await.unwrap();
    drop(conn);
    assert_eq!(pool.state().idle, 1);

    server
        .reporter
        .set_service_status(SERVICE, ServingStatus::NotServing)
        .await;
    let err = pool.get_for(&dest).await.unwrap_err();
    match manager_error(&err) {
        HttpError::Unhealthy { service, status } => {
            assert_eq!(service, SERVICE);
            assert_eq!(*status, Status::NotServing);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("NOT_SERVING"), "{err}");
    println!("NOT_SERVING: {err}");
    assert_eq!(counts(&pool), ZERO);
    assert_eq!(server.accepted(), 2, "the idle one checked, one dial");

    server
        .reporter
        .set_service_status(SERVICE, ServingStatus::Serving)
        .await;
    let conn = pool.get_for(&dest).await.unwrap();
    assert_eq!(check(&conn, SERVICE).await.unwrap(), Status::Serving);
    drop(conn);
    pool.close().await;

    // Without the check on connect (and no health check), the dial succeeds.
    server
        .reporter
        .set_service_status(SERVICE, ServingStatus::NotServing)
        .await;
    let lax = GrpcManager::new()
        .health_service(SERVICE)
        .check_on_connect(false);
    let pool = Pool::builder(lax).health_check(None).build().await.unwrap();
    let mut conn = pool.get_for(&dest).await.unwrap();
    assert_eq!(check(&conn, SERVICE).await.unwrap(), Status::NotServing);
    assert!(matches!(
        pool.manager().ping(&mut conn).await,
        Err(HttpError::Unhealthy { .. })
    ));
    drop(conn);
    pool.close().await;

    // A service the server does not know: NOT_FOUND.
    let unknown = GrpcManager::new().health_service("no.Such");
    let pool = Pool::builder(unknown).no_backoff().build().await.unwrap();
    let err = pool.get_for(&dest).await.unwrap_err();
    match manager_error(&err) {
        HttpError::Rpc(status) => assert_eq!(status.code(), tonic::Code::NotFound),
        other => panic!("{other:?}"),
    }
    pool.close().await;
    server.stop().await;
}
