//! Idle connections severed (half-open): `Duration::ZERO` lends none
//! of them, `Never` (the control) does.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use connpool::Pooled;
use parking_lot::Mutex;
use tokio::time::{Instant, timeout};

use crate::support;
use crate::support::echo::EchoServer;
use crate::support::fault::FaultProxy;

#[cfg(feature = "grpc")]
use super::grpc;
#[cfg(feature = "postgres")]
use super::pg;
use super::tcp::Echo;
use super::{OP, TASKS, Target, builder, ms, quiet, serial};

/// Idle connections severed in the severed-connection tests (below the
/// throwaway PostgreSQL's `max_connections` of 80 with their replacements,
/// since the severed sessions stay open on the server).
const SEVERED: usize = 32;

/// `Duration::ZERO`: connections severed while idle (no FIN, no RST)
/// never reach a caller: `SEVERED` idle connections, then 64 callers, every
/// first request succeeds, and no caller is handed a severed connection;
/// `Never` (the control) lends them.
///
/// A connection is filled with `borrowers_per_conn` borrowers to open the
/// `SEVERED` connections (1 for exclusive lending); where the target tells
/// connections apart (`conn_id`), the severed connections handed to callers
/// are counted as well as the callers whose first request failed.
async fn severed_idle_connections<T: Target>(target: &T) {
    for health in [Some(Duration::ZERO), None] {
        let proxy = FaultProxy::start(target.upstream()).await;
        let (_, key) = target.manager(proxy.addr);
        let pool = builder(target, proxy.addr, health)
            .max_open(SEVERED)
            .checkout_timeout(ms(2000))
            .build()
            .await
            .unwrap();
        // SEVERED connections, each used once per borrower, then idle.
        let mut held = Vec::new();
        for i in 0..(SEVERED * target.borrowers_per_conn()) as u64 {
            let mut conn = pool.get_for(&key).await.unwrap();
            T::op(&mut conn, i).await.unwrap();
            held.push(conn);
        }
        let severed: HashSet<SocketAddr> = held.iter().filter_map(|c| T::conn_id(c)).collect();
        drop(held);
        // (A PostgreSQL connection is reset, `DISCARD ALL`, before it idles.)
        support::until("the returns to be recycled", || pool.state().recycling == 0).await;
        assert_eq!(pool.state().idle, SEVERED);
        assert_eq!(proxy.accepted(), SEVERED);
        proxy.sever();

        let first_use_failed = Arc::new(AtomicU64::new(0));
        let slowest = Arc::new(Mutex::new(Duration::ZERO));
        let handed = Arc::new(Mutex::new(Vec::new()));
        let callers: Vec<_> = (0..TASKS as u64)
            .map(|i| {
                let (pool, key) = (pool.clone(), key.clone());
                let (failed, slowest) = (first_use_failed.clone(), slowest.clone());
                let handed = handed.clone();
                tokio::spawn(async move {
                    let start = Instant::now();
                    let mut conn = pool.get_for(&key).await.expect("get");
                    handed.lock().extend(T::conn_id(&conn));
                    match timeout(OP, T::op(&mut conn, 1000 + i)).await {
                        Ok(Ok(())) => {}
                        _ => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            Pooled::mark_broken(&mut conn);
                        }
                    }
                    let mut s = slowest.lock();
                    *s = s.max(start.elapsed());
                })
            })
            .collect();
        for c in callers {
            c.await.unwrap();
        }
        let failed = first_use_failed.load(Ordering::SeqCst);
        let handed = std::mem::take(&mut *handed.lock());
        let severed_lent: HashSet<_> = handed.iter().filter(|a| severed.contains(a)).collect();
        let to_severed = handed.iter().filter(|a| severed.contains(a)).count();
        let s = pool.state();
        // Connections, where the target tells them apart.
        let by_conn = if severed.is_empty() {
            String::new()
        } else {
            format!(
                "; {} of {} severed connections handed to {to_severed} callers",
                severed_lent.len(),
                severed.len()
            )
        };
        println!(
            "{} severed idle, {health:?}: {failed} of {TASKS} first uses failed{by_conn}; \
             slowest call {:?}; health checks {} ({} failed)",
            target.name(),
            slowest.lock(),
            s.counters.health_checks,
            s.counters.health_check_failures
        );
        match health {
            Some(_) => {
                assert_eq!(
                    severed_lent.len(),
                    0,
                    "{} callers were handed {} severed connections",
                    to_severed,
                    severed_lent.len()
                );
                assert_eq!(failed, 0, "a caller got a connection the peer had dropped");
                assert_eq!(s.counters.health_check_failures, SEVERED as u64, "{s:?}");
            }
            _ => assert!(failed > 0, "the control lent no dead connection: {s:?}"),
        }
        quiet(&pool, std::slice::from_ref(&key)).await;
        pool.close().await;
    }
}

#[test]
fn tcp_health_check_always_never_lends_a_severed_connection() {
    serial(async {
        let echo = Echo(EchoServer::start().await);
        severed_idle_connections(&echo).await;
    });
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_health_check_always_never_lends_a_severed_connection() {
    // The server starts in this test's turn too (see `serial`).
    let _alone = support::alone();
    let Some(server) = support::pg::kept() else {
        return;
    };
    support::multi_thread(2, severed_idle_connections(&pg::Postgres(server)));
}

/// gRPC with the server's stream limit at 1: each connection carries one
/// caller, so "32 severed connections, 64 callers" means here what it means
/// for TCP, and the health check is what is tested.
#[cfg(feature = "grpc")]
#[test]
fn grpc_health_check_always_never_lends_a_severed_connection() {
    serial(async {
        let target = grpc::Grpc::start("grpc (1 stream)", 1).await;
        severed_idle_connections(&target).await;
        target.server.abort();
    });
}

/// gRPC lent shared (stream limit 2: 64 borrowers open the 32 connections
/// that are then severed): no caller may be handed a severed connection,
/// counted by connection: the 32 callers that find no idle connection must
/// not join the 32 whose health checks are in flight (see `pool/shared/health.rs`,
/// `always_lends_no_shared_connection_before_its_check_passed`).
#[cfg(feature = "grpc")]
#[test]
fn grpc_shared_health_check_always_never_lends_a_severed_connection() {
    serial(async {
        let target = grpc::Grpc::start("grpc (2 streams)", 2).await;
        severed_idle_connections(&target).await;
        target.server.abort();
    });
}
