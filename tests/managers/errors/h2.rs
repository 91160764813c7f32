//! The HTTP/2 and gRPC managers' errors, for a refused dial and for a
//! server that answers in HTTP/1.1 and hangs up.

use connpool::managers::Origin;
use connpool::managers::http::HttpManager;
use connpool::{Error, Manager, Pool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::tcp::closed_port;
use super::*;

/// A server that answers every connection in HTTP/1.1 and closes it.
async fn http1_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")
                .await;
        }
    });
    port
}

async fn dial_errors<M>(manager: M) -> Vec<Error<M::Error>>
where
    M: Manager<Key = Origin>,
{
    let pool = Pool::builder(manager).no_backoff().build().await.unwrap();
    let mut errors = Vec::new();
    for port in [closed_port(), http1_server().await] {
        let dest = Origin::from(format!("127.0.0.1:{port}"));
        errors.push(pool.get_for(&dest).await.map(drop).unwrap_err());
    }
    pool.close().await;
    errors
}

#[tokio::test]
async fn http2_dial_errors_read_well() {
    let errors = dial_errors(HttpManager::http2()).await;
    reads_well(&errors[0], Some("refused"));
    reads_well(&errors[1], None);
    for e in &errors {
        no_repetition(e.manager_error().unwrap());
    }
}

#[cfg(feature = "grpc")]
#[tokio::test]
async fn grpc_dial_errors_read_well() {
    let errors = dial_errors(connpool::managers::grpc::GrpcManager::new()).await;
    reads_well(&errors[0], Some("refused"));
    reads_well(&errors[1], None);
    for e in &errors {
        no_repetition(e.manager_error().unwrap());
    }
}
