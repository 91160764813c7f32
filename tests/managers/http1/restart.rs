//! nginx killed (`SIGKILL`) and started again on its port, through
//! `HttpService` with a deadline, through `support::outage` (what it
//! asserts is there): no connection from before the restart is lent.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::http1::Http1Manager;

use super::{Svc, call, get};
use crate::support::nginx::Nginx;
use crate::support::outage::outage;

/// The service's deadline per GET.
const DEADLINE: Duration = Duration::from_secs(2);

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
        || {
            let mut svc = svc.clone();
            async move {
                let got = call(&mut svc, get("/")).await;
                got.map(|body| assert_eq!(body, "ok\n"))
            }
        },
        || tokio::task::block_in_place(|| nginx.borrow_mut().kill()),
        || tokio::task::block_in_place(|| nginx.borrow_mut().restart()),
    )
    .await;
    pool.close().await;
}
