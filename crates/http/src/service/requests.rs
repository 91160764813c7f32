//! The everyday requests: [`HttpService::get`], [`HttpService::post`] and
//! [`HttpService::request`] over an [`HttpManager`] pool, each a
//! [`RequestBuilder`] that takes headers and a body and is sent when
//! awaited: no request, body or `tower` call built by hand.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use bytes::Bytes;
#[cfg(feature = "json")]
use http::header::CONTENT_TYPE;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Response};
use http_body_util::Full;
use tower::ServiceExt;

use super::{HttpConnection, HttpManager, HttpService};
use crate::HttpBody;
use crate::HttpError;
use connpool_tcp::boxed::in_place;

/// A pool an everyday request goes through: the HTTP manager's, keyed by
/// origin or of one origin.
pub trait Everyday:
    HttpManager<
        ResponseBody = HttpBody,
        CallError = HttpError,
        Connection: HttpConnection<Body = Full<Bytes>>,
    >
{
}

impl<M> Everyday for M where
    M: HttpManager<
            ResponseBody = HttpBody,
            CallError = HttpError,
            Connection: HttpConnection<Body = Full<Bytes>>,
        >
{
}

impl<M: Everyday> HttpService<M> {
    /// `GET uri`, sent when awaited (add headers first with
    /// [`header`](RequestBuilder::header)); the response's body is read
    /// with [`HttpBody::bytes`], [`text`](HttpBody::text) or `json`
    /// (feature `json`). `uri` is absolute (`http://host:port/path`), or,
    /// for a service of one origin ([`HttpService::new`]), may be a bare
    /// path. The service's [`timeout`](HttpService::timeout) bounds it,
    /// body included.
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// use connpool_http::pool::Pool;
    /// use connpool_http::HttpManager;
    /// use connpool_http::service::HttpService;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = Pool::builder(HttpManager::new()).max_open_per_key(8).build().await?;
    /// let client = HttpService::by_authority(pool).timeout(Duration::from_secs(2));
    /// let response = client.get("http://127.0.0.1:8080/").header("accept", "text/plain").await?;
    /// println!("{}: {}", response.status(), response.into_body().text().await?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get(&self, uri: impl AsRef<str>) -> RequestBuilder<M> {
        self.request(Method::GET, uri)
    }

    /// `POST uri`, sent when awaited; its body given with
    /// [`body`](RequestBuilder::body) or [`json`](RequestBuilder::json).
    /// A POST is not sent twice by the service's retries unless it carries
    /// an idempotency key (see [`HttpService::retries`]).
    pub fn post(&self, uri: impl AsRef<str>) -> RequestBuilder<M> {
        self.request(Method::POST, uri)
    }

    /// `method uri`, sent when awaited.
    pub fn request(&self, method: Method, uri: impl AsRef<str>) -> RequestBuilder<M> {
        let uri = uri.as_ref();
        let request = uri
            .parse::<http::Uri>()
            .map_err(|e| HttpError::InvalidRequest(format!("URI {uri:?}: {e}")))
            .map(|uri| {
                let mut request = Request::new(Full::default());
                *request.method_mut() = method;
                *request.uri_mut() = uri;
                request
            });
        RequestBuilder {
            service: self.clone(),
            request,
        }
    }
}

/// A request of [`HttpService::get`], [`post`](HttpService::post) or
/// [`request`](HttpService::request): headers and a body added, it is
/// sent when awaited (as reqwest's `send`). An invalid URI, header or
/// body is an [`HttpError::InvalidRequest`] that names it, and nothing is
/// sent.
#[must_use = "a request is sent when awaited"]
#[derive(Debug)]
pub struct RequestBuilder<M: Everyday = crate::HttpManager> {
    service: HttpService<M>,
    request: Result<Request<Full<Bytes>>, HttpError>,
}

impl<M: Everyday> RequestBuilder<M> {
    /// Adds a header (`"accept"`, or a [`http::header`] constant; a value
    /// as a `&str`, a `String` or a [`HeaderValue`]).
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: std::fmt::Display,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: std::fmt::Display,
    {
        if let Ok(request) = &mut self.request {
            let invalid = |what: String| HttpError::InvalidRequest(what);
            match HeaderName::try_from(name) {
                Err(e) => self.request = Err(invalid(format!("header name: {e}"))),
                Ok(name) => match HeaderValue::try_from(value) {
                    Err(e) => self.request = Err(invalid(format!("header {name}: {e}"))),
                    Ok(value) => {
                        request.headers_mut().append(name, value);
                    }
                },
            }
        }
        self
    }

    /// The body, as it is (set its type with
    /// [`header`](RequestBuilder::header)`("content-type", …)`).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        if let Ok(request) = &mut self.request {
            *request.body_mut() = Full::new(body.into());
        }
        self
    }

    /// The body, `value` as JSON, with `Content-Type: application/json`.
    #[cfg(feature = "json")]
    #[cfg_attr(docsrs, doc(cfg(feature = "json")))]
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        if let Ok(request) = &mut self.request {
            match serde_json::to_vec(value) {
                Ok(json) => {
                    request
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    *request.body_mut() = Full::new(Bytes::from(json));
                }
                Err(e) => self.request = Err(HttpError::InvalidRequest(format!("JSON body: {e}"))),
            }
        }
        self
    }

    /// Sends it: what `.await` does.
    pub async fn send(self) -> Result<Response<HttpBody>, HttpError> {
        self.service.oneshot(self.request?).await
    }
}

impl<M: Everyday> IntoFuture for RequestBuilder<M> {
    type Output = Result<Response<HttpBody>, HttpError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        in_place(|| self.send())
    }
}
