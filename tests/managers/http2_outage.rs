//! An HTTP/2 server killed and started again (every connection reset, and
//! every new one while it is down), and frozen and thawed (the proxy reads
//! nothing: the kernel accepts and acknowledges, nothing answers), as a
//! client of `HttpService` over `Http2Manager` sees it, each call under the
//! service's deadline, through `support::outage` (what it asserts is
//! there): every call while down ends by its deadline, the first after the
//! return is served, and no connection from before the fault is lent.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::http2::Http2Manager;
use connpool::managers::service::{HttpService, ServiceError};
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceExt};

use crate::service::StreamServer;
use crate::support::fault::{Fault, FaultProxy};
use crate::support::outage::behind;

/// One GET of `/` through `svc`, its body read to the end: `hello`.
async fn get(svc: &HttpService<Http2Manager>) -> Result<(), ServiceError> {
    let request = http::Request::get("/").body(Full::default()).unwrap();
    let response = svc.clone().ready().await?.call(request).await?;
    let body = response.into_body().collect().await?.to_bytes();
    assert_eq!(body, "hello");
    Ok(())
}

/// An outage of the h2c server behind a `FaultProxy` (`fault` while down),
/// each call under `deadline` (the service's, checkout included).
async fn through(what: &str, fault: Fault, deadline: Duration) {
    let server = StreamServer::start("127.0.0.1", None).await;
    let proxy = FaultProxy::start(server.addr).await;
    let pool = Pool::builder(Http2Manager::new())
        .checkout_timeout(deadline)
        .build()
        .await
        .unwrap();
    let svc = HttpService::new(pool.clone(), proxy.addr).timeout(deadline);
    for _ in 0..4 {
        get(&svc).await.unwrap();
    }
    behind(what, deadline, &proxy, fault, || get(&svc)).await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted() {
    through("HTTP/2", Fault::Reset, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_frozen_and_thawed() {
    through("HTTP/2 frozen", Fault::Freeze, Duration::from_millis(300)).await;
}
