//! The gRPC manager against a real in-process tonic server on 127.0.0.1 with
//! tonic-health's health service (and, for keepalive, behind
//! `support::fault`'s proxy switched into a black hole). Real I/O, real
//! clock: every wait is bounded by a few seconds that only a broken
//! implementation runs into; conditions are polled every 1 ms; no test
//! sleeps to synchronize (one waits out a window to see that something does
//! not happen: no PING from an idle connection).

use connpool::managers::HttpError;
use connpool::managers::http::HttpConn;

type GrpcConn = HttpConn<tonic::body::Body>;
use connpool::{ConnectError, Error};
use tokio::time::timeout;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as Status;
use tonic_health::pb::health_client::HealthClient;

use crate::support::BOUND;

mod calls;
mod dials;
mod keepalive;
mod no_health;
mod restart;
mod shared_lending;

async fn check(conn: &GrpcConn, service: &str) -> Result<Status, tonic::Status> {
    let reply = timeout(
        BOUND,
        HealthClient::new((*conn).clone()).check(HealthCheckRequest { service: service.into() }),
    )
    .await
    .expect("health check within 5 s")?;
    Ok(reply.get_ref().status())
}

fn manager_error(err: &Error<HttpError>) -> &HttpError {
    match err {
        Error::Connect(ConnectError::Manager(e)) => e,
        other => panic!("expected a dial error from the manager, got {other:?}"),
    }
}
