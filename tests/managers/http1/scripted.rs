//! Scripted HTTP/1.1 servers on 127.0.0.1: raw HTTP/1.1 written by hand,
//! so each test says exactly what the server does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What a scripted server does with the `req`-th request (from 0) on its
/// `conn`-th connection (from 0).
#[derive(Clone)]
pub(crate) enum Reply {
    /// Writes this response and keeps the connection.
    Send(String),
    /// Writes this response, then closes (without saying so).
    SendAndClose(String),
    /// Reads the request, then closes without a byte of response.
    Drop,
    /// Reads the request, then neither answers nor closes: a frozen server.
    Hang,
}

/// A 200 response with `headers` (each ending in `\r\n`) and `body`.
pub(crate) fn ok(headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n{headers}\r\n{body}",
        body.len()
    )
}

pub(crate) struct Scripted {
    pub(crate) addr: std::net::SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    pub(crate) async fn start(script: fn(usize, usize) -> Reply) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let conn = count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, conn, script));
            }
        });
        Scripted { addr, accepted, task }
    }

    pub(crate) fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn serve(stream: TcpStream, conn: usize, script: fn(usize, usize) -> Reply) {
    let mut stream = BufReader::new(stream);
    for req in 0.. {
        // The request head, then its body by content-length.
        let mut length = 0;
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        match script(conn, req) {
            Reply::Send(r) => {
                if stream.get_mut().write_all(r.as_bytes()).await.is_err() {
                    return;
                }
            }
            Reply::SendAndClose(r) => {
                let _ = stream.get_mut().write_all(r.as_bytes()).await;
                return;
            }
            Reply::Drop => return,
            Reply::Hang => std::future::pending().await,
        }
    }
}
