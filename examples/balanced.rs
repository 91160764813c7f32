//! Calls spread over several backends behind one name: four in-process
//! tonic servers on 127.0.0.2–127.0.0.5, a resolver that answers with
//! three of them and later swaps one out, and a tonic client over
//! `Balanced`.
//!
//! ```text
//! cargo run --release --all-features --example balanced
//! ```
//!
//! Prints how many calls each backend served in each phase: the three
//! addresses of the first answer share the calls; after the swap, the one
//! that left serves nothing more and the one that joined takes its share.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connpool::Pool;
use connpool::managers::balance::{Balanced, MIN_RESOLVE_INTERVAL, Resolve};
use connpool::managers::http::HttpManager;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio_stream::Stream;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A health service that counts the checks it answers.
#[derive(Clone, Default)]
struct Counting(Arc<AtomicUsize>);

#[tonic::async_trait]
impl Health for Counting {
    async fn check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving.into(),
        }))
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send + 'static>>;

    async fn watch(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("not here"))
    }
}

/// Starts a backend on `ip`; returns its address and its count.
async fn backend(ip: &str) -> Result<(SocketAddr, Counting), BoxError> {
    let listener = TcpListener::bind((ip, 0)).await?;
    let addr = listener.local_addr()?;
    let counting = Counting::default();
    tokio::spawn(
        Server::builder()
            .add_service(HealthServer::new(counting.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    Ok((addr, counting))
}

/// A resolver whose answer the program sets; counts the questions.
#[derive(Clone, Default)]
struct Scripted {
    answer: Arc<Mutex<Vec<SocketAddr>>>,
    asked: Arc<AtomicUsize>,
}

#[connpool::async_trait]
impl Resolve for Scripted {
    async fn resolve(&self, _: &str) -> io::Result<(Vec<SocketAddr>, Option<Duration>)> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let addrs = self.answer.lock().clone();
        Ok((addrs, None))
    }
}

/// `calls` health checks from 32 tasks.
async fn drive(
    client: &HealthClient<Balanced<HttpManager<tonic::body::Body>>>,
    calls: usize,
) -> Result<(), BoxError> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (mut client, next) = (client.clone(), Arc::clone(&next));
        set.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < calls {
                client.check(HealthCheckRequest::default()).await?;
            }
            Ok::<_, Status>(())
        });
    }
    while let Some(done) = set.join_next().await {
        done??;
    }
    Ok(())
}

fn report(phase: &str, backends: &[(SocketAddr, Counting)], before: &[usize]) -> Vec<usize> {
    let now: Vec<usize> = backends
        .iter()
        .map(|(_, c)| c.0.load(Ordering::Relaxed))
        .collect();
    let cells: Vec<String> = backends
        .iter()
        .zip(now.iter().zip(before))
        .map(|((addr, _), (n, b))| format!("{}: {:>5}", addr.ip(), n - b))
        .collect();
    println!("{phase:<28} {}", cells.join("  "));
    now
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut backends = Vec::new();
    for i in 2..=5 {
        backends.push(backend(&format!("127.0.0.{i}")).await?);
    }
    let resolver = Scripted::default();
    *resolver.answer.lock() = backends[..3].iter().map(|(a, _)| *a).collect();

    let manager = HttpManager::http2().with_body::<tonic::body::Body>();
    let pool = Pool::builder(manager).max_open_per_key(4).build().await?;
    let every = MIN_RESOLVE_INTERVAL;
    let service = Balanced::with_resolver(
        pool.clone(),
        "backend.example:50051",
        resolver.clone(),
        every,
    );
    let client = HealthClient::new(service);

    let zero = vec![0; backends.len()];
    drive(&client, 30_000).await?;
    let after_first = report("answer .2 .3 .4, 30,000 calls", &backends, &zero);

    // .3 leaves, .5 joins; wait for the resolution after the one under way.
    *resolver.answer.lock() = [0, 2, 3].iter().map(|&i| backends[i].0).collect();
    let asked = resolver.asked.load(Ordering::SeqCst);
    while resolver.asked.load(Ordering::SeqCst) < asked + 2 {
        tokio::time::sleep(every / 10).await;
    }
    drive(&client, 30_000).await?;
    report("answer .2 .4 .5, 30,000 calls", &backends, &after_first);
    println!(
        "connections the pool opened: {}",
        pool.state().counters.dials
    );
    Ok(())
}
