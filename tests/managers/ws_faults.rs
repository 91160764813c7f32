//! The WebSocket manager against a server restarted and a server frozen
//! and thawed (in-process tokio-tungstenite servers on 127.0.0.1, the
//! frozen one behind `support::fault`'s proxy).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connpool::Pool;
use connpool::managers::websocket::tungstenite::Message;
use connpool::managers::websocket::{WsManager, WsUrl};
use futures_util::{SinkExt, StreamExt};

use super::websocket::{echo, echo_pool, idle_after_a_request};
use crate::support::fault::{Fault, FaultProxy};
use crate::support::outage::behind;
use crate::support::ws::{Options, WsServer};
use crate::support::{back_off, outage_error};

/// A server restart: while it is down the idle connection is found closed
/// and gets fail with the dial's error; once it is back, the next get
/// dials afresh (after the key's backoff).
#[tokio::test]
async fn a_server_restart() {
    let (server, pool, url) = echo_pool().await;
    let addr = server.addr;
    let watch = idle_after_a_request(&pool, &url).await;
    drop(server);
    watch.arrived().await;
    let e = pool.get_for(&url).await.unwrap_err();
    assert_eq!(outage_error(&e).0, "connect error", "{e}");
    assert!(e.to_string().contains("refused"), "{e}");
    assert_eq!(pool.state().counters.closed_broken, 1);

    let server = WsServer::start(Options { addr: Some(addr), ..Options::default() }).await;
    let mut conn = None;
    for _ in 0..100 {
        match pool.get_for(&url).await {
            Ok(c) => {
                conn = Some(c);
                break;
            }
            Err(e) => back_off(outage_error(&e).1).await,
        }
    }
    let mut conn = conn.expect("no connection within 100 tries after the restart");
    assert_eq!(echo(&mut conn, "after").await, "after");
    assert_eq!(server.handshakes(), 1);
    drop(conn);
    pool.close().await;
}

/// A server frozen (the proxy in front reads nothing: the kernel accepts
/// and acknowledges, nothing answers) and thawed, with the pool's defaults,
/// each call an echo of a text of its own under a 300 ms deadline, through
/// `support::outage`: a read cut short by the deadline leaves the
/// connection interrupted (closed on its return), so the late echo, which
/// comes at the thaw, reaches nobody (a reply that is not the call's own
/// fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_frozen_and_thawed() {
    const DEADLINE: Duration = Duration::from_millis(300);
    let server = WsServer::echo().await;
    let proxy = FaultProxy::start(server.addr).await;
    let url = WsUrl::parse(&format!("ws://{}/", proxy.addr)).unwrap();
    let pool = Pool::builder(WsManager::new())
        .checkout_timeout(DEADLINE)
        .build()
        .await
        .unwrap();
    let calls = AtomicUsize::new(0);
    let call = || async {
        let text = format!("call {}", calls.fetch_add(1, Ordering::Relaxed));
        let exchange = async {
            let mut conn = pool.get_for(&url).await.map_err(|e| e.to_string())?;
            conn.send(Message::text(text.as_str()))
                .await
                .map_err(|e| e.to_string())?;
            loop {
                match conn.next().await {
                    Some(Ok(Message::Text(t))) => {
                        assert_eq!(t.as_str(), text, "a reply meant for another call");
                        return Ok(());
                    }
                    Some(Ok(_)) => continue,
                    other => return Err(format!("{other:?}")),
                }
            }
        };
        tokio::time::timeout(DEADLINE, exchange)
            .await
            .unwrap_or_else(|_| Err("deadline".to_owned()))
    };
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.get_for(&url).await.unwrap());
    }
    drop(held);
    behind("WebSocket frozen", DEADLINE, &proxy, Fault::Freeze, call).await;
    pool.close().await;
}
