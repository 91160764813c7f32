//! A WebSocket subscription held through a pool, end to end: connect,
//! subscribe, read what the server pushes, and when the stream ends
//! (the server went silent, or restarted) reconnect through the pool and
//! subscribe again. The server is in process, on 127.0.0.1: it pushes a
//! quote every 50 ms to each subscriber; in the middle it goes silent
//! on the connections it has (reads and writes nothing, keeps the
//! sockets, as a frozen process or a dead path does), then it restarts.
//!
//! ```text
//! cargo run --release --features websocket --example ws_subscription
//! ```
//!
//! The connection's heartbeat while lent (the pool's keepalive: every
//! 200 ms of silence here, 30 s by default) finds the silent server after
//! 3 missed heartbeats (`keepalive_max_missed(3)`; 1 by default) and
//! ends the borrower's stream with an error that says so; the restart
//! ends it with the closed socket. Each time the loop gets a fresh
//! connection from the pool and resubscribes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use connpool::Pool;
use connpool::managers::websocket::tungstenite::Message;
use connpool::managers::websocket::{WsManager, WsUrl};
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The quote server: every connection that sends `subscribe <symbol>`
/// gets `<symbol> <n>` every 50 ms. Each connection's flag, once set,
/// makes it stop reading and writing (its socket stays open).
struct QuoteServer {
    silent: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    tasks: JoinSet<()>,
}

impl QuoteServer {
    async fn start(addr: SocketAddr) -> Result<QuoteServer, BoxError> {
        let listener = TcpListener::bind(addr).await?;
        let silent: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let mut tasks = JoinSet::new();
        let flags = Arc::clone(&silent);
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let quiet = Arc::new(AtomicBool::new(false));
                flags.lock().push(Arc::clone(&quiet));
                conns.spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    let mut symbol = None;
                    let mut tick = tokio::time::interval(Duration::from_millis(50));
                    for n in 0.. {
                        if quiet.load(Ordering::Relaxed) {
                            // Holds the socket, answers nothing, not even Pings.
                            std::future::pending::<()>().await;
                        }
                        tokio::select! {
                            msg = ws.next() => match msg {
                                Some(Ok(Message::Text(t))) => {
                                    symbol = t.strip_prefix("subscribe ").map(str::to_owned);
                                }
                                Some(Ok(_)) => {}
                                _ => return,
                            },
                            _ = tick.tick() => {
                                if let Some(s) = &symbol
                                    && ws.send(Message::text(format!("{s} {n}"))).await.is_err()
                                {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Ok(QuoteServer { silent, tasks })
    }

    /// Every connection open now goes silent (new ones are served).
    fn go_silent(&self) {
        for flag in self.silent.lock().iter() {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let addr: SocketAddr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?
    };
    let mut server = QuoteServer::start(addr).await?;
    let pool = Pool::builder(WsManager::new())
        .keepalive_interval(Duration::from_millis(200))
        .keepalive_max_missed(3)
        .build()
        .await?;
    let url: WsUrl = format!("ws://{addr}/quotes").parse()?;
    let started = Instant::now();
    let say = |what: String| println!("{:>7.3} s  {what}", started.elapsed().as_secs_f64());

    // Three subscriptions: the first ends when the server goes silent, the
    // second when it restarts, the third after a few quotes.
    for round in 1..=3 {
        let mut conn = pool.get_for(&url).await?;
        say(format!(
            "subscribed (connection {})",
            conn.tcp().local_addr()?
        ));
        conn.send(Message::text("subscribe EURUSD")).await?;
        let mut quotes = 0;
        loop {
            let Some(msg) = conn.next().await else {
                say("subscription ended: the server closed the connection".into());
                break;
            };
            match msg {
                Ok(Message::Text(quote)) => {
                    quotes += 1;
                    if quotes == 5 {
                        say(format!("5 quotes, the last: {quote}"));
                        match round {
                            1 => {
                                say("the server goes silent".into());
                                server.go_silent();
                            }
                            2 => {
                                say("the server restarts".into());
                                server.tasks.shutdown().await;
                                server = QuoteServer::start(addr).await?;
                            }
                            _ => break,
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    say(format!("subscription lost: {e}"));
                    break;
                }
            }
        }
        // The guard goes: a broken connection is closed, the next round
        // reconnects through the pool and resubscribes.
    }
    let state = pool.state();
    say(format!(
        "done: {} connections dialed, {} closed as broken",
        state.counters.dials, state.counters.closed_broken
    ));
    pool.close().await;
    Ok(())
}
