//! WebSocket in a partition: a subscription read through it ends by its
//! heartbeat, and a request through `WsService` by its one deadline; each
//! is served again on a new connection after the heal.

use std::time::{Duration, Instant};

use connpool::Pool;
use connpool::managers::websocket::tungstenite::Message;
use connpool::managers::websocket::{WsError, WsManager, WsService, WsUrl};
use futures_util::{SinkExt, StreamExt};

use super::SLACK;
use crate::support::alone;
use crate::support::netns::Netns;
use crate::support::ws::WsServer;

#[test]
fn a_subscription_caught_in_a_partition_ends_and_the_next_connection_works() {
    let _alone = alone();
    let Some(ns) = Netns::new() else { return };
    ns.run(async {
        let server = WsServer::echo().await;
        let url = WsUrl::parse(&server.url("ws")).unwrap();
        const EVERY: Duration = Duration::from_millis(200);
        let pool = Pool::builder(WsManager::new())
            .keepalive_interval(EVERY)
            .keepalive_max_missed(3)
            .connect_timeout(Duration::from_millis(500))
            .build()
            .await
            .unwrap();
        let mut conn = pool.get_for(&url).await.unwrap();
        conn.send(Message::text("subscribe")).await.unwrap();
        assert_eq!(conn.next().await.unwrap().unwrap(), Message::text("subscribe"));

        ns.partition(server.addr.port());
        let start = Instant::now();
        let end = tokio::time::timeout(Duration::from_secs(10), conn.next())
            .await
            .expect("the subscription must end by itself");
        let took = start.elapsed();
        let e = end.unwrap().unwrap_err();
        assert!(e.to_string().contains("heartbeats in a row"), "{e}");
        assert!(took < 4 * EVERY + SLACK, "{took:?}");
        drop(conn);

        ns.heal();
        let healed = Instant::now();
        let mut conn = pool.get_for(&url).await.unwrap();
        conn.send(Message::text("again")).await.unwrap();
        assert_eq!(conn.next().await.unwrap().unwrap(), Message::text("again"));
        eprintln!(
            "WebSocket partition: the subscriber's stream ended after {took:?} (heartbeat every {EVERY:?} of silence, 3 missed); resubscribed {:?} after the heal",
            healed.elapsed()
        );
    });
}

/// The pool's defaults and one 800 ms deadline through `WsService`: each
/// request into the partition fails by it, waiting for the reply on the
/// silent connection, then for a connection while dials go unanswered; the
/// first one after the heal is served on a new connection.
#[test]
fn through_the_service_a_partition_ends_each_request_by_its_one_deadline() {
    const DEADLINE: Duration = Duration::from_millis(800);
    let _alone = alone();
    let Some(ns) = Netns::new() else { return };
    ns.run(async {
        let server = WsServer::echo().await;
        let url = WsUrl::parse(&server.url("ws")).unwrap();
        let pool = Pool::builder(WsManager::new()).build().await.unwrap();
        let ws = WsService::new(pool.clone(), url).timeout(DEADLINE);
        assert_eq!(ws.request(Message::text("a")).await.unwrap(), Message::text("a"));

        ns.partition(server.addr.port());
        let mut longest = Duration::ZERO;
        for _ in 0..4 {
            let start = Instant::now();
            let e = ws.request(Message::text("b")).await.unwrap_err();
            let took = start.elapsed();
            assert!(matches!(e, WsError::TimedOut { .. }), "{e:?}");
            assert!(took < DEADLINE + SLACK, "{took:?}");
            longest = longest.max(took);
        }
        ns.heal();
        let healed = Instant::now();
        let reply = loop {
            match ws.request(Message::text("c")).await {
                Ok(reply) => break reply,
                Err(e) => assert!(healed.elapsed() < Duration::from_secs(2), "{e}"),
            }
        };
        let first = healed.elapsed();
        assert_eq!(reply, Message::text("c"));
        assert!(first < Duration::from_millis(500), "{first:?}");
        eprintln!(
            "WebSocket partition through WsService: 4 requests ended after at most {longest:?} (deadline {DEADLINE:?}); served {first:?} after the heal"
        );
    });
}
