//! `health` at checkout and on return: a peer that closed or reset an
//! idle connection, and bytes nobody asked for.

use connpool::managers::tcp::TcpManager;
use connpool::{Manager, Pool};
use tokio::io::AsyncReadExt;
use tokio::time::timeout;

use crate::support::BOUND;

use super::{arrived, echo_server, local_port, round_trip, watcher};

// (1) A peer that closed (FIN) or reset (RST) an idle connection: `health`
// sees it at checkout, the connection is never lent, the pool dials anew.
#[tokio::test]
async fn closed_or_reset_idle_connection_is_never_lent() {
    for reset in [false, true] {
        let (server, dest) = echo_server().await;
        let pool = Pool::builder(TcpManager::new())
            .health_check(None) // health alone
            .build()
            .await
            .unwrap();

        let mut conn = pool.get_for(&dest).await.unwrap();
        round_trip(&mut conn, b"hello\n").await;
        let old = local_port(&conn);
        let watch = watcher(&conn);
        drop(conn);
        assert_eq!(pool.state().idle, 1);

        if reset {
            server.reset_all();
        } else {
            server.close_all();
        }
        arrived(watch).await;

        let mut conn = pool.get_for(&dest).await.unwrap();
        assert_ne!(
            local_port(&conn),
            old,
            "reset={reset}: the dead one was lent"
        );
        round_trip(&mut conn, b"fresh\n").await;
        let counters = pool.state().counters;
        assert_eq!(counters.closed_broken, 1, "reset={reset}");
        assert_eq!(counters.dials, 2);
        assert_eq!(server.accepted(), 2);

        // And on return: the peer closes a lent connection; it is not kept.
        let watch = watcher(&conn);
        if reset {
            server.reset_all();
        } else {
            server.close_all();
        }
        arrived(watch).await;
        assert!(pool.manager().health(&mut conn).is_broken());
        drop(conn);
        let state = pool.state();
        assert_eq!(state.idle, 0);
        assert_eq!(state.counters.closed_broken, 2);
        pool.close().await;
    }
}

// (1b) Bytes nobody asked for on an idle connection (a late reply): the
// stream is out of step, so it is not lent; with `unread_data_is_broken(false)`
// it is, and the borrower reads them.
#[tokio::test]
async fn unsolicited_bytes_on_an_idle_connection() {
    for strict in [true, false] {
        let (server, dest) = echo_server().await;
        let manager = TcpManager::new().unread_data_is_broken(strict);
        let pool = Pool::builder(manager)
            .health_check(None)
            .build()
            .await
            .unwrap();
        let mut conn = pool.get_for(&dest).await.unwrap();
        round_trip(&mut conn, b"hello\n").await;
        let old = local_port(&conn);
        let watch = watcher(&conn);
        drop(conn);
        server.send_all(b"late reply\n");
        arrived(watch).await;

        let mut conn = pool.get_for(&dest).await.unwrap();
        if strict {
            assert_ne!(local_port(&conn), old);
            assert_eq!(pool.state().counters.closed_broken, 1);
        } else {
            assert_eq!(local_port(&conn), old);
            let mut late = [0; 11];
            timeout(BOUND, conn.read_exact(&mut late))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&late, b"late reply\n");
        }
        round_trip(&mut conn, b"next\n").await;
        drop(conn);
        pool.close().await;
    }
}
