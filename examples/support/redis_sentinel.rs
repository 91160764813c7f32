//! Redis Sentinels for the failover tests and example: a Sentinel
//! monitoring a throwaway master (the same `redis-server` binary in
//! Sentinel mode), and [`Fleet`], a master with a replica and three
//! Sentinels, ready for a failover.

use futures_util::StreamExt;

use super::*;

impl RedisServer {
    /// A Sentinel monitoring `master` as `name` (quorum 2), on a free
    /// port; `None` (after saying why) if `redis-server` is missing.
    pub fn sentinel(master: &RedisServer, name: &str) -> Option<RedisServer> {
        Self::sentinel_with(master, name, "")
    }

    /// A TLS-only Sentinel (see [`tls`](RedisServer::tls)) monitoring the
    /// TLS-only `master` as `name`.
    pub fn sentinel_tls(
        master: &RedisServer,
        name: &str,
        (cert_pem, key_pem, ca_pem): (&str, &str, &str),
    ) -> Option<RedisServer> {
        let conf = format!(
            "sentinel monitor {name} 127.0.0.1 {port} 1\ntls-replication yes\n",
            port = master.port
        );
        let tls = Self::tls_args(cert_pem, key_pem, ca_pem);
        Self::start_with(&[], tls, Some(&conf))
    }

    /// [`sentinel`](RedisServer::sentinel) with `extra` lines of
    /// configuration (`requirepass …`).
    pub fn sentinel_with(master: &RedisServer, name: &str, extra: &str) -> Option<RedisServer> {
        let conf = format!(
            "sentinel monitor {name} 127.0.0.1 {port} 2\n\
             sentinel down-after-milliseconds {name} 2000\n\
             sentinel failover-timeout {name} 10000\n{extra}",
            port = master.port
        );
        Self::start_with(&[], |_, _| Vec::new(), Some(&conf))
    }
}

/// A master, its replica and three Sentinels monitoring it as `name`.
pub struct Fleet {
    pub master: RedisServer,
    pub replica: RedisServer,
    pub sentinels: Vec<RedisServer>,
    pub name: String,
}

impl Fleet {
    /// The servers started, and ready for a failover: the replica in sync,
    /// every Sentinel knowing the replica and the two others. `None` if
    /// `redis-server` is missing.
    pub async fn start(name: &str) -> Option<Fleet> {
        let master = RedisServer::new()?;
        let port = master.port.to_string();
        let replica = RedisServer::with_args(&["--replicaof", "127.0.0.1", &port])?;
        let sentinels = (0..3)
            .map(|_| RedisServer::sentinel(&master, name))
            .collect::<Option<Vec<_>>>()?;
        let on_replica = patient(&replica).await;
        eventually("the replica in sync", || {
            let mut c = on_replica.clone();
            async move {
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut c)
                    .await
                    .unwrap();
                info.contains("master_link_status:up")
            }
        })
        .await;
        for sentinel in &sentinels {
            let c = patient(sentinel).await;
            eventually("the Sentinels know the replica and each other", || {
                let mut c = c.clone();
                async move {
                    let ask =
                        |what: &'static str| redis::cmd("SENTINEL").arg(what).arg(name).clone();
                    let replicas: Vec<redis::Value> =
                        ask("replicas").query_async(&mut c).await.unwrap();
                    let others: Vec<redis::Value> =
                        ask("sentinels").query_async(&mut c).await.unwrap();
                    !replicas.is_empty() && others.len() == 2
                }
            })
            .await;
        }
        // One line or several: the tests' and the examples' rustfmt settings differ.
        #[rustfmt::skip]
        let fleet = Fleet { master, replica, sentinels, name: name.to_owned() };
        Some(fleet)
    }

    /// The Sentinels' addresses, `127.0.0.1:port` each.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    /// Asks the first Sentinel for a failover (`SENTINEL FAILOVER`) and
    /// returns when it announces the switch (`+switch-master`, to the
    /// replica), as a client subscribed to it hears it: the instant of the
    /// announcement.
    pub async fn fail_over(&self) -> Instant {
        self.fail_over_through(0).await
    }

    /// Subscribes to `+switch-master` on every Sentinel; the future
    /// returned ends when the first announces the switch (to the replica),
    /// as a client subscribed to them all hears it: the instant of the
    /// announcement (within 30 s).
    pub async fn switch_heard(&self) -> impl Future<Output = Instant> + use<> {
        let mut subscriptions = Vec::new();
        for sentinel in &self.sentinels {
            let url = format!("redis://127.0.0.1:{}", sentinel.port);
            let client = redis::Client::open(url).unwrap();
            let mut pubsub = client.get_async_pubsub().await.unwrap();
            pubsub.subscribe("+switch-master").await.unwrap();
            subscriptions.push(pubsub.into_on_message());
        }
        let replica = self.replica.port.to_string();
        async move {
            let mut any = futures_util::stream::select_all(subscriptions);
            let message = tokio::time::timeout(Duration::from_secs(30), any.next())
                .await
                .expect("+switch-master within 30 s")
                .expect("the subscriptions open");
            let payload: String = message.get_payload().unwrap();
            assert!(payload.contains(&replica), "{payload}");
            Instant::now()
        }
    }

    /// [`fail_over`](Fleet::fail_over) through Sentinel `i`.
    pub async fn fail_over_through(&self, i: usize) -> Instant {
        let url = format!("redis://127.0.0.1:{}", self.sentinels[i].port);
        let client = redis::Client::open(url).unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub.subscribe("+switch-master").await.unwrap();
        // (Sent once: a failover command that timed out may have run.)
        let mut on_sentinel = patient(&self.sentinels[i]).await;
        let _: () = redis::cmd("SENTINEL")
            .arg("failover")
            .arg(&self.name)
            .query_async(&mut on_sentinel)
            .await
            .unwrap();
        let mut messages = pubsub.on_message();
        let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .expect("+switch-master within 30 s")
            .expect("the subscription open");
        let payload: String = message.get_payload().unwrap();
        assert!(
            payload.contains(&self.replica.port.to_string()),
            "{payload}"
        );
        Instant::now()
    }
}

/// A connection to `server` for the fixture's own commands, which waits
/// 30 s for an answer where redis-rs's default gives up after 500 ms: the
/// suites run their servers side by side on a few cores, which can hold
/// an answer that long. The fixture's waits are bounded all the same.
async fn patient(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
    redis::Client::open(server.url(""))
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("a connection to the fixture's server")
}

/// Polls `check` every 50 ms for at most 30 s (servers syncing, Sentinels
/// finding each other).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < Duration::from_secs(30), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
