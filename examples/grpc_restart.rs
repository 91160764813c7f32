//! A gRPC server killed (`SIGKILL`) under load and started again on its
//! port a second later (or, with `--fault freeze`, frozen with `SIGSTOP`
//! and thawed a second later), as each client lives it, all at the same
//! instant: connpool (`HttpService` over `GrpcManager`, its defaults) and
//! one tonic `Channel` (HTTP/2 keepalive every 10 s, a 10 s PING timeout,
//! while idle too). The servers are tonic servers with the standard health
//! service, each a process of its own (this example run again with
//! `--serve PORT`), so a signal reaches them as it reaches any server;
//! each client has its own behind a proxy of its own that counts the
//! connections it is asked for.
//!
//! Each client runs 8 tasks in a loop: a unary `grpc.health.v1` `Check`
//! under a 1 s deadline, given to the call (`grpc-timeout`) and enforced
//! alike for every client (`tokio::time::timeout`), and 10 ms of pause
//! after a failure. Prints the same
//! table as the other restart examples.
//!
//! ```text
//! cargo run --release --features grpc --example grpc_restart
//! cargo run --release --features grpc --example grpc_restart -- --fault freeze
//! cargo run --release --features grpc --example grpc_restart -- --quick
//! ```

#[path = "support/restart_load.rs"]
mod restart_load;

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connpool::Pool;
use connpool::managers::grpc::GrpcManager;
use connpool::managers::service::HttpService;
use restart_load::{BoxError, Proxy, Request, Server};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A tonic health server in a process of its own, on a fixed port.
struct GrpcServer {
    port: u16,
    child: Option<Child>,
}

impl GrpcServer {
    fn new() -> Result<GrpcServer, BoxError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut server = GrpcServer { port, child: None };
        server.start();
        Ok(server)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Server for GrpcServer {
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn start(&mut self) {
        assert!(self.child.is_none(), "the server runs");
        let exe = std::env::current_exe().expect("this example's path");
        let child = Command::new(exe)
            .args(["--serve", &self.port.to_string()])
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the server");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(self.addr()).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "server not up");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server runs").id();
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        // `SIGKILL` ends a stopped process too.
        self.kill();
    }
}

/// The server process: the health service (everything `SERVING`) on
/// `port`, until killed.
async fn serve(port: u16) -> Result<(), BoxError> {
    let (_reporter, health) = tonic_health::server::health_reporter();
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health)
        .serve(SocketAddr::from(([127, 0, 0, 1], port)))
        .await?;
    Ok(())
}

async fn check<T>(client: &mut HealthClient<T>) -> Result<(), BoxError>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<BoxError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<BoxError> + Send,
{
    let mut request = tonic::Request::new(HealthCheckRequest::default());
    request.set_timeout(restart_load::DEADLINE);
    client.check(request).await?;
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let argv: Vec<String> = std::env::args().collect();
    if let [_, flag, port] = &argv[..]
        && flag == "--serve"
    {
        let port = port.parse()?;
        return tokio::runtime::Runtime::new()?.block_on(serve(port));
    }
    restart_load::main(|args, ns| async move {
        let names = ["connpool HttpService", "tonic Channel (keepalive 10 s)"];
        let mut servers = Vec::new();
        let mut proxies = Vec::new();
        for _ in names {
            let server = tokio::task::spawn_blocking(GrpcServer::new).await??;
            proxies.push(Proxy::start(server.addr()).await?);
            servers.push(server);
        }

        let pool = Pool::builder(GrpcManager::new()).build().await?;
        let pooled = HealthClient::new(HttpService::new(pool, proxies[0].addr));
        let channel: Channel = Endpoint::from_shared(format!("http://{}", proxies[1].addr))?
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true)
            .connect_lazy();
        let tonic = HealthClient::new(channel);
        let requests: Vec<Request> = vec![
            Arc::new(move || {
                let mut client = pooled.clone();
                Box::pin(async move { check(&mut client).await })
            }),
            Arc::new(move || {
                let mut client = tonic.clone();
                Box::pin(async move { check(&mut client).await })
            }),
        ];
        restart_load::run(
            &args,
            ns,
            "gRPC, a health Check",
            &names,
            servers,
            &proxies,
            requests,
        )
        .await
    })
}
