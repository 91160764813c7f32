//! nginx killed (`SIGKILL`) and started again on its port, and nginx
//! frozen (`SIGSTOP`) and thawed, through `HttpService` with a deadline,
//! through `support::outage` (what it asserts is there): no connection
//! from before the restart is lent, and a connection whose GET ran out of
//! time on the frozen server is not lent again.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::HttpError;
use connpool::managers::http::HttpManager;

use super::{Svc, call, get};
use crate::support::fault::{Fault, FaultProxy};
use crate::support::nginx::Nginx;
use crate::support::outage::outage;

/// The service's deadline per GET.
const DEADLINE: Duration = Duration::from_secs(2);

/// One GET of `/` through `svc`, answered `ok`.
async fn get_ok(svc: &Svc) -> Result<(), HttpError> {
    let body = call(&mut svc.clone(), get("/")).await?;
    assert_eq!(body, "ok\n");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_killed_and_restarted() {
    let Some(mut nginx) = Nginx::start("keepalive_timeout 60s;") else {
        return;
    };
    let pool = Pool::builder(HttpManager::http1())
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
    let pool = Pool::builder(HttpManager::http1())
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

/// nginx behind a load balancer whose backend went away: the proxy still
/// accepts every connection and closes it unanswered. A GET on a new
/// connection that closes under it is a refused dial for the pool
/// (`Pooled::mark_refused`): the key backs off, with that refusal as its
/// cause, each GET waits for the pool's next probe (and fails on the
/// probe's connection, or with the backoff), and probes find the server
/// when it answers again, instead of a new connection per try (a hundred
/// here, without).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balancer_that_closes_new_connections_is_backed_off() {
    let Some(nginx) = Nginx::start("keepalive_timeout 60s;") else {
        return;
    };
    let proxy = FaultProxy::start(nginx.addr).await;
    let pool = Pool::builder(HttpManager::http1()).build().await.unwrap();
    let svc = Svc::new(pool.clone(), proxy.addr).timeout(DEADLINE);
    get_ok(&svc).await.unwrap();
    proxy.set(Fault::CloseAfter(0));
    let before = proxy.accepted();
    // One client, a GET every 10 ms for a second: without the backoff, a
    // new connection per GET.
    let (mut refused, mut backed_off) = (0, 0);
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        match get_ok(&svc).await {
            Ok(()) => panic!("answered through a proxy that closes everything"),
            Err(HttpError::Pool(e)) => {
                assert!(e.to_string().contains("closed the new connection"), "{e}");
                backed_off += 1;
            }
            // (A GET the proxy held to the deadline before closing counts
            // here too: the proxy's close races the request.)
            Err(HttpError::Request(_) | HttpError::TimedOut { .. }) => refused += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let asked = proxy.accepted() - before;
    assert!(
        backed_off + refused < 20,
        "{backed_off} backed off, {refused} refused: GETs that did not wait for a probe"
    );
    assert!(
        asked <= 10,
        "{asked} connections in a second, {refused} GETs refused"
    );
    // The backend is back: a probe finds it.
    proxy.clear();
    let mut back = false;
    for _ in 0..100 {
        if get_ok(&svc).await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(back, "no GET answered within a second of the return");
    let k = pool.state().counters;
    assert!(k.probes >= 1, "{k:?}");
    pool.close().await;
}
