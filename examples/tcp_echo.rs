//! The main job: an in-process TCP echo server, a pool of connections to it,
//! and a comparison with dialing a new connection per request.
//!
//! ```text
//! cargo run --release --features tcp --example tcp_echo            # 64 tasks × 200 requests
//! cargo run --release --features tcp --example tcp_echo -- 16 50   # tasks, requests per task
//! ```
//!
//! Both sides use the crate's TCP manager (`TCP_NODELAY`, kernel keepalive,
//! peer-closed detection): the naive side calls its `connect` per request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use connpool::managers::tcp::{Destination, TcpManager};
use connpool::{Manager, Pool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Echoes every byte back; counts the connections it accepted.
async fn echo_server() -> std::io::Result<(SocketAddr, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let _ = sock.set_nodelay(true);
                let mut buf = [0u8; 1024];
                loop {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if sock.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    Ok((addr, accepted))
}

const PAYLOAD: &[u8; 64] = b"connpool example payload: 64 bytes of echo, sent and read back..";

async fn round_trip(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(PAYLOAD).await?;
    let mut buf = [0u8; PAYLOAD.len()];
    stream.read_exact(&mut buf).await?;
    assert_eq!(&buf, PAYLOAD);
    Ok(())
}

struct Run {
    elapsed: Duration,
    p99: Duration,
    connections: usize,
}

async fn run<F, Fut>(tasks: usize, requests: usize, accepted: &AtomicUsize, one: F) -> Run
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send,
{
    let before = accepted.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let one = one.clone();
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(requests);
            for _ in 0..requests {
                let t = Instant::now();
                one().await.expect("request failed");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.await.expect("task panicked"));
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    Run {
        elapsed,
        p99,
        connections: accepted.load(Ordering::Relaxed) - before,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let tasks: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64);
    let requests: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);
    let (addr, accepted) = echo_server().await?;
    println!("echo server on {addr}; {tasks} tasks × {requests} requests of 64 bytes");

    let dest = Destination::from(addr);
    let naive = run(tasks, requests, &accepted, {
        let dest = dest.clone();
        move || {
            let dest = dest.clone();
            async move {
                let mut conn = TcpManager::new().connect(&dest).await?;
                round_trip(&mut conn).await
            }
        }
    })
    .await;

    let pool = Pool::builder(TcpManager::new())
        .max_open_per_key(16)
        .max_open(16)
        .build()
        .await?;
    let p = pool.clone();
    let pooled = run(tasks, requests, &accepted, move || {
        let p = p.clone();
        let dest = dest.clone();
        async move {
            let mut conn = p.get_for(&dest).await.map_err(std::io::Error::other)?;
            round_trip(&mut conn).await
        }
    })
    .await;

    let total = (tasks * requests) as f64;
    let rate = |r: &Run| total / r.elapsed.as_secs_f64();
    println!();
    println!(
        "{:<8} {:>12} {:>10} {:>12}",
        "mode", "req/s", "p99", "connections"
    );
    for (name, r) in [("naive", &naive), ("pooled", &pooled)] {
        println!(
            "{:<8} {:>12.0} {:>10.1?} {:>12}",
            name,
            rate(r),
            r.p99,
            r.connections
        );
    }
    println!(
        "\npooled/naive throughput: {:.1}×, p99 naive/pooled: {:.1}×",
        rate(&pooled) / rate(&naive),
        naive.p99.as_secs_f64() / pooled.p99.as_secs_f64()
    );
    let s = pool.state();
    println!(
        "pool: {} open, {} idle; {} gets, {} waited (mean wait {:.1?}), {} dials",
        s.open,
        s.idle,
        s.counters.gets,
        s.counters.gets_waited,
        s.counters.wait_time / s.counters.gets_waited.max(1) as u32,
        s.counters.dials
    );
    pool.close().await;
    Ok(())
}
