//! nginx killed (`SIGKILL`) and started again on its port, and nginx
//! frozen (`SIGSTOP`) and thawed, through `HttpService` with a deadline,
//! through `support::outage` (what it asserts is there): no connection
//! from before the restart is lent, and a connection whose GET ran out of
//! time on the frozen server is not lent again.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::http1::Http1Manager;
use connpool::managers::service::ServiceError;

use super::{Svc, call, get};
use crate::support::nginx::Nginx;
use crate::support::outage::outage;

/// The service's deadline per GET.
const DEADLINE: Duration = Duration::from_secs(2);

/// One GET of `/` through `svc`, answered `ok`.
async fn get_ok(svc: &Svc) -> Result<(), ServiceError> {
    let body = call(&mut svc.clone(), get("/")).await?;
    assert_eq!(body, "ok\n");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_killed_and_restarted() {
    let Some(mut nginx) = Nginx::start("keepalive_timeout 60s;") else {
        return;
    };
    let pool = Pool::builder(Http1Manager::new())
        .max_open_per_key(8)
        .checkout_timeout(DEADLINE)
        .build()
        .await
        .unwrap();
    let svc = Svc::new(pool.clone(), nginx.addr).timeout(DEADLINE);
    // Connections idle in the pool (up to eight: a GET may finish before
    // another starts, and the next reuses its connection).
    let warm = (0..8).map(|_| {
        let mut svc = svc.clone();
        async move { call(&mut svc, get("/")).await }
    });
    for got in futures_util::future::join_all(warm).await {
        assert_eq!(got.unwrap(), "ok\n");
    }
    assert!(pool.state().idle > 0, "{:?}", pool.state());

    let nginx = std::cell::RefCell::new(&mut nginx);
    outage(
        "HTTP/1.1",
        DEADLINE,
        || get_ok(&svc),
        || tokio::task::block_in_place(|| nginx.borrow_mut().kill()),
        || tokio::task::block_in_place(|| nginx.borrow_mut().restart()),
    )
    .await;
    pool.close().await;
}

/// nginx frozen (`SIGSTOP`: the kernel still accepts connections and
/// acknowledges requests, nginx answers nothing) and thawed: every GET
/// while frozen ends at the service's deadline, the first after the thaw
/// is served at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_frozen_and_thawed() {
    const DEADLINE: Duration = Duration::from_millis(300);
    let Some(nginx) = Nginx::start("keepalive_timeout 60s;") else {
        return;
    };
    let pool = Pool::builder(Http1Manager::new())
        .max_open_per_key(8)
        .build()
        .await
        .unwrap();
    let svc = Svc::new(pool.clone(), nginx.addr).timeout(DEADLINE);
    assert_eq!(call(&mut svc.clone(), get("/")).await.unwrap(), "ok\n");
    let thawed = outage(
        "HTTP/1.1, nginx frozen",
        DEADLINE,
        || get_ok(&svc),
        || nginx.signal("STOP"),
        || nginx.signal("CONT"),
    )
    .await;
    assert!(thawed.failed_while_down > 0);
    pool.close().await;
}
