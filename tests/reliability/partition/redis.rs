//! Redis: a pool whose calls (`GET k`) each end within the reply timeout
//! (300 ms) or the checkout deadline (800 ms, once a dial is needed); and
//! the same calls through a `RedisService` with the pool's defaults and
//! one deadline of 800 ms, checkout to reply.

use std::time::{Duration, Instant};

use ::redis::AsyncCommands;
use connpool::Pool;
use connpool::managers::redis::{RedisKey, RedisManager, RedisService};

use super::{SLACK, first_success};
use crate::support::alone;
use crate::support::netns::Netns;
use crate::support::redis::RedisServer;

struct Client {
    pool: Pool<RedisManager>,
    key: RedisKey,
    /// Calls go through this service instead, if set.
    service: Option<RedisService>,
}

impl Client {
    async fn of(server: &RedisServer) -> Client {
        let manager = RedisManager::from_url(&server.url(""))
            .unwrap()
            .response_timeout(Duration::from_millis(300));
        let key = manager.key();
        let pool = Pool::builder(manager)
            .connect_timeout(Duration::from_millis(500))
            .checkout_timeout(Duration::from_millis(800))
            .build()
            .await
            .unwrap();
        Client { pool, key, service: None }
    }

    /// The pool's defaults, and a service with one 800 ms deadline.
    async fn service(server: &RedisServer) -> Client {
        let manager = RedisManager::from_url(&server.url("")).unwrap();
        let key = manager.key();
        let pool = Pool::builder(manager).build().await.unwrap();
        let service =
            RedisService::new(pool.clone(), key.clone()).timeout(Duration::from_millis(800));
        Client { pool, key, service: Some(service) }
    }

    async fn call(&self) -> Result<Option<i64>, String> {
        if let Some(service) = &self.service {
            let mut service = service.clone();
            return service
                .get::<_, Option<i64>>("k")
                .await
                .map_err(|e| e.to_string());
        }
        let mut conn = self
            .pool
            .get_for(&self.key)
            .await
            .map_err(|e| e.to_string())?;
        conn.get::<_, Option<i64>>("k")
            .await
            .map_err(|e| e.to_string())
    }

    /// Six calls during the fault: each fails, by its deadline. The
    /// longest.
    async fn six_fail(&self) -> Duration {
        let mut longest = Duration::ZERO;
        for _ in 0..6 {
            let start = Instant::now();
            let result = self.call().await;
            assert!(result.is_err(), "{result:?}");
            longest = longest.max(start.elapsed());
        }
        assert!(longest < Duration::from_millis(800) + SLACK, "{longest:?}");
        longest
    }
}

#[test]
fn a_shared_connection_caught_in_a_partition_is_replaced_and_the_heal_is_seen_at_once() {
    partitioned(false);
}

#[test]
fn through_the_service_a_partition_ends_each_call_by_its_one_deadline() {
    partitioned(true);
}

#[test]
fn a_frozen_server_fails_calls_by_their_deadline_and_serves_at_once_when_thawed() {
    frozen(false);
}

#[test]
fn through_the_service_a_frozen_server_ends_each_call_by_its_one_deadline() {
    frozen(true);
}

async fn client(server: &RedisServer, service: bool) -> Client {
    match service {
        true => Client::service(server).await,
        false => Client::of(server).await,
    }
}

fn partitioned(service: bool) {
    let _alone = alone();
    let Some(ns) = Netns::new() else { return };
    ns.run(async {
        // Started from a thread in the namespace: the server is in it too.
        let Some(server) = RedisServer::new() else {
            return;
        };
        let client = client(&server, service).await;
        client.call().await.unwrap();

        ns.partition(server.port());
        let longest = client.six_fail().await;

        ns.heal();
        let (first, tries) = first_success(Instant::now(), || client.call()).await;
        assert!(first < Duration::from_millis(500), "{first:?} after the heal");
        let dials = client.pool.state().counters.dials;
        assert!(dials <= 25, "{dials} dials");
        eprintln!(
            "Redis partition (service: {service}): 6 calls failed, the longest after {longest:?}; first success {first:?} after the heal ({tries} tries), {dials} dials"
        );
    });
}

fn frozen(service: bool) {
    let _alone = alone();
    let Some(ns) = Netns::new() else { return };
    ns.run(async {
        let Some(server) = RedisServer::new() else {
            return;
        };
        let client = client(&server, service).await;
        client.call().await.unwrap();

        // SIGSTOP: the kernel still accepts connections and acknowledges
        // bytes; the server answers nothing.
        server.signal("STOP");
        let longest = client.six_fail().await;

        server.signal("CONT");
        let (first, _) = first_success(Instant::now(), || client.call()).await;
        assert!(first < Duration::from_millis(500), "{first:?} after the thaw");
        eprintln!(
            "Redis frozen (service: {service}): calls failed within {longest:?}; first success {first:?} after SIGCONT, {} dials",
            client.pool.state().counters.dials
        );
    });
}
