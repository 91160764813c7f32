//! The pool's keepalive with the app-level ping: a black-holed peer declared
//! dead in time, and a timed-out ping that closes the connection at once.

use std::time::{Duration, Instant};

use connpool::Pool;
use connpool::managers::tcp::Destination;

use crate::support::echo::EchoServer;
use crate::support::fault::FaultProxy;
use crate::support::until;

use super::{echo_server, pinging, round_trip};

// (4) A half-open peer (a black hole: no reply, no FIN, no RST) is declared
// dead by the pool's background keepalive with the app-level ping, within
// keepalive_interval + ping_timeout of going idle.
#[tokio::test]
async fn keepalive_declares_a_blackholed_peer_dead() {
    const INTERVAL: Duration = Duration::from_millis(200);
    const TIMEOUT: Duration = Duration::from_millis(200);
    let server = EchoServer::start().await;
    let proxy = FaultProxy::start(server.addr).await;
    let dest = Destination::from(proxy.addr);
    let pool = Pool::builder(pinging())
        .keepalive_interval(INTERVAL)
        .ping_timeout(TIMEOUT)
        .jitter(0.0)
        .build()
        .await
        .unwrap();
    let mut conn = pool.get_for(&dest).await.unwrap();
    round_trip(&mut conn, b"through the proxy\n").await;
    proxy.blackhole();

    let idle_since = Instant::now();
    drop(conn);
    until("declared dead", || {
        pool.state().counters.closed_keepalive > 0
    })
    .await;
    let elapsed = idle_since.elapsed();
    println!(
        "blackholed peer declared dead {elapsed:?} after going idle \
         (keepalive_interval {INTERVAL:?} + ping_timeout {TIMEOUT:?})"
    );
    assert!(
        elapsed >= INTERVAL + TIMEOUT,
        "{elapsed:?}: before the ping could time out"
    );
    // A second keepalive round would end at 2 × (interval + timeout): the
    // bound fails an implementation that needed it, not a slow machine.
    assert!(elapsed < 2 * (INTERVAL + TIMEOUT), "{elapsed:?}: late");
    let state = pool.state();
    assert_eq!(state.open, 0);
    assert_eq!(state.counters.keepalive_pings, 1);
    assert_eq!(state.counters.keepalive_failures, 1);
    // The proxy never let the ping through.
    assert_eq!(server.pings(), 0);
    pool.close().await;
}

// (4b) The abandoned-ping contract in keepalive: with keepalive_max_missed(3)
// a ping that timed out is *not* just a miss: its reply may still come, so
// `health` says so and the connection is closed after the first one.
#[tokio::test]
async fn a_timed_out_keepalive_ping_closes_even_below_max_missed() {
    let (server, dest) = echo_server().await;
    let pool = Pool::builder(pinging())
        .keepalive_interval(Duration::from_millis(100))
        .ping_timeout(Duration::from_millis(100))
        .keepalive_max_missed(3)
        .jitter(0.0)
        .build()
        .await
        .unwrap();
    let mut conn = pool.get_for(&dest).await.unwrap();
    round_trip(&mut conn, b"hi\n").await;
    server.hold_all();
    drop(conn);
    server.next_held_ping().await;
    until("closed", || pool.state().counters.closed_keepalive > 0).await;
    let counters = pool.state().counters;
    assert_eq!(counters.keepalive_pings, 1, "one missed ping was enough");
    assert_eq!(server.pings(), 1);
    server.release_all();
    let mut conn = pool.get_for(&dest).await.unwrap();
    round_trip(&mut conn, b"no stale pong\n").await;
    assert_eq!(server.accepted(), 2);
    drop(conn);
    pool.close().await;
}
