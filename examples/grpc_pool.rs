//! gRPC channels pooled and shared: an in-process tonic server with the
//! standard health service and a stream limit, N tasks × M health `Check`
//! calls through a pool of channels made by the crate's gRPC manager.
//!
//! ```text
//! cargo run --release --features grpc --example grpc_pool              # 64 tasks × 200 calls, limit 8
//! cargo run --release --features grpc --example grpc_pool -- 16 50 4   # tasks, calls per task, stream limit
//! ```
//!
//! Prints how many connections the server accepted and the pool opened, how
//! the calls spread over the connections (by local port), and the
//! throughput. Each connection carries at most the server's
//! `MAX_CONCURRENT_STREAMS` calls at once; with shared lending the pool
//! opens about `tasks / limit` connections (at most `max_open_per_key`),
//! with exclusive lending one per concurrent task up to that cap.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use connpool::Pool;
use connpool::managers::Origin;
use connpool::managers::grpc::GrpcManager;
use parking_lot::Mutex;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Most connections the pool may open to the server.
const MAX_OPEN_PER_KEY: usize = 16;

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .map(|a| {
            a.parse()
                .expect("arguments: tasks calls-per-task stream-limit")
        })
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let tasks = arg(1, 64);
    let calls = arg(2, 200);
    let limit = arg(3, 8);

    let (addr, accepted) = support::grpc_server(Some(u32::try_from(limit)?)).await?;
    let dest = Origin::from(addr);
    let pool = Pool::builder(GrpcManager::new())
        .max_open_per_key(MAX_OPEN_PER_KEY)
        .build()
        .await?;

    // Calls per connection, by local port.
    let spread: Arc<Mutex<BTreeMap<u16, usize>>> = Arc::default();
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let pool = pool.clone();
        let dest = dest.clone();
        let spread = Arc::clone(&spread);
        set.spawn(async move {
            for _ in 0..calls {
                let conn = pool.get_for(&dest).await?;
                let reply = HealthClient::new((*conn).clone())
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await?;
                assert_eq!(reply.get_ref().status(), ServingStatus::Serving);
                *spread.lock().entry(conn.local_addr().port()).or_default() += 1;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        });
    }
    while let Some(done) = set.join_next().await {
        done??;
    }
    let elapsed = started.elapsed();

    let total = tasks * calls;
    let state = pool.state();
    println!(
        "{tasks} tasks × {calls} health checks, server stream limit {limit}, max_open_per_key {MAX_OPEN_PER_KEY}"
    );
    println!(
        "connections: server accepted {}, pool dialed {} (open now {})",
        accepted.get(),
        state.counters.dials,
        state.open
    );
    println!("calls per connection (by local port):");
    for (port, n) in spread.lock().iter() {
        println!("  :{port:<5} {n:>7} calls");
    }
    println!(
        "{total} calls in {:.3} s: {:.0} calls/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(spread.lock().values().sum::<usize>(), total);
    pool.close().await;
    Ok(())
}
