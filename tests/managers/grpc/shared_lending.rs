//! Shared lending against the server's stream limit: long calls open only
//! the connections they need, and cancellations leak no borrower.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connpool::Pool;
use connpool::managers::Origin;
use connpool::managers::grpc::GrpcManager;
use tokio::sync::watch;
use tokio::time::timeout;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as Status;
use tonic_health::pb::health_client::HealthClient;

use crate::support::grpc::GrpcServer;
use crate::support::{BOUND, until};

use super::check;

/// Starts `k` tasks that each get a connection and hold a health `Watch`
/// stream open on it (counted in `open` once its first message arrived)
/// until `release` turns true.
fn long_calls(
    pool: &Pool<GrpcManager>,
    dest: &Origin,
    k: usize,
    open: &Arc<AtomicUsize>,
    release: &watch::Sender<bool>,
) -> tokio::task::JoinSet<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..k {
        let pool = pool.clone();
        let dest = dest.clone();
        let open = Arc::clone(open);
        let mut release = release.subscribe();
        tasks.spawn(async move {
            let conn = pool.get_for(&dest).await.unwrap();
            let mut stream = HealthClient::new((*conn).clone())
                .watch(HealthCheckRequest { service: String::new() })
                .await
                .unwrap()
                .into_inner();
            let first = stream.message().await.unwrap().unwrap();
            assert_eq!(first.status(), Status::Serving);
            open.fetch_add(1, Ordering::SeqCst);
            let _ = release.wait_for(|r| *r).await;
            drop(stream);
            drop(conn);
        });
    }
    tasks
}

// Stream limit 1: each connection carries one call, so K concurrent long
// calls open min(K, max_open_per_key) connections, and no more.
#[tokio::test]
async fn stream_limit_one_opens_a_connection_per_call_up_to_the_cap() {
    for (k, cap) in [(3, 5), (6, 4)] {
        let server = GrpcServer::start(Some(1)).await;
        let dest = Origin::from(server.addr);
        let pool = Pool::builder(GrpcManager::new())
            .max_open_per_key(cap)
            .build()
            .await
            .unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let release = watch::channel(false).0;
        let tasks = long_calls(&pool, &dest, k, &open, &release);
        let busy = k.min(cap);
        until("calls open", || open.load(Ordering::SeqCst) == busy).await;
        until("no dial in flight", || pool.state().dialing == 0).await;
        assert_eq!(server.accepted(), busy, "k={k} cap={cap}");
        assert_eq!(pool.state().open, busy);
        release.send_replace(true);
        timeout(BOUND, tasks.join_all())
            .await
            .expect("all calls done");
        assert_eq!(open.load(Ordering::SeqCst), k);
        assert_eq!(server.accepted(), busy, "k={k} cap={cap}: no extra dial");
        println!(
            "stream limit 1, {k} calls, cap {cap}: {} connections",
            server.accepted()
        );
        pool.close().await;
        server.stop().await;
    }
}

// Stream limit 8, 20 concurrent long calls, up to 10 connections: shared
// lending puts 8 calls on each, so ceil(20 / 8) = 3 connections.
#[tokio::test]
async fn stream_limit_eight_twenty_calls_three_connections() {
    let server = GrpcServer::start(Some(8)).await;
    let dest = Origin::from(server.addr);
    let pool = Pool::builder(GrpcManager::new())
        .max_open_per_key(10)
        .build()
        .await
        .unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let release = watch::channel(false).0;
    let tasks = long_calls(&pool, &dest, 20, &open, &release);
    until("20 calls open", || open.load(Ordering::SeqCst) == 20).await;
    until("no dial in flight", || pool.state().dialing == 0).await;
    println!(
        "stream limit 8, 20 calls: {} connections",
        server.accepted()
    );
    assert_eq!(server.accepted(), 3);
    assert_eq!(pool.state().open, 3);
    release.send_replace(true);
    timeout(BOUND, tasks.join_all())
        .await
        .expect("all calls done");
    assert_eq!(server.accepted(), 3);
    pool.close().await;
    server.stop().await;
}

// Shared lending under cancellation, against the real server: 64 tasks on
// 2 workers, each 40 times: a get cut by a short timeout (cancelled while
// waiting for a place), or a call abandoned mid-flight (the handle dropped
// with its call), or a call completed; 8 places in all (stream limit 4, 2
// connections). Afterwards no borrower, waiter or lent connection is left,
// and the pool still serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_lending_under_cancellation_leaks_no_borrower() {
    let server = GrpcServer::start(Some(4)).await;
    let dest = Origin::from(server.addr);
    let pool = Pool::builder(GrpcManager::new())
        .max_open_per_key(2)
        .build()
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..64u64 {
        let pool = pool.clone();
        let dest = dest.clone();
        tasks.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(0x5EED ^ t);
            let (mut served, mut cut, mut abandoned) = (0, 0, 0);
            for _ in 0..40 {
                let wait = Duration::from_micros(rng.u64(50..20_000));
                let Ok(got) = timeout(wait, pool.get_for(&dest)).await else {
                    cut += 1;
                    continue;
                };
                let conn = got.expect("the server is up");
                let call = check(&conn, "");
                if rng.bool() {
                    // Abandon the call after a moment: the handle goes with it.
                    let _ = timeout(Duration::from_micros(rng.u64(10..500)), call).await;
                    abandoned += 1;
                } else {
                    assert_eq!(call.await.expect("check"), Status::Serving);
                    served += 1;
                }
            }
            (served, cut, abandoned)
        });
    }
    let results = timeout(Duration::from_secs(30), tasks.join_all())
        .await
        .expect("all tasks done within 30 s");
    let served: usize = results.iter().map(|r| r.0).sum();
    let cut: usize = results.iter().map(|r| r.1).sum();
    let abandoned: usize = results.iter().map(|r| r.2).sum();
    until("every place back", || {
        let s = pool.state();
        s.borrowers == 0 && s.lent == 0 && s.waiting == 0 && s.dialing == 0
    })
    .await;
    let s = pool.state();
    println!(
        "64 tasks × 40: {served} calls completed, {abandoned} abandoned, {cut} gets cut; {s:?}"
    );
    assert!(
        served > 0 && cut > 0 && abandoned > 0,
        "every path ran: {served} served, {abandoned} abandoned, {cut} cut"
    );
    assert_eq!(s.open, s.idle, "{s:?}");
    assert!(s.open <= 2, "{s:?}");
    let conn = pool.get_for(&dest).await.expect("still serves");
    assert_eq!(check(&conn, "").await.unwrap(), Status::Serving);
    drop(conn);
    pool.close().await;
    server.stop().await;
}
