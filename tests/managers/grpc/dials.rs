//! Connections the server ends or never sets up: a server that shuts down,
//! a peer that sends no SETTINGS, and a GOAWAY on arrival.

use std::time::Duration;

use connpool::managers::HttpError;
use connpool::managers::Origin;
use connpool::managers::grpc::GrpcManager;
use connpool::{Manager, Pool};
use tokio::net::TcpListener;
use tokio::time::timeout;
use tonic_health::pb::health_check_response::ServingStatus as Status;

use crate::support::grpc::GrpcServer;
use crate::support::grpc::raw::{self, GoawayOnConnect};
use crate::support::{BOUND, ZERO, counts, until};

use super::{check, manager_error};

// The server shuts down (GOAWAY, then close): the pooled connection is
// broken at once, and the channel does not reconnect behind the pool's
// back. Once the server is back on the same port, the pool dials anew.
#[tokio::test]
async fn server_shutdown_is_detected_and_the_connection_replaced() {
    let server = GrpcServer::start(None).await;
    let addr = server.addr;
    let dest = Origin::from(addr);
    let pool = Pool::builder(GrpcManager::new())
        .health_check(None)
        .no_backoff()
        .build()
        .await
        .unwrap();
    let conn = pool.get_for(&dest).await.unwrap();
    assert_eq!(check(&conn, "").await.unwrap(), Status::Serving);
    let old = conn.local_addr();
    let mut handle = (*conn).clone();
    drop(conn);

    server.stop().await;
    let took = until("broken after the server shut down", || {
        pool.manager().health(&mut handle).is_broken()
    })
    .await;
    println!(
        "server shutdown seen after {took:?} (GOAWAY seen: {})",
        handle.is_draining()
    );
    // The channel does not dial again by itself, even once a server is back.
    let back = GrpcServer::start_on(addr, None).await;
    assert!(
        check(&handle, "").await.is_err(),
        "the dead channel reconnected"
    );
    assert!(pool.manager().ping(&mut handle).await.is_err());
    assert_eq!(back.accepted(), 0);

    let conn = pool.get_for(&dest).await.unwrap();
    assert_ne!(conn.local_addr(), old);
    assert_eq!(check(&conn, "").await.unwrap(), Status::Serving);
    assert_eq!(back.accepted(), 1);
    drop(conn);
    pool.close().await;
    back.stop().await;
}

// A peer that sends no SETTINGS is not a gRPC server: the dial fails.
#[tokio::test]
async fn a_peer_that_sends_no_settings_fails_the_dial() {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let manager = GrpcManager::new().settings_timeout(Duration::from_millis(300));
    let pool = Pool::builder(manager).no_backoff().build().await.unwrap();
    let err = pool.get_for(&Origin::from(addr)).await.unwrap_err();
    assert!(
        matches!(manager_error(&err), HttpError::NoSettings { .. }),
        "{err:?}"
    );
    println!("silent peer: {err}");
    pool.close().await;
}

// A server that answers a new connection with SETTINGS and GOAWAY in one
// write (shutting down, or at its connection limit): the connection is
// draining before it was ever used, so the dial fails with an error that
// names the GOAWAY, with and without the health check on connect, called
// directly and through a pool (which then holds nothing). (A GOAWAY that
// comes later, on a connection already handed out, is `health`: see
// `server_shutdown_is_detected_and_the_connection_replaced` and
// `a_server_that_polices_pings_cuts_off_only_pings_while_idle`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_draining_on_arrival_fails_the_dial() {
    let server = GoawayOnConnect::start(0, b"shutting down").await;
    let dest = Origin::from(server.addr);
    for check_on_connect in [false, true] {
        let manager = || GrpcManager::new().check_on_connect(check_on_connect);
        let err = timeout(BOUND, manager().connect(&dest))
            .await
            .expect("dial within 5 s")
            .unwrap_err();
        match &err {
            HttpError::ClosedDuringSetup { goaway: Some(0), debug_data } => {
                assert_eq!(debug_data.as_deref(), Some("shutting down"))
            }
            other => panic!("check_on_connect({check_on_connect}): {other:?}"),
        }
        let message = err.to_string();
        raw::assert_goaway_during_setup(&message);
        println!("check_on_connect({check_on_connect}): {message}");

        let pool = Pool::builder(manager())
            .health_check(None)
            .no_backoff()
            .build()
            .await
            .unwrap();
        let err = timeout(BOUND, pool.get_for(&dest))
            .await
            .expect("get within 5 s")
            .unwrap_err();
        assert!(
            matches!(
                manager_error(&err),
                HttpError::ClosedDuringSetup { goaway: Some(0), .. }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("GOAWAY"), "{err}");
        assert_eq!(counts(&pool), ZERO);
        pool.close().await;
    }
    assert_eq!(server.accepted(), 4);
}
