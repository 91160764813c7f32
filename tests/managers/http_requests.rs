//! The everyday requests, as a user writes them from the docs: `get` and
//! `post` through `HttpService`, the body read as bytes, text or JSON,
//! against a real nginx (`support::nginx`), with a per-host cap and a
//! deadline; and what a bad URI, content type or JSON body gives.

use std::time::Duration;

use connpool::Pool;
use connpool::managers::HttpError;
use connpool::managers::http::HttpManager;
use connpool::managers::service::HttpService;

use crate::support::nginx::Nginx;

const ROUTES: &str = r#"
    location = /json { default_type application/json; return 200 '[true, 7]'; }
    location = /echo { default_type text/plain; return 200 "$request_method $content_type $content_length"; }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_post_with_a_per_host_cap_and_a_deadline() {
    let Some(nginx) = Nginx::start(ROUTES) else {
        return;
    };
    let base = format!("http://{}", nginx.addr);

    // The whole job: a pool capped at 8 connections per host, a client
    // with a 2 s deadline, a GET read as text.
    let pool = Pool::builder(HttpManager::new())
        .max_open_per_key(8)
        .build()
        .await
        .unwrap();
    let client = HttpService::by_authority(pool.clone()).timeout(Duration::from_secs(2));
    let response = client.get(format!("{base}/")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.into_body().text().await.unwrap(), "ok\n");

    let bytes = client
        .get(format!("{base}/"))
        .await
        .unwrap()
        .into_body()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"ok\n");
    let echoed = client
        .post(format!("{base}/echo"))
        .header("content-type", "application/json")
        .body(r#"{"a":1}"#)
        .await
        .unwrap();
    assert_eq!(
        echoed.into_body().text().await.unwrap(),
        "POST application/json 7"
    );

    // 64 tasks, 10 GETs each: never more than 8 connections to the host.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (client, base) = (client.clone(), base.clone());
        tasks.spawn(async move {
            for _ in 0..10 {
                let body = client.get(format!("{base}/")).await.unwrap().into_body();
                assert_eq!(body.text().await.unwrap(), "ok\n");
            }
        });
    }
    tasks.join_all().await;
    let state = pool.state();
    assert!(state.counters.dials <= 8, "{state:?}");
    assert_eq!(state.counters.gets, 643, "{state:?}");
    pool.close().await;
}

#[cfg(feature = "json")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_read_as_json() {
    let Some(nginx) = Nginx::start(ROUTES) else {
        return;
    };
    let base = format!("http://{}", nginx.addr);
    let pool = Pool::builder(HttpManager::new()).build().await.unwrap();
    let client = HttpService::by_authority(pool.clone());
    let body = client
        .get(format!("{base}/json"))
        .await
        .unwrap()
        .into_body();
    let (ok, n): (bool, u32) = body.json().await.unwrap();
    assert!(ok);
    assert_eq!(n, 7);

    let body = client.get(format!("{base}/")).await.unwrap().into_body();
    let err = body.json::<(bool, u32)>().await.unwrap_err();
    assert!(matches!(err, HttpError::Json(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("the response body is not the JSON expected: "),
        "{err}"
    );
    pool.close().await;
}

// A URI that does not parse, or a content type no header may carry, is an
// error that says which, and nothing is sent.
#[tokio::test]
async fn a_bad_uri_or_content_type_is_an_error_that_says_which() {
    let pool = Pool::builder(HttpManager::new()).build().await.unwrap();
    let client = HttpService::by_authority(pool.clone());
    let err = client.get("http://exa mple.com/").await.unwrap_err();
    assert!(matches!(err, HttpError::InvalidRequest(_)), "{err:?}");
    assert!(
        err.to_string().contains("URI \"http://exa mple.com/\""),
        "{err}"
    );
    let err = client
        .post("http://127.0.0.1:1/")
        .header("content-type", "text/plain\nx: y")
        .body("body")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("header content-type"), "{err}");
    let err = client
        .get("http://127.0.0.1:1/")
        .header("bad name", "x")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("header name"), "{err}");
    assert_eq!(pool.state().counters.dials, 0);
    pool.close().await;
}

/// A header and a JSON body on the everyday requests, in as many lines as
/// reqwest takes: nginx echoes the method, type and length it got, and a
/// header it was sent.
#[cfg(feature = "json")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_and_a_json_body() {
    let Some(nginx) = Nginx::start(
        r#"location = /echo { default_type text/plain; return 200 "$request_method $content_type $content_length $http_x_request_id"; }"#,
    ) else {
        return;
    };
    let pool = Pool::builder(HttpManager::new()).build().await.unwrap();
    let client = HttpService::new(pool.clone(), nginx.addr);
    let echoed = client
        .post("/echo")
        .header("x-request-id", "42")
        .json(&serde_json::json!({ "a": 1 }))
        .await
        .unwrap();
    assert_eq!(
        echoed.into_body().text().await.unwrap(),
        "POST application/json 7 42"
    );
    pool.close().await;
}

/// The same shape as the other services: over a pool of one origin
/// (`Single::new(manager, origin)`), its key `()`; a request whose URI
/// says `https` is refused, never sent in plaintext to the pool's
/// `http` origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_over_a_pool_of_one_origin() {
    let Some(nginx) = Nginx::start(ROUTES) else {
        return;
    };
    let origin = connpool::managers::Origin::from(nginx.addr);
    let pool = Pool::builder(connpool::Single::new(HttpManager::new(), origin))
        .build()
        .await
        .unwrap();
    let client = HttpService::new(pool.clone(), ()).timeout(Duration::from_secs(2));
    let body = client.get("/").await.unwrap().into_body();
    assert_eq!(body.text().await.unwrap(), "ok\n");
    let err = client
        .get(format!("https://{}/", nginx.addr))
        .await
        .unwrap_err();
    assert!(matches!(err, HttpError::NoTls { .. }), "{err:?}");
    assert_eq!(pool.state().counters.dials, 1, "nothing dialed for https");
    pool.close().await;
}
