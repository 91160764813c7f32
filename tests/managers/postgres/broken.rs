//! Dead connections: a backend killed while idle or while lent, a request
//! abandoned mid-flight, and a connection the server closes while idle
//! are never lent again.

use std::collections::BTreeSet;
use std::time::Duration;

use connpool::managers::postgres::{PgError, PostgresManager};
use connpool::{Health, Manager, Pool, Pooled, async_trait};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_postgres::{Client, NoTls};

use crate::support;

use super::{
    WAIT_LIMIT, backend_pid, bounded, manager, poll_once_then_drop, recycled, terminate, unique,
    wait_for, wait_no_sessions,
};

/// (2) A backend killed while its connection is idle is found and replaced:
/// with `Duration::ZERO` the next get (and each of several concurrent
/// gets after every idle backend was killed) succeeds at its first query.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_backend_is_replaced_before_it_is_lent() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let app = unique("killed");
        let pool = Pool::builder(manager(&pg, &app).single())
            .max_open(3)
            .health_check(Duration::ZERO)
            .checkout_timeout(Duration::from_secs(10))
            .build()
            .await
            .unwrap();
        let admin = pg.client().await;

        // One connection, killed while idle, three times over.
        for round in 0..3 {
            recycled(&pool).await;
            let pid = {
                let conn = pool.get().await.unwrap();
                backend_pid(&conn).await.unwrap()
            };
            recycled(&pool).await;
            terminate(&admin, pid).await;
            let conn = pool.get().await.expect("get after the kill");
            let new_pid = backend_pid(&conn)
                .await
                .unwrap_or_else(|e| panic!("round {round}: the pool lent a dead connection: {e}"));
            assert_ne!(new_pid, pid);
        }
        let c = pool.state().counters;
        assert_eq!(c.closed_broken + c.closed_health_check, 3, "{c:?}");
        assert_eq!(c.dials, 4, "{c:?}");

        // Three idle connections, all killed; three concurrent getters.
        let dead_pids: Vec<_> = {
            let mut held = Vec::new();
            for _ in 0..3 {
                held.push(pool.get().await.unwrap());
            }
            let mut pids = Vec::new();
            for conn in &held {
                pids.push(backend_pid(conn).await.unwrap());
            }
            pids
        };
        recycled(&pool).await;
        assert_eq!(pool.state().idle, 3);
        for &pid in &dead_pids {
            terminate(&admin, pid).await;
        }
        let getters: Vec<_> = (0..3)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let conn = Pooled::into_owned(pool.get().await.expect("get after the kills"));
                    let pid = backend_pid(&conn)
                        .await
                        .expect("the pool lent a dead connection");
                    (pid, conn)
                })
            })
            .collect();
        let mut fresh = BTreeSet::new();
        let mut held = Vec::new();
        for g in getters {
            let (pid, conn) = g.await.unwrap();
            assert!(!dead_pids.contains(&pid));
            fresh.insert(pid);
            held.push(conn);
        }
        drop(held);
        assert_eq!(fresh.len(), 3, "each getter holds a connection of its own");
        let c = pool.state().counters;
        assert_eq!(c.closed_broken + c.closed_health_check, 6, "{c:?}");
        pool.close().await;
        wait_no_sessions(&admin, &app).await;
    })
    .await;
}

/// (5a) The manager alone: a ping or query dropped mid-flight leaves the
/// client usable (tokio-postgres discards the abandoned answers), and once
/// the server closes the connection `health` says so without any I/O of
/// ours, and `ping` fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_requests_and_health() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let app = unique("manager");
        let manager = manager(&pg, &app);
        let mut client = manager.connect(&manager.key()).await.expect("connect");
        manager.ping(&mut client).await.expect("ping");
        assert!(!manager.health(&mut client).is_broken());

        // Each request is polled once (so it is handed to the connection
        // task) and dropped before its answer.
        // A ping may complete at its first poll when the machine is busy
        // (the connection task runs on the other worker): try until one is
        // abandoned mid-flight.
        let mut abandoned = false;
        for _ in 0..100 {
            if poll_once_then_drop(manager.ping(&mut client)).await {
                abandoned = true;
                break;
            }
        }
        assert!(
            abandoned,
            "no ping was pending at its first poll in 100 tries"
        );
        assert!(
            poll_once_then_drop(client.simple_query("SELECT pg_sleep(0.05), 'abandoned'")).await,
            "the query was not pending"
        );
        assert!(!manager.health(&mut client).is_broken());
        let row = client
            .query_one("SELECT 'next'::text", &[])
            .await
            .expect("the client works after abandoned requests");
        assert_eq!(row.get::<_, String>(0), "next");
        manager
            .ping(&mut client)
            .await
            .expect("ping after abandoned requests");

        let admin = pg.client().await;
        let pid = backend_pid(&client).await.unwrap();
        terminate(&admin, pid).await;
        let deadline = Instant::now() + WAIT_LIMIT;
        while !manager.health(&mut client).is_broken() {
            assert!(
                Instant::now() < deadline,
                "health never saw the server close"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(manager.ping(&mut client).await.is_err());
    })
    .await;
}

/// (5b) A connection whose backend is killed while it is lent is closed as
/// broken when it comes back, never lent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_connection_is_not_reused_after_return() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let app = unique("returned");
        let pool = Pool::builder(manager(&pg, &app).single())
            .max_open(1)
            .health_check(None)
            .build()
            .await
            .unwrap();
        let admin = pg.client().await;
        let conn = pool.get().await.unwrap();
        let pid = backend_pid(&conn).await.unwrap();
        terminate(&admin, pid).await;
        wait_for("the client to see its connection closed", || async {
            conn.is_closed()
        })
        .await;
        drop(conn);
        let state = pool.state();
        assert_eq!(state.counters.closed_broken, 1, "{state:?}");
        assert_eq!(state.idle, 0);

        let conn = pool.get().await.unwrap();
        let new_pid = backend_pid(&conn).await.expect("a working connection");
        assert_ne!(new_pid, pid);
        assert_eq!(pool.state().counters.dials, 2);
        drop(conn);
        pool.close().await;
    })
    .await;
}

/// Delegates to [`PostgresManager`], but makes its connections itself so
/// the test learns when a connection's I/O task has ended (the moment its
/// client reports `is_closed`).
struct Watched {
    inner: PostgresManager,
    ended: mpsc::UnboundedSender<()>,
}

#[async_trait]
impl Manager for Watched {
    type Key = ();
    type Connection = Client;
    type Error = PgError;

    async fn connect(&self, _: &()) -> Result<Client, PgError> {
        let config = self.inner.config_for(&self.inner.key());
        let (client, connection) = config.connect(NoTls).await?;
        let ended = self.ended.clone();
        tokio::spawn(async move {
            let _ = connection.await;
            let _ = ended.send(());
        });
        Ok(client)
    }

    async fn ping(&self, conn: &mut Client) -> Result<(), PgError> {
        Ok(conn.check_connection().await?)
    }

    fn health(&self, conn: &mut Client) -> Health {
        if conn.is_closed() {
            Health::Broken
        } else {
            Health::Ready
        }
    }
}

/// (5c) A connection the server closes while it is idle (its
/// `idle_session_timeout`, PostgreSQL 14+; a terminated backend before) is
/// caught by `health` at checkout, even with `None`: the
/// getter gets a new connection that works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_idle_connection_is_not_lent() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let admin = pg.client().await;
        let version: i32 = admin
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .unwrap()
            .get(0);
        let app = unique("idle_closed");
        let mut inner = manager(&pg, &app);
        let server_closes = version >= 140000;
        if server_closes {
            let mut config = inner.config().clone();
            // Long enough that the replacement connection, dialed right
            // after, is not closed the same way before its first query on a
            // loaded machine (100 ms was: seen as a flake at load 50).
            config.options("-c idle_session_timeout=1000");
            inner = PostgresManager::new(config);
        }
        let (ended, mut ends) = mpsc::unbounded_channel();
        let pool = Pool::builder(Watched { inner, ended })
            .max_open(1)
            .health_check(None)
            .build()
            .await
            .unwrap();

        let pid = {
            let conn = pool.get().await.unwrap();
            backend_pid(&conn).await.unwrap()
        };
        assert_eq!(pool.state().idle, 1);
        if !server_closes {
            terminate(&admin, pid).await;
        }
        tokio::time::timeout(WAIT_LIMIT, ends.recv())
            .await
            .expect("the server did not close the idle connection")
            .unwrap();

        let conn = pool.get().await.unwrap();
        let new_pid = backend_pid(&conn)
            .await
            .expect("the pool lent the closed connection");
        assert_ne!(new_pid, pid);
        let state = pool.state();
        assert_eq!(state.counters.closed_broken, 1, "{state:?}");
        assert_eq!(state.counters.health_checks, 0);
        assert_eq!(state.counters.dials, 2);
        drop(conn);
        pool.close().await;
    })
    .await;
}
