//! A TCP proxy whose upstream can move, as a VIP or a DNS name moves in a
//! failover: [`Movable`]. For the failover tests and example.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A TCP proxy whose upstream can move: new connections go to the
/// current upstream, open ones stay where they are.
pub struct Movable {
    /// Where clients connect.
    pub addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    tasks: JoinSet<()>,
}

impl Movable {
    /// Listens on a free port of 127.0.0.1, forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Movable, BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let upstream = Arc::new(Mutex::new(upstream));
        let mut tasks = JoinSet::new();
        let to = Arc::clone(&upstream);
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((mut down, _)) = listener.accept().await {
                let target = *to.lock();
                conns.spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
            }
        });
        // One line or several: the tests' and the examples' rustfmt settings differ.
        #[rustfmt::skip]
        let movable = Movable { addr, upstream, tasks };
        Ok(movable)
    }

    /// New connections go to `upstream` from now on.
    pub fn move_to(&self, upstream: SocketAddr) {
        *self.upstream.lock() = upstream;
    }
}

impl Drop for Movable {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}
