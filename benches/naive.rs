//! Pooled vs naive dialing, one task, each request a real round trip on
//! loopback: the time per request with a connection from the pool against
//! a new connection per request (connect, one round trip, close).
//!
//! - `tcp_echo_64B`: 64 bytes to an in-process echo server and back.
//!   Naive: `TcpStream::connect`; pooled: `TcpManager`.
//! - `postgres_select_1`: `SELECT 1` on `DATABASE_URL`, else on a throwaway
//!   PostgreSQL (skipped, with the reason, when none can be started).
//!   Naive: `tokio_postgres::connect`; pooled: `PostgresManager`.
//! - `grpc_health_check`: a unary `grpc.health.v1.Health/Check` to an
//!   in-process tonic server. Naive: a fresh `Channel` (`Endpoint::connect`);
//!   pooled: `GrpcManager`.
//!
//! A third line per group, `reused`, is the floor: one connection made
//! before the loop and used for every request, without a pool, so
//! `pooled - reused` is what the pool adds per request. gRPC has a fourth,
//! `unpooled`: one `GrpcManager` channel (its single-use connector,
//! `FrameWatcher` and HTTP/2 keepalive settings) used for every call without
//! a pool, which splits `pooled - reused` into the pool's get + return
//! (`pooled - unpooled`) and the manager's channel (`unpooled - reused`).
//!
//! Client and in-process servers share one current-thread runtime: a round
//! trip then needs no cross-thread wake-up, whose cost on a shared 2-core
//! VM varies from run to run by several times the figures measured here.
//! Pools have the default config.
//! `cargo bench --all-features --bench naive` (about a minute).

#[path = "../examples/support/mod.rs"]
mod support;

use std::time::Duration;

use connpool::managers::Origin;
use connpool::managers::grpc::GrpcManager;
use connpool::managers::postgres::PostgresManager;
use connpool::managers::tcp::{Destination, TcpManager};
use connpool::{Manager, Pool};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::net::TcpStream;
use tokio_postgres::NoTls;

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30);
    g
}

fn naive_vs_pooled(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // TCP echo.
    let (addr, _) = rt.block_on(support::echo_server()).unwrap();
    let dest = Destination::from(addr);
    let pool = rt
        .block_on(Pool::builder(TcpManager::new()).build())
        .unwrap();
    let mut g = group(c, "tcp_echo_64B");
    g.bench_function("naive", |b| {
        b.to_async(&rt).iter(|| async {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            support::echo_round_trip(&mut stream).await.unwrap();
        })
    });
    g.bench_function("pooled", |b| {
        b.to_async(&rt).iter(|| async {
            let mut conn = pool.get_for(&dest).await.unwrap();
            support::echo_round_trip(&mut conn).await.unwrap();
        })
    });
    let stream = rt.block_on(TcpStream::connect(addr)).unwrap();
    stream.set_nodelay(true).unwrap();
    let stream = tokio::sync::Mutex::new(stream); // uncontended: a few ns
    g.bench_function("reused", |b| {
        b.to_async(&rt).iter(|| async {
            let mut stream = stream.lock().await;
            support::echo_round_trip(&mut *stream).await.unwrap();
        })
    });
    g.finish();
    rt.block_on(pool.close());

    // PostgreSQL SELECT 1.
    match support::postgres() {
        Err(why) => eprintln!("postgres_select_1: skipped: {why}"),
        Ok(server) => {
            let config = server.config();
            let pool = rt
                .block_on(Pool::builder(PostgresManager::new(config.clone()).single()).build())
                .unwrap();
            let mut g = group(c, "postgres_select_1");
            g.bench_function("naive", |b| {
                b.to_async(&rt).iter(|| async {
                    let (client, connection) = config.connect(NoTls).await.unwrap();
                    let io = tokio::spawn(connection);
                    support::select_1(&client).await.unwrap();
                    drop(client); // sends Terminate; the I/O task then ends
                    let _ = io.await;
                })
            });
            g.bench_function("pooled", |b| {
                b.to_async(&rt).iter(|| async {
                    let conn = pool.get().await.unwrap();
                    support::select_1(&conn).await.unwrap();
                })
            });
            let client = rt.block_on(async {
                let (client, connection) = config.connect(NoTls).await.unwrap();
                tokio::spawn(connection);
                client
            });
            g.bench_function("reused", |b| {
                b.to_async(&rt)
                    .iter(|| async { support::select_1(&client).await.unwrap() })
            });
            g.finish();
            drop(client);
            rt.block_on(pool.close());
            drop(server); // stops a throwaway server
        }
    }

    // gRPC unary: health Check.
    let (addr, _) = rt.block_on(support::grpc_server(None)).unwrap();
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
    let dest = Origin::from(addr);
    let pool = rt
        .block_on(Pool::builder(GrpcManager::new()).build())
        .unwrap();
    let mut g = group(c, "grpc_health_check");
    g.bench_function("naive", |b| {
        b.to_async(&rt).iter(|| async {
            let channel = endpoint.connect().await.unwrap();
            support::health_check(channel).await.unwrap();
        })
    });
    g.bench_function("pooled", |b| {
        b.to_async(&rt).iter(|| async {
            let conn = pool.get_for(&dest).await.unwrap();
            support::health_check((*conn).clone()).await.unwrap();
        })
    });
    let channel = rt.block_on(endpoint.connect()).unwrap();
    g.bench_function("reused", |b| {
        b.to_async(&rt)
            .iter(|| async { support::health_check(channel.clone()).await.unwrap() })
    });
    let conn = rt.block_on(pool.manager().connect(&dest)).unwrap();
    g.bench_function("unpooled", |b| {
        b.to_async(&rt)
            .iter(|| async { support::health_check(conn.clone()).await.unwrap() })
    });
    g.finish();
    drop(conn);
    rt.block_on(pool.close());
}

criterion_group!(benches, naive_vs_pooled);
criterion_main!(benches);
