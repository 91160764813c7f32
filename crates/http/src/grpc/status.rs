//! What a call through [`HttpService`](crate::service::HttpService) over
//! the gRPC manager's pool answers: tonic's body, and failures as the gRPC
//! status codes a tonic `Channel` (and grpc-go) would give, so retry
//! policies and callers see `UNAVAILABLE` where a call may be tried again.

use std::error::Error as StdError;

use std::time::Duration;

use http::header::HeaderName;
use http::{HeaderMap, Response};
use http_body_util::BodyExt;
use tonic::{Code, Status};

use super::GrpcManager;
use crate::HttpBody;
use crate::HttpError;
use crate::service::HttpManager;
use connpool_core::Error;

/// The [`Status`] of a call that failed through the pool (the table in
/// the [module docs](super#failures)).
pub(crate) fn status_of(e: &HttpError) -> Status {
    let code = match e {
        HttpError::Pool(e) if matches!(**e, Error::Closed) => Code::Cancelled,
        HttpError::Pool(_) => Code::Unavailable,
        HttpError::Request(e) | HttpError::NotRetried { error: e, .. } => request_code(e),
        HttpError::NoAuthority(_) => Code::InvalidArgument,
        HttpError::TimedOut { .. } => Code::DeadlineExceeded,
        // A dial's or a ping's error: a call meets one only inside the
        // pool's (`Pool`).
        _ => Code::Unavailable,
    };
    Status::new(code, e.to_string())
}

/// The code of a request that failed on its connection.
fn request_code(e: &hyper::Error) -> Code {
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(h2) = err.downcast_ref::<h2::Error>()
            && let Some(reason) = h2.reason()
        {
            return match reason {
                h2::Reason::REFUSED_STREAM => Code::Unavailable,
                h2::Reason::CANCEL => Code::Cancelled,
                h2::Reason::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
                h2::Reason::INADEQUATE_SECURITY => Code::PermissionDenied,
                _ => Code::Internal,
            };
        }
        source = err.source();
    }
    // No reset reason: the connection itself failed (closed, reset, timed
    // out): a transport failure, which gRPC reports as unavailable.
    Code::Unavailable
}

impl HttpManager for GrpcManager {
    type ResponseBody = tonic::body::Body;
    type CallError = Status;

    fn route(&self, key: &crate::Origin, uri: &http::Uri) -> Result<crate::Origin, HttpError> {
        Ok(crate::service::over_tls_if_asked(key, uri))
    }

    /// The call's `grpc-timeout` (tonic's `Request::set_timeout`).
    fn deadline(headers: &HeaderMap) -> Option<Duration> {
        grpc_timeout(headers)
    }

    /// The response, its body failing with the [`Status`] a `Channel`
    /// would give (a stream reset after the headers as its reason's code,
    /// the call's deadline as `DEADLINE_EXCEEDED`).
    fn answer(
        outcome: Result<Response<HttpBody>, HttpError>,
    ) -> Result<Response<tonic::body::Body>, Status> {
        let response = outcome.map_err(|e| status_of(&e))?;
        Ok(response.map(|body| tonic::body::Body::new(body.map_err(|e| status_of(&e)))))
    }
}

/// The header of a gRPC call's deadline.
static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// The `grpc-timeout` header's duration (gRPC over HTTP/2: at most eight
/// digits and a unit, `H`, `M`, `S`, `m`, `u` or `n`); `None` if absent or
/// malformed (as grpc-go, which then sends the call without a deadline).
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(&GRPC_TIMEOUT)?.to_str().ok()?;
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_values() {
        let of = |v: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-timeout", http::HeaderValue::from_static(v));
            grpc_timeout(&headers)
        };
        assert_eq!(of("3S"), Some(Duration::from_secs(3)));
        assert_eq!(of("250m"), Some(Duration::from_millis(250)));
        assert_eq!(of("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(of("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "S", "3", "3s", "123456789S", "-1S", "1.5S"] {
            assert_eq!(of(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
    }
}
