//! Which returned Redis connections the pool resets: an exclusive one whose
//! borrower changed its state or lost a reply, never one whose borrower
//! only read and wrote data, never a shared one (a throwaway redis-server
//! of each test's own).
//!
//! `CI=true` makes a missing `redis-server` a failure.

use connpool::managers::redis::RedisManager;
use connpool::{Health, Manager, Pool};

use crate::support::redis::RedisServer;

/// An exclusive borrower that only reads and writes data costs no reset;
/// one that changed the connection's state (here `SELECT`, a command
/// whose reply did not come in time) gets one, and the next borrower sees
/// the key's database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_changed_connection_is_reset() {
    let Some(server) = RedisServer::new() else {
        return;
    };
    let manager = RedisManager::from_url(&server.url("/3"))
        .unwrap()
        .exclusive();
    let pool = Pool::builder(manager.single())
        .max_open(1)
        .build()
        .await
        .unwrap();
    for i in 0..5 {
        let mut conn = pool.get().await.unwrap();
        let _: () = ::redis::cmd("SET")
            .arg("k")
            .arg(i)
            .query_async(&mut *conn)
            .await
            .unwrap();
        let _: i64 = ::redis::cmd("GET")
            .arg("k")
            .query_async(&mut *conn)
            .await
            .unwrap();
    }
    pool.settled().await;
    assert_eq!(
        pool.state().counters.recycles,
        0,
        "data commands change no state"
    );

    {
        let mut conn = pool.get().await.unwrap();
        let _: () = ::redis::cmd("SELECT")
            .arg(5)
            .query_async(&mut *conn)
            .await
            .unwrap();
    }
    pool.settled().await;
    assert_eq!(pool.state().counters.recycles, 1, "SELECT is reset");
    {
        let mut conn = pool.get().await.unwrap();
        // Back in database 3, where `k` was written.
        let k: i64 = ::redis::cmd("GET")
            .arg("k")
            .query_async(&mut *conn)
            .await
            .unwrap();
        assert_eq!(k, 4);
        // A reply that did not come in time: the command may still run.
        conn.set_response_timeout(std::time::Duration::from_millis(50));
        let late: Result<::redis::Value, _> = ::redis::cmd("BLPOP")
            .arg("nothing")
            .arg(1)
            .query_async(&mut *conn)
            .await;
        assert!(late.is_err(), "{late:?}");
    }
    pool.settled().await;
    assert_eq!(
        pool.state().counters.recycles,
        2,
        "a timed-out command is reset"
    );
    pool.close().await;
}

/// A shared connection is never reset (the commands that change state
/// belong on an exclusive key): its `health` stays `Ready` after one,
/// where an exclusive connection's says it needs its recycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_connection_needs_no_recycle() {
    let Some(server) = RedisServer::new() else {
        return;
    };
    let manager = RedisManager::from_url(&server.url("/0")).unwrap();
    for exclusive in [false, true] {
        let manager = if exclusive {
            manager.clone().exclusive()
        } else {
            manager.clone()
        };
        let pool = Pool::builder(manager.single()).build().await.unwrap();
        let mut conn = pool.get().await.unwrap();
        let _: () = ::redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg("renamed")
            .query_async(&mut *conn)
            .await
            .unwrap();
        let health = pool.manager().health(&mut conn);
        let expected = if exclusive {
            Health::NeedsRecycle
        } else {
            Health::Ready
        };
        assert_eq!(health, expected, "exclusive: {exclusive}");
        drop(conn);
        pool.close().await;
    }
}
