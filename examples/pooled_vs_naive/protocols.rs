//! The rows of `pooled_vs_naive`: each protocol's server, its naive and its
//! pooled client.

use super::*;

pub(super) async fn tcp(tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let (addr, accepted) = support::echo_server().await?;

    let before = accepted.get();
    let mut naive = drive(
        "TCP echo, naive",
        tasks,
        requests,
        show,
        move || async move {
            let mut stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            support::echo_round_trip(&mut stream).await?;
            Ok(())
        },
    )
    .await;
    naive.connections = (accepted.get() - before) as u64;

    let pool = Pool::builder(TcpManager::new()).build().await?;
    let dest = Destination::from(addr);
    let mut pooled = drive("TCP echo, pooled", tasks, requests, show, {
        let pool = pool.clone();
        move || {
            let (pool, dest) = (pool.clone(), dest.clone());
            async move {
                let mut conn = pool.get_for(&dest).await?;
                support::echo_round_trip(&mut conn).await?;
                Ok(())
            }
        }
    })
    .await;
    pooled.connections = pool.state().counters.dials;
    pool.close().await;
    Ok(Row {
        proto: Proto::Tcp,
        naive,
        pooled,
    })
}

pub(super) async fn postgres(tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let server = tokio::task::spawn_blocking(support::postgres).await??;
    let mut config = server.config();
    config.application_name("connpool-pooled-vs-naive");
    println!("PostgreSQL: {}", server.describe());
    // A server that is there but refuses us is a skip too, not 2 × N failures.
    let probe = tokio::time::timeout(Duration::from_secs(10), config.connect(NoTls)).await;
    match probe {
        Ok(Ok((client, connection))) => {
            let io = tokio::spawn(connection);
            drop(client);
            let _ = io.await;
        }
        Ok(Err(e)) => return Err(format!("cannot connect to {}: {e}", server.describe()).into()),
        Err(_) => return Err(format!("{} did not answer in 10 s", server.describe()).into()),
    }

    let shared = Arc::new(config.clone());
    let naive = drive("PostgreSQL, naive", tasks, requests, show, move || {
        let config = Arc::clone(&shared);
        async move {
            let (client, connection) = config.connect(NoTls).await?;
            let io = tokio::spawn(connection);
            support::select_1(&client).await?;
            drop(client); // sends Terminate; the I/O task then ends
            let _ = io.await;
            Ok(())
        }
    })
    .await;
    let naive = Measured {
        connections: naive.requests,
        ..naive
    };

    let pool = Pool::builder(PostgresManager::new(config).single())
        .build()
        .await?;
    let mut pooled = drive("PostgreSQL, pooled", tasks, requests, show, {
        let pool = pool.clone();
        move || {
            let pool = pool.clone();
            async move {
                let conn = pool.get().await?;
                support::select_1(&conn).await?;
                Ok(())
            }
        }
    })
    .await;
    pooled.connections = pool.state().counters.dials;
    pool.close().await;
    tokio::task::spawn_blocking(move || drop(server)).await?; // stops a throwaway server
    Ok(Row {
        proto: Proto::Pg,
        naive,
        pooled,
    })
}

pub(super) async fn grpc(tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let (addr, accepted) = support::grpc_server(None).await?;

    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?;
    let before = accepted.get();
    let mut naive = drive("gRPC, naive", tasks, requests, show, move || {
        let endpoint = endpoint.clone();
        async move {
            let channel = endpoint.connect().await?;
            support::health_check(channel).await
        }
    })
    .await;
    naive.connections = (accepted.get() - before) as u64;

    let pool = Pool::builder(GrpcManager::new()).build().await?;
    let dest = Origin::from(addr);
    let mut pooled = drive("gRPC, pooled", tasks, requests, show, {
        let pool = pool.clone();
        move || {
            let (pool, dest) = (pool.clone(), dest.clone());
            async move {
                let conn = pool.get_for(&dest).await?;
                support::health_check((*conn).clone()).await
            }
        }
    })
    .await;
    pooled.connections = pool.state().counters.dials;
    pool.close().await;

    // The ceiling for pooled: no pool, one tonic Channel made before the run
    // and shared by every task. Pooled near it means the pool adds nothing
    // that matters; what is left is the cost of a call in tonic and h2.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let shared = drive("gRPC, one channel", tasks, requests, show, move || {
        let channel = channel.clone();
        async move { support::health_check(channel).await }
    })
    .await;
    println!(
        "gRPC without a pool (one tonic Channel shared by all {tasks} tasks): {} calls/s, p99 {}; pooled is {:.2}× that",
        rate(shared.rate()),
        latency(shared.quantile(0.99)),
        pooled.rate() / shared.rate()
    );
    if shared.errors > 0 {
        let first = shared.first_error.as_deref().unwrap_or("?");
        println!("  {} of those calls failed, first: {first}", shared.errors);
    }
    Ok(Row {
        proto: Proto::Grpc,
        naive,
        pooled,
    })
}

pub(super) async fn redis_get(tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let server = tokio::task::spawn_blocking(support::redis_support::RedisServer::new)
        .await?
        .ok_or("redis-server is missing (`apt-get install redis-server`)")?;
    let mut setup = server.observer().await;
    redis::cmd("SET")
        .arg("k")
        .arg([b'x'; 64].as_slice())
        .exec_async(&mut setup)
        .await?;
    let manager: RedisManager = server.url("").parse()?;
    let key = manager.key();
    let (naive, pooled) = naive_and_pooled(
        ("Redis, naive", "Redis, pooled"),
        manager,
        key,
        (tasks, requests, show),
        |conn: &mut RedisConn| {
            Box::pin(async move {
                let value: Vec<u8> = redis::cmd("GET").arg("k").query_async(conn).await?;
                assert_eq!(value.len(), 64);
                Ok(())
            })
        },
    )
    .await?;
    tokio::task::spawn_blocking(move || drop(server)).await?;
    Ok(Row {
        proto: Proto::Redis,
        naive,
        pooled,
    })
}

pub(super) async fn tcp_tls(
    pki: &tls::Pki,
    tasks: u32,
    requests: u64,
    show: bool,
) -> Result<Row, BoxError> {
    let (addr, _) = pki.echo_server().await?;
    let manager = TcpManager::new().tls(TlsConfig::from_client_config(pki.client()));
    let (naive, pooled) = naive_and_pooled(
        ("TLS TCP, naive", "TLS TCP, pooled"),
        manager,
        Destination::from(("localhost", addr.port())),
        (tasks, requests, show),
        |conn: &mut TcpConn| Box::pin(async move { Ok(support::echo_round_trip(conn).await?) }),
    )
    .await?;
    Ok(Row {
        proto: Proto::TcpTls,
        naive,
        pooled,
    })
}

pub(super) async fn ws(tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let (addr, _) = support::ws::ws_server(None).await?;
    let (naive, pooled) = naive_and_pooled(
        ("WebSocket, naive", "WebSocket, pooled"),
        WsManager::new(),
        WsUrl::parse(&format!("ws://{addr}/"))?,
        (tasks, requests, show),
        |conn: &mut WsConn| Box::pin(support::ws::ws_round_trip(conn)),
    )
    .await?;
    Ok(Row {
        proto: Proto::Ws,
        naive,
        pooled,
    })
}

pub(super) async fn wss(
    pki: &tls::Pki,
    tasks: u32,
    requests: u64,
    show: bool,
) -> Result<Row, BoxError> {
    let (addr, _) = support::ws::ws_server(Some(pki.acceptor(&[])?)).await?;
    let (naive, pooled) = naive_and_pooled(
        ("TLS WebSocket, naive", "TLS WebSocket, pooled"),
        WsManager::new().tls(TlsConfig::from_client_config(pki.client())),
        WsUrl::parse(&format!("wss://localhost:{}/", addr.port()))?,
        (tasks, requests, show),
        |conn: &mut WsConn| Box::pin(support::ws::ws_round_trip(conn)),
    )
    .await?;
    Ok(Row {
        proto: Proto::Wss,
        naive,
        pooled,
    })
}

/// One GET of `/` on an HTTP/1.1 connection, its body read to the end.
pub(super) fn http1_get(conn: &mut HttpConn) -> OneFut<'_> {
    Box::pin(async move {
        let request = http::Request::get("/").body(http_body_util::Full::default())?;
        let body = conn.send_request(request).await?.into_body();
        http_body_util::BodyExt::collect(body).await?;
        Ok(())
    })
}

pub(super) async fn http1(tasks: u32, requests: u64, show: bool) -> Result<Row, BoxError> {
    let nginx = tokio::task::spawn_blocking(|| support::nginx::Nginx::start(""))
        .await?
        .ok_or("nginx is not installed (apt-get install nginx)")?;
    let (naive, pooled) = naive_and_pooled(
        ("HTTP/1.1, naive", "HTTP/1.1, pooled"),
        HttpManager::http1(),
        Origin::http(nginx.addr),
        (tasks, requests, show),
        http1_get,
    )
    .await?;
    Ok(Row {
        proto: Proto::Http1,
        naive,
        pooled,
    })
}

pub(super) async fn http1_tls(
    pki: &tls::Pki,
    tasks: u32,
    requests: u64,
    show: bool,
) -> Result<Row, BoxError> {
    let (addr, _) = pki.http1_server().await?;
    let manager = HttpManager::http1().tls(TlsConfig::from_client_config(pki.client()));
    let (naive, pooled) = naive_and_pooled(
        ("TLS HTTP/1.1, naive", "TLS HTTP/1.1, pooled"),
        manager,
        Origin::https(("localhost", addr.port())),
        (tasks, requests, show),
        http1_get,
    )
    .await?;
    Ok(Row {
        proto: Proto::Http1Tls,
        naive,
        pooled,
    })
}

pub(super) async fn http2_tls(
    pki: &tls::Pki,
    tasks: u32,
    requests: u64,
    show: bool,
) -> Result<Row, BoxError> {
    let (addr, _) = pki.http2_server().await?;
    let manager = HttpManager::http2().tls(TlsConfig::from_client_config(pki.client()));
    let (naive, pooled) = naive_and_pooled(
        ("TLS HTTP/2, naive", "TLS HTTP/2, pooled"),
        manager,
        Origin::https(("localhost", addr.port())),
        (tasks, requests, show),
        |conn: &mut HttpConn| {
            Box::pin(async move {
                let request = http::Request::get("/").body(http_body_util::Full::default())?;
                let body = conn.send_request(request).await?.into_body();
                http_body_util::BodyExt::collect(body).await?;
                Ok(())
            })
        },
    )
    .await?;
    Ok(Row {
        proto: Proto::Http2Tls,
        naive,
        pooled,
    })
}

pub(super) async fn grpc_tls(
    pki: &tls::Pki,
    tasks: u32,
    requests: u64,
    show: bool,
) -> Result<Row, BoxError> {
    let (addr, _) = pki.grpc_server().await?;
    // A naive dial makes no health check of its own: one call per request.
    let manager = GrpcManager::new()
        .check_on_connect(false)
        .tls(TlsConfig::from_client_config(pki.client()));
    let (naive, pooled) = naive_and_pooled(
        ("TLS gRPC, naive", "TLS gRPC, pooled"),
        manager,
        Origin::https(("localhost", addr.port())),
        (tasks, requests, show),
        |conn: &mut GrpcConn| {
            let channel = (*conn).clone();
            Box::pin(async move { support::health_check(channel).await })
        },
    )
    .await?;
    Ok(Row {
        proto: Proto::GrpcTls,
        naive,
        pooled,
    })
}

pub(super) async fn postgres_tls(
    pki: &tls::Pki,
    tasks: u32,
    requests: u64,
    show: bool,
) -> Result<Row, BoxError> {
    let server = tokio::task::spawn_blocking(support::postgres).await??;
    if !server.is_throwaway() {
        return Err("TLS needs a throwaway server (DATABASE_URL is set)".into());
    }
    server.enable_ssl(&pki.cert_pem, &pki.key_pem).await;
    let mut config = server.config();
    config
        .application_name("connpool-pooled-vs-naive")
        .host("localhost")
        .ssl_mode(tokio_postgres::config::SslMode::Require);
    let tls = tls_connector(&TlsConfig::from_client_config(pki.client()));
    let manager = PostgresManager::with_tls(config, tls);
    let key = manager.key();
    let (naive, pooled) = naive_and_pooled(
        ("TLS PostgreSQL, naive", "TLS PostgreSQL, pooled"),
        manager,
        key,
        (tasks, requests, show),
        |conn: &mut connpool::managers::postgres::PgConnection| {
            Box::pin(async move { Ok(support::select_1(conn).await?) })
        },
    )
    .await?;
    tokio::task::spawn_blocking(move || drop(server)).await?;
    Ok(Row {
        proto: Proto::PgTls,
        naive,
        pooled,
    })
}
