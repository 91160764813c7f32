//! The everyday requests: [`HttpService::get`] and [`HttpService::post`]
//! over an [`HttpManager`] pool, without building a request, a body or a
//! `tower` call by hand.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response};
use http_body_util::Full;
use tower::ServiceExt;

use super::HttpService;
use crate::HttpError;
use crate::http::{HttpBody, HttpManager};

impl HttpService<HttpManager> {
    /// `GET uri`: the response, its body read with
    /// [`HttpBody::bytes`], [`text`](HttpBody::text) or `json` (feature
    /// `json`). `uri` is absolute (`http://host:port/path`), or, for a
    /// service of one origin ([`HttpService::new`]), may be a bare path.
    /// The service's [`timeout`](HttpService::timeout) bounds it, body
    /// included.
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// use connpool::Pool;
    /// use connpool::managers::http::HttpManager;
    /// use connpool::managers::service::HttpService;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = Pool::builder(HttpManager::new()).max_open_per_key(8).build().await?;
    /// let client = HttpService::by_authority(pool).timeout(Duration::from_secs(2));
    /// let response = client.get("http://127.0.0.1:8080/").await?;
    /// println!("{}: {}", response.status(), response.into_body().text().await?);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get(&self, uri: impl AsRef<str>) -> Result<Response<HttpBody>, HttpError> {
        self.send(request(Method::GET, uri.as_ref(), None, Bytes::new())?)
            .await
    }

    /// `POST uri` with `body`, sent with `Content-Type: content_type`
    /// (Go's `http.Post`). A POST is not sent twice by the service's
    /// retries unless it carries an idempotency key, which this one does
    /// not (see [`HttpService::retries`]).
    pub async fn post(
        &self,
        uri: impl AsRef<str>,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> Result<Response<HttpBody>, HttpError> {
        let request = request(Method::POST, uri.as_ref(), Some(content_type), body.into())?;
        self.send(request).await
    }

    /// One call through a clone of the service (they share pool, counts
    /// and deadline).
    async fn send(&self, request: Request<Full<Bytes>>) -> Result<Response<HttpBody>, HttpError> {
        self.clone().oneshot(request).await
    }
}

/// The request, or an error naming what is wrong with its URI or content
/// type.
fn request(
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, HttpError> {
    let invalid = |what: String| HttpError::InvalidRequest(what);
    let parsed = uri
        .parse::<http::Uri>()
        .map_err(|e| invalid(format!("URI {uri:?}: {e}")))?;
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = parsed;
    if let Some(content_type) = content_type {
        let value = HeaderValue::from_str(content_type)
            .map_err(|e| invalid(format!("content type {content_type:?}: {e}")))?;
        request.headers_mut().insert(CONTENT_TYPE, value);
    }
    Ok(request)
}
