//! A tonic client over TLS through the pool's per-call service, against an
//! in-process gRPC server with a certificate made at start-up and a limit
//! of 8 concurrent streams per connection.
//!
//! ```text
//! cargo run --release --all-features --example grpc_client
//! ```
//!
//! 64 tasks make 50 health checks each through one `HttpService`; the
//! server counts the calls on each of its connections. Each call holds its
//! connection's stream only while it runs, so the pool opens about
//! `64 / 8` connections and spreads the calls over them.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use connpool::Pool;
use connpool::managers::grpc::GrpcManager;
use connpool::managers::service::HttpService;
use connpool::managers::tls::TlsConfig;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use support::BoxError;
use tokio::net::TcpListener;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Calls served, by the client's port (one entry per connection).
type PerConnection = Arc<Mutex<BTreeMap<u16, Arc<AtomicUsize>>>>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let pki = support::tls::Pki::new()?;

    // The server: TLS with ALPN h2, tonic's health service, 8 streams at
    // most per connection, a count of the calls on each connection.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let acceptor = pki.acceptor(&[b"h2"])?;
    let (_reporter, health) = tonic_health::server::health_reporter();
    let calls: PerConnection = Arc::default();
    let seen = Arc::clone(&calls);
    tokio::spawn(async move {
        while let Ok((socket, peer)) = listener.accept().await {
            let count = Arc::clone(seen.lock().entry(peer.port()).or_default());
            let (acceptor, health) = (acceptor.clone(), health.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(socket).await else {
                    return;
                };
                let counted = tower::ServiceBuilder::new()
                    .map_request(move |request: http::Request<hyper::body::Incoming>| {
                        count.fetch_add(1, Ordering::Relaxed);
                        request
                    })
                    .service(health);
                let mut server = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                server.max_concurrent_streams(8);
                let _ = server
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(counted))
                    .await;
            });
        }
    });

    // The client: a pool of TLS connections (this CA trusted; in production
    // `TlsConfig::webpki_roots()`), and one cheap-to-clone service.
    let manager = GrpcManager::new().tls(TlsConfig::from_client_config(pki.client()));
    let pool = Pool::builder(manager).max_open_per_key(16).build().await?;
    let client = HealthClient::new(HttpService::new(pool.clone(), ("localhost", port)));

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let mut client = client.clone();
        tasks.spawn(async move {
            for _ in 0..50 {
                client.check(HealthCheckRequest::default()).await?;
            }
            Ok::<_, tonic::Status>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }

    let state = pool.state();
    println!(
        "3,200 calls over TLS: the pool dialed {} connections (each checked with one health call on connect)",
        state.counters.dials
    );
    println!("calls per connection (by client port):");
    for (port, n) in calls.lock().iter() {
        println!("  :{port:<5} {:>5}", n.load(Ordering::Relaxed));
    }
    pool.close().await;
    Ok(())
}
