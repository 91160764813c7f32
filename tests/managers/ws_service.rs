//! `WsService`: a request and its reply under one deadline, from the
//! checkout on, against the in-process tungstenite server
//! (`support::ws`): a reply within it, a silent server (muted: the socket
//! open, nothing answered) at the deadline with the connection retired, a
//! server that accepts and never finishes the handshake at the deadline
//! too (waiting for a connection), a restart served again at once, and a
//! subscription kept lent after its first reply.

use std::time::{Duration, Instant};

use connpool::Pool;
use connpool::managers::websocket::tungstenite::Message;
use connpool::managers::websocket::{WsError, WsManager, WsService, WsUrl};
use futures_util::StreamExt;

use crate::support::ws::{Options, WsServer};

const DEADLINE: Duration = Duration::from_millis(300);
/// Over the deadline: the scheduler and the loopback.
const SLACK: Duration = Duration::from_millis(100);

async fn service(url: &str) -> WsService {
    let pool = Pool::builder(WsManager::new()).build().await.unwrap();
    WsService::new(pool, url.parse::<WsUrl>().unwrap()).timeout(DEADLINE)
}

/// `call` fails with `TimedOut` waiting for `phase`, at the deadline.
async fn times_out(call: impl Future<Output = Result<Message, WsError>>, phase: &str) {
    let start = Instant::now();
    let e = call.await.unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(e, WsError::TimedOut { after: DEADLINE, waiting_for } if waiting_for == phase),
        "{e:?}"
    );
    assert!(e.to_string().contains("deadline of 300ms"), "{e}");
    assert!(took >= DEADLINE && took < DEADLINE + SLACK, "{took:?}");
    eprintln!("{phase}: timed out after {took:?} (deadline {DEADLINE:?})");
}

#[tokio::test]
async fn a_silent_server_fails_the_request_at_its_deadline_and_the_next_is_served() {
    let server = WsServer::echo().await;
    let ws = service(&server.url("ws")).await;
    assert_eq!(
        ws.request(Message::text("one")).await.unwrap(),
        Message::text("one")
    );
    server.mute_all();
    times_out(ws.request(Message::text("two")), "the reply").await;
    // The connection whose reply may still come is not lent again.
    let reply = ws.request(Message::text("three")).await.unwrap();
    assert_eq!(reply, Message::text("three"));
    assert_eq!(server.handshakes(), 2, "a new connection after the timeout");
    let counters = ws.pool().state().counters;
    assert_eq!((counters.reply_timeouts, counters.timeouts), (1, 0));
}

#[tokio::test]
async fn a_server_that_never_finishes_the_handshake_fails_the_checkout_at_the_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            sockets.push(tcp);
        }
    });
    let ws = service(&format!("ws://{addr}/")).await;
    times_out(ws.request(Message::text("hello")), "a connection").await;
    let counters = ws.pool().state().counters;
    assert_eq!((counters.reply_timeouts, counters.timeouts), (0, 1));
    held.abort();
}

#[tokio::test]
async fn a_restarted_server_is_served_again_within_the_deadline() {
    let server = WsServer::echo().await;
    let addr = server.addr;
    let ws = service(&server.url("ws")).await;
    assert_eq!(
        ws.request(Message::text("before")).await.unwrap(),
        Message::text("before")
    );
    server.stop();
    drop(server);
    // Down: each call ends within its deadline, with an error.
    let start = Instant::now();
    assert!(ws.request(Message::text("down")).await.is_err());
    assert!(start.elapsed() < DEADLINE + SLACK, "{:?}", start.elapsed());
    let _server = WsServer::start(Options { addr: Some(addr), ..Options::default() }).await;
    let back = Instant::now();
    let reply = loop {
        match ws.request(Message::text("after")).await {
            Ok(reply) => break reply,
            Err(e) => assert!(back.elapsed() < Duration::from_secs(1), "{e}"),
        }
    };
    assert_eq!(reply, Message::text("after"));
    eprintln!("served {:?} after the restart", back.elapsed());
}

#[tokio::test]
async fn a_subscription_keeps_its_connection_after_the_first_reply() {
    let server = WsServer::echo().await;
    let ws = service(&server.url("ws")).await;
    let (mut feed, ack) = ws.subscribe(Message::text("subscribe")).await.unwrap();
    assert_eq!(ack, Message::text("subscribe"));
    server.send_all(Message::text("tick")).await;
    assert_eq!(feed.next().await.unwrap().unwrap(), Message::text("tick"));
}

/// The same shape as the other services: over a pool of one key
/// (`Single::new(manager, url)`), its key `()`; a clone bound to one
/// instant fails at it, waiting for the reply of a muted server.
#[tokio::test]
async fn a_single_pools_service_and_a_shared_deadline() {
    let server = WsServer::echo().await;
    let url: WsUrl = server.url("ws").parse().unwrap();
    let pool = Pool::builder(connpool::Single::new(WsManager::new(), url))
        .build()
        .await
        .unwrap();
    let ws = WsService::new(pool, ());
    assert_eq!(
        ws.request(Message::text("one")).await.unwrap(),
        Message::text("one")
    );
    server.mute_all();
    let start = tokio::time::Instant::now();
    let e = ws
        .deadline(start + DEADLINE)
        .request(Message::text("two"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, WsError::TimedOut { waiting_for: "the reply", .. }),
        "{e:?}"
    );
    assert!(start.elapsed() < DEADLINE + SLACK, "{:?}", start.elapsed());
    assert_eq!(ws.pool().state().counters.reply_timeouts, 1);
}
