//! `max_open` and `max_open_per_key` as the server counts sessions: one
//! database, and two databases as two keys of one pool.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use connpool::Pool;
use connpool::managers::postgres::PgKey;

use crate::support;

use super::{bounded, manager, sessions, total_sessions, unique, wait_no_sessions};

/// (1) `max_open` holds as the server counts sessions: 32 tasks × 3 slow
/// queries through a pool of 4 never have more than 4 sessions open, every
/// query succeeds, and closing the pool ends the sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_open_holds_on_the_server() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let app = unique("max_open");
        let pool = Pool::builder(manager(&pg, &app).single())
            .max_open(4)
            .checkout_timeout(Duration::from_secs(20))
            .build()
            .await
            .unwrap();
        let admin = Arc::new(pg.client().await);

        let done = Arc::new(AtomicBool::new(false));
        let sampler = tokio::spawn({
            let (admin, app, done) = (Arc::clone(&admin), app.clone(), Arc::clone(&done));
            async move {
                let (mut max, mut samples) = (0, 0);
                while !done.load(Ordering::Acquire) {
                    max = max.max(total_sessions(&admin, &app).await);
                    samples += 1;
                }
                (max, samples)
            }
        });
        let workers: Vec<_> = (0..32)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    for j in 0..3 {
                        let conn = pool.get().await.expect("get");
                        let row = conn
                            .query_one("SELECT $1::int FROM pg_sleep(0.02)", &[&(i * 3 + j)])
                            .await
                            .expect("query through the pool");
                        assert_eq!(row.get::<_, i32>(0), i * 3 + j);
                        assert!(pool.state().open <= 4);
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.expect("worker panicked");
        }
        done.store(true, Ordering::Release);
        let (max, samples) = sampler.await.unwrap();

        let state = pool.state();
        assert!(max <= 4, "the server saw {max} sessions of a pool of 4");
        assert!(samples > 0);
        assert!(state.counters.dials <= 4, "{state:?}");
        assert_eq!(state.counters.gets, 96);
        assert_eq!(state.counters.closed_total(), 0, "{state:?}");
        // Now idle: the server sees exactly the pool's connections.
        assert_eq!(total_sessions(&admin, &app).await, state.open as i64);
        println!("max_open 4: at most {max} sessions seen in {samples} samples, {state:?}");

        pool.close().await;
        wait_no_sessions(&admin, &app).await;
    })
    .await;
}

/// (4) Two databases as two keys of one pool: each key stays within
/// `max_open_per_key` as the server counts sessions per database, while the
/// global cap would allow more, and each key's connections reach its own
/// database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_databases_with_per_key_limits() {
    let Some(pg) = support::pg::kept() else {
        return;
    };
    bounded(async {
        let admin = Arc::new(pg.client().await);
        let db2 = unique("db2");
        admin
            .batch_execute(&format!("CREATE DATABASE {db2}"))
            .await
            .expect("CREATE DATABASE");
        let app = unique("two_dbs");
        let manager = manager(&pg, &app);
        let k1 = manager.key();
        let db1 = k1
            .dbname
            .clone()
            .expect("the test config names its database");
        let k2 = k1.clone().with_dbname(&db2);
        let pool = Pool::builder(manager)
            .max_open(6)
            .max_open_per_key(2)
            .checkout_timeout(Duration::from_secs(20))
            .build()
            .await
            .unwrap();

        let done = Arc::new(AtomicBool::new(false));
        let sampler = tokio::spawn({
            let (admin, app, done) = (Arc::clone(&admin), app.clone(), Arc::clone(&done));
            async move {
                let mut max: BTreeMap<String, i64> = BTreeMap::new();
                while !done.load(Ordering::Acquire) {
                    for (db, n) in sessions(&admin, &app).await {
                        let m = max.entry(db).or_default();
                        *m = (*m).max(n);
                    }
                }
                max
            }
        });
        let mut workers = Vec::new();
        for (key, db) in [(&k1, &db1), (&k2, &db2)] {
            for _ in 0..12 {
                let (pool, key, db): (_, PgKey, String) = (pool.clone(), key.clone(), db.clone());
                workers.push(tokio::spawn(async move {
                    for _ in 0..3 {
                        let conn = pool.get_for(&key).await.expect("get");
                        let row = conn
                            .query_one("SELECT current_database()::text FROM pg_sleep(0.02)", &[])
                            .await
                            .expect("query");
                        assert_eq!(row.get::<_, String>(0), db);
                        assert!(pool.key_state(&key).unwrap().open <= 2);
                    }
                }));
            }
        }
        for w in workers {
            w.await.expect("worker panicked");
        }
        done.store(true, Ordering::Release);
        let max = sampler.await.unwrap();
        println!("max sessions per database: {max:?}");
        for db in [&db1, &db2] {
            let seen = max.get(db).copied().unwrap_or(0);
            assert!(
                (1..=2).contains(&seen),
                "{db}: {seen} sessions seen (limit 2)"
            );
        }
        assert_eq!(max.len(), 2, "{max:?}");
        // Now idle: the server sees exactly each key's connections.
        let now = sessions(&admin, &app).await;
        for (key, db) in [(&k1, &db1), (&k2, &db2)] {
            let open = pool.key_state(key).map_or(0, |s| s.open) as i64;
            assert_eq!(now.get(db).copied().unwrap_or(0), open, "{now:?}");
        }
        assert!(pool.state().counters.dials <= 4);

        pool.close().await;
        wait_no_sessions(&admin, &app).await;
        admin
            .batch_execute(&format!("DROP DATABASE {db2}"))
            .await
            .expect("DROP DATABASE");
    })
    .await;
}
