//! Destinations: names resolved, malformed strings refused before any
//! lookup, and `Destination` as a key.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use connpool::managers::tcp::{Destination, TcpManager};
use connpool::{ConnectError, Error, Pool};

use crate::support::echo::EchoServer;

use super::round_trip;

// (6) "localhost:port" resolves; malformed destinations fail the get with
// `Error::Connect` carrying an `InvalidInput` io error that names the string
// and what is wrong with it. No DNS traffic: each is refused before any
// lookup.
#[tokio::test]
async fn destination_resolution() {
    let server = EchoServer::start().await;
    let port = server.addr.port();
    let pool = Pool::builder(TcpManager::new())
        .connect_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();

    let localhost = Destination::from(format!("localhost:{port}"));
    assert_eq!(localhost.socket_addr(), None);
    let mut conn = pool.get_for(&localhost).await.unwrap();
    assert!(conn.peer_addr().ip().is_loopback());
    assert_eq!(conn.peer_addr().port(), port);
    round_trip(&mut conn, b"by name\n").await;
    drop(conn);

    let long_label = "a".repeat(70);
    let bad = [
        (format!("{long_label}.invalid:{port}"), "63"),
        ("localhost:notaport".to_string(), "not a number"),
        ("localhost".to_string(), "no port"),
        ("localhost:".to_string(), "no port"),
        ("[::1".to_string(), "unclosed '['"),
        ("[::1]".to_string(), "no port"),
        ("[nope]:80".to_string(), "not an IPv6 address"),
        (":80".to_string(), "no host"),
        (" 127.0.0.1:80".to_string(), "' '"),
        ("host:99999".to_string(), "out of range"),
        ("::1:80".to_string(), "brackets"),
        ("a..b:80".to_string(), "empty label"),
    ];
    for (name, what) in bad {
        let dest = Destination::from(name.as_str());
        match pool.get_for(&dest).await {
            Err(Error::Connect(ConnectError::Manager(e))) => {
                assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{name}: {e}");
                let msg = e.to_string();
                assert!(msg.contains(&format!("{name:?}")), "{name}: {msg}");
                assert!(msg.contains(what), "{name}: {msg} should say {what:?}");
            }
            other => panic!("{name}: {:?}", other.map(|_| ())),
        }
    }

    // Resolved but nobody listens: the connect error, with the address tried.
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dest = Destination::from(("127.0.0.1", closed_port));
    match pool.get_for(&dest).await {
        Err(Error::Connect(ConnectError::Manager(e))) => {
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("connecting to 127.0.0.1:{closed_port}:")),
                "{msg}"
            );
            assert_eq!(
                msg.matches(&format!("127.0.0.1:{closed_port}")).count(),
                1,
                "an address is said once: {msg}"
            );
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    pool.close().await;
}

#[test]
fn destination_keys() {
    use std::collections::HashSet;
    let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let v6: SocketAddr = "[::1]:80".parse().unwrap();
    assert_eq!(Destination::from("127.0.0.1:80"), Destination::from(addr));
    assert_eq!(
        Destination::from(String::from("[::1]:80")),
        Destination::from(v6)
    );
    assert_eq!(Destination::from(("::1", 80)), Destination::from(v6));
    assert_eq!(Destination::from(("[::1]", 80)), Destination::from(v6));
    assert_eq!(Destination::from((addr.ip(), 80)), Destination::from(addr));
    assert_eq!(
        Destination::from(("db", 5432)),
        Destination::from("db:5432")
    );
    assert_ne!(Destination::from("db:5432"), Destination::from("db:5433"));
    assert_eq!(Destination::from(addr).socket_addr(), Some(addr));
    assert_eq!(Destination::from("db:5432").to_string(), "db:5432");
    assert_eq!(Destination::from(v6).to_string(), "[::1]:80");
    assert_eq!(
        format!("{:?}", Destination::from("db:5432")),
        "Destination(db:5432)"
    );
    let set: HashSet<Destination> = ["db:1", "db:1", "127.0.0.1:80"]
        .into_iter()
        .map(Destination::from)
        .chain([Destination::from(addr)])
        .collect();
    assert_eq!(set.len(), 2);
}
