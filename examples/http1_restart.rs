//! An nginx killed (`SIGKILL`) under load and started again on its port a
//! second later (or, with `--fault freeze`, frozen with `SIGSTOP` and
//! thawed a second later), as each HTTP/1.1 client lives it, all at the
//! same instant: connpool (`HttpService` over `HttpManager`, its
//! defaults), hyper-util's legacy `Client` (an `HttpConnector`, its
//! defaults) and reqwest (a `Client`, its defaults). Each client has a
//! throwaway nginx of its own behind a proxy of its own that counts the
//! connections it is asked for (the attempts, those refused while the
//! server is down included); the servers are killed (frozen) together and
//! started (thawed) together.
//!
//! Each client runs 8 tasks in a loop: a `GET /`, its body read to the
//! end, under a 1 s deadline (`tokio::time::timeout`, which every client
//! honours alike), and 10 ms of pause after a failure (a client that
//! retries, not one that spins). Prints, per client: the requests in
//! flight at the fault, the requests that failed while the server was
//! down and after it was back, the time from its return to the first
//! success, the longest request (against the deadline), and the
//! connections asked for from the fault to the end.
//!
//! ```text
//! cargo run --release --features http --example http1_restart
//! cargo run --release --features http --example http1_restart -- --fault freeze
//! cargo run --release --features http --example http1_restart -- --quick
//! ```

#[path = "support/nginx_server.rs"]
mod nginx_support;
#[path = "support/restart_load.rs"]
mod restart_load;

use std::sync::Arc;

use bytes::Bytes;
use connpool::Pool;
use connpool::managers::http::HttpManager;
use connpool::managers::service::HttpService;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use nginx_support::Nginx;
use restart_load::{BoxError, Proxy, Request, Server};
use tower::{Service, ServiceExt};

impl Server for Nginx {
    fn kill(&mut self) {
        Nginx::kill(self);
    }
    fn start(&mut self) {
        Nginx::restart(self);
    }
    fn signal(&self, signal: &str) {
        Nginx::signal(self, signal);
    }
}

fn get(uri: &str) -> Result<http::Request<Full<Bytes>>, BoxError> {
    Ok(http::Request::get(uri).body(Full::new(Bytes::new()))?)
}

fn main() -> Result<(), BoxError> {
    restart_load::main(|args, ns| async move {
        // reqwest without a TLS provider of its own: the crate's (ring).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let names = [
            "connpool HttpService",
            "hyper-util legacy Client",
            "reqwest",
        ];
        let mut servers = Vec::new();
        let mut proxies = Vec::new();
        for _ in names {
            // nginx's default keep-alive (75 s), and no limit on a
            // connection's requests (nginx closes one after 1,000 by
            // default): every connection asked for is the fault's.
            let server =
                tokio::task::spawn_blocking(|| Nginx::start("keepalive_requests 1000000000;"))
                    .await?
                    .ok_or("nginx is missing (`apt-get install nginx`)")?;
            proxies.push(Proxy::start(server.addr).await?);
            servers.push(server);
        }
        let uri = |i: usize| format!("http://{}/", proxies[i].addr);

        let pool = Pool::builder(HttpManager::http1()).build().await?;
        let service = HttpService::new(pool, proxies[0].addr);
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let hyper = HyperClient::builder(TokioExecutor::new()).build(connector);
        let reqwest = reqwest::Client::builder().build()?;
        let (uri1, uri2) = (uri(1), uri(2));
        let requests: Vec<Request> = vec![
            Arc::new(move || {
                let mut service = service.clone();
                Box::pin(async move {
                    let response = service.ready().await?.call(get("/")?).await?;
                    response.into_body().collect().await?;
                    Ok(())
                })
            }),
            Arc::new(move || {
                let (client, request) = (hyper.clone(), get(&uri1));
                Box::pin(async move {
                    let response = client.request(request?).await?;
                    response.into_body().collect().await?;
                    Ok(())
                })
            }),
            Arc::new(move || {
                let sent = reqwest.get(&uri2).send();
                Box::pin(async move {
                    sent.await?.error_for_status()?.bytes().await?;
                    Ok(())
                })
            }),
        ];

        restart_load::run(
            &args,
            ns,
            "HTTP/1.1 on nginx, a GET",
            &names,
            servers,
            &proxies,
            requests,
        )
        .await
    })
}
