//! PostgreSQL failover under a steady write load: a primary and a
//! streaming standby (`pg_basebackup -R`), both throwaway servers of the
//! test's own, switched over as Patroni switches over (the primary stopped
//! with `-m fast`, the standby promoted, the old primary started again as
//! a standby of the new one), 16 tasks inserting rows through the pool,
//! each insert under a 1 s deadline. Three ways a client reaches the
//! primary:
//!
//! - a multi-host string with `target_session_attrs=read-write`, and
//!   without it (the demoted primary, first in the string, up again as a
//!   standby: left at its first refused write, and not dialed again);
//! - one address that moves to the new primary at the promotion (a VIP,
//!   a DNS name), the old primary left down;
//! - one address that moves a second after the old primary is back up
//!   read-only behind it (a DNS cache that has not expired): the first
//!   write refused with `25006` clears the key, and the writes fail until
//!   the address moves.
//!
//! Each asserts: writes resume on the new primary within 1 s of its
//! promotion (of the move), no session of the pool is left on the demoted
//! server, and every acknowledged write is on the new primary.
//!
//! `CI=true` makes a missing PostgreSQL a failure (`support::pg`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use connpool::managers::postgres::PostgresManager;
use connpool::{Pool, Single};
use parking_lot::Mutex;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout};
use tokio_postgres::config::TargetSessionAttrs;

use crate::support::movable::Movable;
use crate::support::pg::{self, PgServer};

const WRITERS: usize = 16;
const DEADLINE: Duration = Duration::from_secs(1);
const APP: &str = "connpool-failover";

/// A primary with a table, and its standby.
async fn primary_and_standby() -> Option<(Arc<PgServer>, Arc<PgServer>)> {
    let primary = pg::dedicated()?;
    primary
        .client()
        .await
        .batch_execute("CREATE TABLE failover (id bigint PRIMARY KEY)")
        .await
        .unwrap();
    let standby = {
        let primary = Arc::clone(&primary);
        tokio::task::spawn_blocking(move || primary.standby())
            .await
            .unwrap()
    };
    Some((primary, Arc::new(standby)))
}

/// Runs `f` on a blocking thread (the servers' `pg_ctl`s block).
async fn blocking(f: impl FnOnce() + Send + 'static) {
    tokio::task::spawn_blocking(f).await.unwrap();
}

/// What becomes of the old primary after a switchover.
enum Demoted {
    LeftDown,
    StartedAsStandby,
}

/// Stops `primary` (`-m fast`), promotes `standby`, and, as `demoted` says,
/// starts the old primary again as a standby of the new one. Returns when
/// the promotion returned.
async fn switch_over(
    primary: &Arc<PgServer>,
    standby: &Arc<PgServer>,
    demoted: Demoted,
) -> Instant {
    let (old, new) = (Arc::clone(primary), Arc::clone(standby));
    blocking(move || old.stop()).await;
    blocking(move || new.promote()).await;
    let promoted = Instant::now();
    if let Demoted::StartedAsStandby = demoted {
        let (old, new) = (Arc::clone(primary), Arc::clone(standby));
        blocking(move || old.start_as_standby_of(&new)).await;
    }
    promoted
}

/// The writers: each inserts the next id under [`DEADLINE`], and records
/// when each insert was acknowledged.
struct Load {
    acked: Arc<Mutex<Vec<(i64, Instant)>>>,
    failed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    tasks: JoinSet<()>,
}

impl Load {
    fn start(pool: &Pool<Single<PostgresManager>>) -> Load {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicI64::new(1));
        let mut tasks = JoinSet::new();
        for _ in 0..WRITERS {
            let (pool, acked, failed) = (pool.clone(), Arc::clone(&acked), Arc::clone(&failed));
            let (stop, next) = (Arc::clone(&stop), Arc::clone(&next));
            tasks.spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let id = next.fetch_add(1, Ordering::SeqCst);
                    let insert = async {
                        let conn = pool.get().await.map_err(|e| e.to_string())?;
                        conn.execute("INSERT INTO failover (id) VALUES ($1)", &[&id])
                            .await
                            .map_err(|e| e.to_string())
                    };
                    match timeout(DEADLINE, insert).await {
                        Ok(Ok(_)) => acked.lock().push((id, Instant::now())),
                        _ => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            });
        }
        Load { acked, failed, stop, tasks }
    }

    /// Stops the writers; the acknowledged ids and their instants.
    async fn stop(mut self) -> (Vec<(i64, Instant)>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        while self.tasks.join_next().await.is_some() {}
        let acked = std::mem::take(&mut *self.acked.lock());
        (acked, self.failed.load(Ordering::SeqCst))
    }
}

/// What the run showed, asserted: writes acknowledged after `from` within
/// 1 s of it, none of the pool's sessions on `demoted`, every acknowledged
/// write on `primary`.
async fn check(
    what: &str,
    (acked, failed): (Vec<(i64, Instant)>, usize),
    from: Instant,
    primary: &PgServer,
    demoted: Option<&PgServer>,
    clears: u64,
) {
    let first = acked
        .iter()
        .map(|&(_, at)| at)
        .filter(|&at| at > from)
        .min()
        .unwrap_or_else(|| panic!("{what}: no write acknowledged after the switch"));
    let resumed = first - from;
    println!(
        "{what}: writes resumed {resumed:?} after the switch; {} acknowledged, {failed} failed, \
         {clears} key clears",
        acked.len()
    );
    assert!(
        resumed < Duration::from_secs(1),
        "{what}: resumed after {resumed:?}"
    );
    let ids: Vec<i64> = acked.iter().map(|&(id, _)| id).collect();
    let found: i64 = primary
        .client()
        .await
        .query_one("SELECT count(*) FROM failover WHERE id = ANY($1)", &[&ids])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        found as usize,
        ids.len(),
        "{what}: acknowledged writes lost"
    );
    if let Some(demoted) = demoted {
        let left: i64 = demoted
            .client()
            .await
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&APP],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "{what}: sessions left on the demoted server");
    }
}

/// A switchover under a multi-host string (`host=primary,standby`) with
/// `attrs`: writes resume, every acknowledged write is on the new primary,
/// no session is left on the demoted one. Returns the pool's counters
/// over the switchover, and how many inserts were acknowledged.
async fn multi_host(what: &str, attrs: TargetSessionAttrs) -> Option<(connpool::Counters, u64)> {
    let (primary, standby) = primary_and_standby().await?;
    let mut config = primary.config();
    config.application_name(APP);
    let port = |s: &PgServer| s.config().get_ports()[0];
    config
        .host("127.0.0.1")
        .port(port(&standby))
        .target_session_attrs(attrs);
    let pool = Pool::builder(PostgresManager::new(config).single())
        .build()
        .await
        .unwrap();
    let load = Load::start(&pool);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let before = pool.state().counters.dials;
    let promoted = switch_over(&primary, &standby, Demoted::StartedAsStandby).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut counters = pool.state().counters;
    counters.dials -= before;
    let load = load.stop().await;
    let acked = load.0.len() as u64;
    check(
        what,
        load,
        promoted,
        &standby,
        Some(&primary),
        counters.key_clears,
    )
    .await;
    pool.close().await;
    Some((counters, acked))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_host_string_follows_the_primary() {
    let Some((counters, acked)) = multi_host("multi-host", TargetSessionAttrs::ReadWrite).await
    else {
        return;
    };
    // Sessions dialed with `target_session_attrs` are tracked: a clean
    // insert costs no reset.
    println!(
        "multi-host: {} resets for {acked} inserts",
        counters.recycles
    );
    assert!(
        counters.recycles * 100 < acked,
        "{} resets",
        counters.recycles
    );
}

/// Without `target_session_attrs`, the demoted primary, first in the
/// string and up again as a standby, takes the dials after the switchover:
/// its first refused write (`25006`) clears the key and marks it
/// read-only, and the redials go to the new primary instead of back into
/// it (a reconnect storm). At most three dials per writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_host_string_without_session_attrs_follows_the_primary() {
    let what = "multi-host, no target_session_attrs";
    let Some((counters, _)) = multi_host(what, TargetSessionAttrs::Any).await else {
        return;
    };
    println!(
        "{what}: {} dials, {} key clears over the switchover",
        counters.dials, counters.key_clears
    );
    assert!(
        counters.dials <= 3 * WRITERS as u64,
        "{} dials: a reconnect storm",
        counters.dials
    );
}

fn addr(server: &PgServer) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.config().get_ports()[0]))
}

/// The writers' pool for the address `at`.
async fn pool_behind(at: SocketAddr) -> Pool<Single<PostgresManager>> {
    Pool::builder(PostgresManager::new(pg::through(at, APP)).single())
        .build()
        .await
        .unwrap()
}

/// A switchover behind one address that moves to the new primary `after`
/// the promotion; the old primary as `demoted` says. Returns the key
/// clears before the move.
async fn behind_a_moving_address(what: &str, demoted: Demoted, after: Duration) -> Option<u64> {
    let (primary, standby) = primary_and_standby().await?;
    let proxy = Movable::start(addr(&primary)).await.unwrap();
    let pool = pool_behind(proxy.addr).await;
    let load = Load::start(&pool);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let left_up = matches!(demoted, Demoted::StartedAsStandby);
    switch_over(&primary, &standby, demoted).await;
    tokio::time::sleep(after).await;
    let before_the_move = pool.state().counters.key_clears;
    proxy.move_to(addr(&standby));
    let moved = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let clears = pool.state().counters.key_clears;
    let demoted = left_up.then_some(&*primary);
    check(what, load.stop().await, moved, &standby, demoted, clears).await;
    pool.close().await;
    Some(before_the_move)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_moves_follows_the_primary() {
    behind_a_moving_address("moved address", Demoted::LeftDown, Duration::ZERO).await;
}

/// The address still names the old primary, up read-only, for a second:
/// its first refused write (25006) clears the key and marks the address
/// read-only; the dials after it fail (no host takes writes) instead of
/// handing out sessions that would be refused and clear the key again,
/// and the key's probes find the new primary once the address moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_left_on_the_demoted_primary_is_left_at_its_first_write() {
    let what = "moved address, old primary up read-only";
    let Some(read_only_clears) =
        behind_a_moving_address(what, Demoted::StartedAsStandby, Duration::from_secs(1)).await
    else {
        return;
    };
    assert!(
        read_only_clears >= 1,
        "{read_only_clears} clears while read-only: the demotion went unseen"
    );
}
