//! An HTTP/2 server killed and started again (every connection reset, and
//! every new one while it is down), and frozen and thawed (the proxy reads
//! nothing: the kernel accepts and acknowledges, nothing answers), as a
//! client of `HttpService` over `HttpManager` sees it, each call under the
//! service's deadline, through `support::outage` (what it asserts is
//! there): every call while down ends by its deadline, the first after the
//! return is served, and no connection from before the fault is lent.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::HttpError;
use connpool::managers::http::HttpManager;
use connpool::managers::service::HttpService;
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceExt};

use crate::service::StreamServer;
use crate::support::fault::{Fault, FaultProxy};
use crate::support::outage::behind;
use crate::support::until;

/// One GET of `/` through `svc`, its body read to the end: `hello`.
async fn get(svc: &HttpService<HttpManager>) -> Result<(), HttpError> {
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
    let pool = Pool::builder(HttpManager::http2())
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

/// Three calls in a row without a response by their deadline (a frozen
/// server) retire their connection, as a silent one: it is lent no more
/// and closed, and once the server answers again, calls are served on a
/// new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_unanswered_calls_retire_the_connection() {
    let server = StreamServer::start("127.0.0.1", None).await;
    let proxy = FaultProxy::start(server.addr).await;
    let pool = Pool::builder(HttpManager::http2()).build().await.unwrap();
    let svc = HttpService::new(pool.clone(), proxy.addr).timeout(Duration::from_millis(200));
    get(&svc).await.unwrap();
    assert_eq!(pool.state().open, 1);
    proxy.set(Fault::Freeze);
    for _ in 0..3 {
        let got = get(&svc).await;
        assert!(matches!(got, Err(HttpError::TimedOut { .. })), "{got:?}");
    }
    until("the silent connection closed", || {
        pool.state().counters.closed_broken == 1
    })
    .await;
    proxy.clear();
    get(&svc).await.unwrap();
    pool.close().await;
}
