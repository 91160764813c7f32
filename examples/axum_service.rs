//! A small axum service on connpool, as a user writes it from the docs:
//!
//! - `GET /users/{id}`: a PostgreSQL row, under a 1 s deadline;
//! - `GET /cache/{key}`: a Redis cache, `GET` and on a miss `SET`, both
//!   under one 500 ms budget;
//! - `GET /proxy/{*path}`: an upstream HTTP server, at most 8 connections,
//!   a 2 s deadline;
//! - `GET /stats`: the three pools' state as JSON.
//!
//! Each failure answers 503 with the error's message. The part a user
//! writes is between the `service` markers below; between the `peers`
//! markers, the same service on deadpool-postgres, redis-rs's
//! `ConnectionManager` and reqwest (a `tokio::time::timeout` per route,
//! a semaphore for the per-host cap, the status mapped by hand), served
//! and called the same way. `main` starts the
//! servers (a throwaway PostgreSQL and redis-server, `python3 -m
//! http.server` as the upstream), serves the app on 127.0.0.1, calls each
//! route and prints what it answered. `--serve` keeps serving afterwards.
//!
//! ```text
//! cargo run --features postgres,redis,http,serde --example axum_service
//! cargo run --features postgres,redis,http,serde --example axum_service -- --serve
//! ```

mod support;

use support::python_http::PythonHttp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Json, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use connpool::managers::http::HttpManager;
use connpool::managers::postgres::{PgService, PostgresManager};
use connpool::managers::redis::redis;
use connpool::managers::redis::redis::AsyncCommands;
use connpool::managers::redis::{RedisManager, RedisService};
use connpool::managers::service::HttpService;
use connpool::{Pool, Single};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ---- service: what a user writes ----

#[derive(Clone)]
struct App {
    db: PgService<Single<PostgresManager>>,
    cache: RedisService<Single<RedisManager>>,
    upstream: HttpService<HttpManager>,
}

async fn app(
    db: PostgresManager,
    cache: RedisManager,
    upstream: SocketAddr,
) -> Result<Router, BoxError> {
    let db = Pool::builder(db.single()).build().await?;
    let cache = Pool::builder(cache.single()).build().await?;
    let http = Pool::builder(HttpManager::new())
        .max_open_per_key(8)
        .build()
        .await?;
    let app = App {
        db: PgService::new(db, ()).timeout(Duration::from_secs(1)),
        cache: RedisService::new(cache, ()),
        upstream: HttpService::new(http, upstream).timeout(Duration::from_secs(2)),
    };
    Ok(Router::new()
        .route("/users/{id}", get(user))
        .route("/cache/{key}", get(cached))
        .route("/proxy/{*path}", get(proxy))
        .route("/stats", get(stats))
        .with_state(app))
}

async fn user(State(app): State<App>, Path(id): Path<i32>) -> Result<String, Failed> {
    let row = app
        .db
        .query_one("SELECT name FROM example_users WHERE id = $1", &[&id])
        .await?;
    Ok(row.get(0))
}

async fn cached(State(app): State<App>, Path(key): Path<String>) -> Result<String, Failed> {
    let mut cache = app
        .cache
        .deadline(Instant::now() + Duration::from_millis(500));
    if let Some(hit) = cache.get::<_, Option<String>>(&key).await? {
        return Ok(hit);
    }
    let value = format!("computed {key}");
    cache.set_ex::<_, _, ()>(&key, &value, 60).await?;
    Ok(value)
}

async fn proxy(State(app): State<App>, Path(path): Path<String>) -> Result<String, Failed> {
    let response = app.upstream.get(format!("/{path}")).await?;
    Ok(response.into_body().text().await?)
}

async fn stats(State(app): State<App>) -> Json<serde_json::Value> {
    let (db, cache, upstream) = (app.db.pool(), app.cache.pool(), app.upstream.pool());
    Json(json!({ "db": db.state(), "cache": cache.state(), "upstream": upstream.state() }))
}

// ---- end of the service ----

// ---- peers: the same service on deadpool-postgres, redis-rs's ConnectionManager and reqwest ----

#[derive(Clone)]
struct Peers {
    db: deadpool_postgres::Pool,
    cache: redis::aio::ConnectionManager,
    upstream: reqwest::Client,
    permits: Arc<Semaphore>,
    base: String,
}

async fn peers(
    db: tokio_postgres::Config,
    cache: &str,
    upstream: SocketAddr,
) -> Result<Router, BoxError> {
    let manager = deadpool_postgres::Manager::new(db, tokio_postgres::NoTls);
    let db = deadpool_postgres::Pool::builder(manager).build()?;
    let cache = redis::Client::open(cache)?.get_connection_manager().await?;
    let upstream_client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let app = Peers {
        db,
        cache,
        upstream: upstream_client,
        permits: Arc::new(Semaphore::new(8)),
        base: format!("http://{upstream}"),
    };
    Ok(Router::new()
        .route("/users/{id}", get(peer_user))
        .route("/cache/{key}", get(peer_cached))
        .route("/proxy/{*path}", get(peer_proxy))
        .route("/stats", get(peer_stats))
        .with_state(app))
}

async fn peer_user(State(app): State<Peers>, Path(id): Path<i32>) -> Result<String, Failed> {
    let query = async {
        let client = app.db.get().await?;
        let row = client
            .query_one("SELECT name FROM example_users WHERE id = $1", &[&id])
            .await?;
        Ok::<String, Failed>(row.get(0))
    };
    tokio::time::timeout(Duration::from_secs(1), query).await?
}

async fn peer_cached(State(app): State<Peers>, Path(key): Path<String>) -> Result<String, Failed> {
    let mut cache = app.cache.clone();
    let lookup = async move {
        if let Some(hit) = cache.get::<_, Option<String>>(&key).await? {
            return Ok(hit);
        }
        let value = format!("computed {key}");
        cache.set_ex::<_, _, ()>(&key, &value, 60).await?;
        Ok::<String, Failed>(value)
    };
    tokio::time::timeout(Duration::from_millis(500), lookup).await?
}

async fn peer_proxy(State(app): State<Peers>, Path(path): Path<String>) -> Result<String, Failed> {
    let _permit = app.permits.acquire().await?;
    let url = format!("{}/{path}", app.base);
    Ok(app.upstream.get(url).send().await?.text().await?)
}

async fn peer_stats(State(app): State<Peers>) -> Json<serde_json::Value> {
    let db = app.db.status();
    Json(json!({ "db": {
        "max_size": db.max_size, "size": db.size, "available": db.available, "waiting": db.waiting,
    } }))
}

// ---- end of the peers ----

// Both: each failure a 503.

/// Any failure: 503, and what went wrong.
struct Failed(String);

impl<E: std::fmt::Display> From<E> for Failed {
    fn from(e: E) -> Self {
        Failed(e.to_string())
    }
}

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        (StatusCode::SERVICE_UNAVAILABLE, self.0).into_response()
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let serve = std::env::args().any(|a| a == "--serve");
    let pg = tokio::task::spawn_blocking(support::postgres).await??;
    let Some(redis) = support::redis_support::RedisServer::new() else {
        return Err("no redis-server (apt-get install redis-server)".into());
    };
    let upstream = PythonHttp::start(&[("hello.txt", b"hello from upstream\n")])?;
    let admin = pg.client().await;
    admin
        .batch_execute(
            "DROP TABLE IF EXISTS example_users; CREATE TABLE example_users (id int PRIMARY KEY, name text);
             INSERT INTO example_users VALUES (1, 'ada'), (2, 'grace');",
        )
        .await?;

    let ours = app(
        PostgresManager::new(pg.config()),
        redis.url("").parse()?,
        upstream.addr,
    )
    .await?;
    // reqwest is built without a TLS provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let theirs = peers(pg.config(), &redis.url(""), upstream.addr).await?;
    for (name, router) in [("connpool", ours), ("peers", theirs)] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        println!("{name}: serving on http://{addr}");
        call_each_route(addr).await?;
        if serve && name == "connpool" {
            println!("serving until Ctrl-C");
            tokio::signal::ctrl_c().await?;
        }
        server.abort();
    }
    Ok(())
}

/// Each route, called as a client would (through connpool too), its
/// answer checked.
async fn call_each_route(addr: SocketAddr) -> Result<(), BoxError> {
    let pool = Pool::builder(HttpManager::new()).build().await?;
    let client = HttpService::new(pool, addr).timeout(Duration::from_secs(5));
    let expected = [
        ("/users/1", 200, "ada"),
        ("/users/3", 503, "unexpected number of rows"),
        ("/cache/colour", 200, "computed colour"),
        ("/cache/colour", 200, "computed colour"),
        ("/proxy/hello.txt", 200, "hello from upstream"),
        ("/stats", 200, "\"db\""),
    ];
    for (path, status, text) in expected {
        let response = client.get(path).await?;
        let got = response.status();
        let body = response.into_body().text().await?;
        println!("GET {path} -> {got}: {}", body.trim_end());
        assert_eq!(got.as_u16(), status, "{path}: {body}");
        assert!(body.contains(text), "{path}: {body}");
    }
    Ok(())
}
