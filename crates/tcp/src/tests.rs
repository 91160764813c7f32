//! The guard's own I/O (`AsyncRead` / `AsyncWrite` on `Pooled`, from connpool-core) against an
//! in-process echo server on 127.0.0.1. Every wait is bounded, so an impl
//! that loses or invents bytes fails instead of hanging.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;

use super::{Destination, TcpManager};
use connpool_core::{Pool, Pooled};

const BOUND: Duration = Duration::from_secs(5);

/// An echo server: each connection gets back what it sends, and is closed
/// once the client has shut down its sending side.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut from, mut to) = socket.split();
                let _ = tokio::io::copy(&mut from, &mut to).await;
            });
        }
    });
    addr
}

/// Compiles only for a type that is itself a reader and writer: the guard
/// here, not the connection behind its `Deref`.
fn is_io<T: AsyncRead + AsyncWrite + Unpin>(_: &T) {}

/// Reads exactly `expected.len()` bytes through the guard and checks them.
async fn read_back(conn: &mut Pooled<'_, TcpManager>, expected: &[u8]) {
    let mut back = vec![0; expected.len()];
    timeout(BOUND, AsyncReadExt::read_exact(conn, &mut back))
        .await
        .expect("the echo within 5 s")
        .unwrap();
    assert_eq!(back, expected);
}

#[tokio::test]
async fn the_guard_reads_and_writes_its_connection() {
    let addr = echo_server().await;
    let pool = Pool::builder(TcpManager::new()).build().await.unwrap();
    let dest = Destination::from(addr);
    let mut conn = pool.get_for(&dest).await.unwrap();
    is_io(&conn);

    // write_all and read_exact, through the guard's own impls.
    let msg = b"written through the guard";
    AsyncWriteExt::write_all(&mut conn, msg).await.unwrap();
    AsyncWriteExt::flush(&mut conn).await.unwrap();
    read_back(&mut conn, msg).await;

    // A vectored write: what it says it wrote is what comes back.
    assert_eq!(
        AsyncWrite::is_write_vectored(&conn),
        conn.stream().is_write_vectored()
    );
    let halves = [IoSlice::new(b"two "), IoSlice::new(b"halves")];
    let n = AsyncWriteExt::write_vectored(&mut conn, &halves)
        .await
        .unwrap();
    assert!(n > 0);
    read_back(&mut conn, &b"two halves"[..n]).await;

    // Generic code takes the guard as reader and writer.
    tokio::io::copy(&mut &b"copied"[..], &mut conn)
        .await
        .unwrap();
    let mut copied = Vec::new();
    timeout(
        BOUND,
        tokio::io::copy(&mut (&mut conn).take(6), &mut copied),
    )
    .await
    .expect("the echo within 5 s")
    .unwrap();
    assert_eq!(copied, b"copied");

    // The same connection, back from the pool, has nothing left over.
    let port = conn.stream().local_addr().unwrap().port();
    drop(conn);
    let mut conn = pool.get_for(&dest).await.unwrap();
    assert_eq!(conn.stream().local_addr().unwrap().port(), port, "reused");
    AsyncWriteExt::write_all(&mut conn, b"again").await.unwrap();
    read_back(&mut conn, b"again").await;

    // Shutting down through the guard ends the stream: the server echoes
    // the last bytes and closes.
    AsyncWriteExt::write_all(&mut conn, b"last").await.unwrap();
    AsyncWriteExt::shutdown(&mut conn).await.unwrap();
    let mut rest = Vec::new();
    timeout(BOUND, AsyncReadExt::read_to_end(&mut conn, &mut rest))
        .await
        .expect("the server's close within 5 s")
        .unwrap();
    assert_eq!(rest, b"last");

    drop(conn);
    pool.close().await;
}
