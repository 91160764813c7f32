//! The TCP manager's errors: a refused connection, by address and by name,
//! and malformed destinations.

use std::io;

use connpool::managers::tcp::{Destination, TcpManager};
use connpool::{Error, Pool};

use super::*;

pub(super) fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Connection refused: the address once, the io error's message once,
/// and the io error's kind kept.
#[tokio::test]
async fn refused_by_address_and_by_name() {
    let pool = Pool::builder(TcpManager::new())
        .no_backoff()
        .build()
        .await
        .unwrap();
    let port = closed_port();

    let e = pool
        .get_for(&Destination::from(("127.0.0.1", port)))
        .await
        .unwrap_err();
    let shown = reads_well(&e, Some("Connection refused"));
    let addr = format!("127.0.0.1:{port}");
    assert!(
        shown.starts_with(&format!("connect failed: connecting to {addr}: ")),
        "{shown}"
    );
    assert_eq!(shown.matches(&addr).count(), 1, "{shown}");
    let io = e.manager_error().unwrap();
    assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
    reads_well(io, Some("Connection refused"));

    // Backing off: the address once (the dial error names it).
    let backing_off = Pool::builder(TcpManager::new()).build().await.unwrap();
    let dest = Destination::from(("127.0.0.1", port));
    let _ = backing_off.get_for(&dest).await.unwrap_err();
    let e = backing_off.get_for(&dest).await.unwrap_err();
    let Error::Backoff { key: Some(name), .. } = &e else {
        panic!("expected a backoff naming the key, got {e:?}")
    };
    assert_eq!(&**name, addr, "the key's Display");
    let shown = reads_well(&e, Some("Connection refused"));
    assert!(shown.starts_with("dials are backing off for "), "{shown}");
    assert!(
        shown.contains(&format!("after: connect failed: connecting to {addr}: ")),
        "{shown}"
    );
    assert_eq!(shown.matches(&addr).count(), 1, "{shown}");
    backing_off.close().await;

    // A name: the name, then the address it resolved to.
    let dest = Destination::from(format!("localhost:{port}"));
    let e = pool.get_for(&dest).await.unwrap_err();
    let shown = reads_well(&e, Some("refused"));
    assert!(
        shown.contains(&format!("connecting to localhost:{port} (")),
        "{shown}"
    );
    pool.close().await;
}

/// A malformed destination: `InvalidInput`, naming the string and what
/// is wrong, in one message.
#[tokio::test]
async fn malformed_destinations() {
    let pool = Pool::builder(TcpManager::new())
        .no_backoff()
        .build()
        .await
        .unwrap();
    for (s, what) in [
        ("[::1", "unclosed '['"),
        (":80", "no host"),
        (" 127.0.0.1:80", "' '"),
        ("host", "no port"),
        ("host:99999", "out of range"),
    ] {
        let e = pool.get_for(&Destination::from(s)).await.unwrap_err();
        let shown = reads_well(&e, Some(what));
        assert!(
            shown.contains(&format!("invalid destination {s:?}")),
            "{shown}"
        );
        let io = e.manager_error().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::InvalidInput, "{s}: {io}");
    }
    pool.close().await;
}
