//! [`ServiceError`]: why a call through [`HttpService`](super::HttpService)
//! failed.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crate::HttpError;

/// Why a call through [`HttpService`](super::HttpService) failed, or the
/// reading of its response body ([`PooledBody`](super::PooledBody)). Each
/// cause is written into the message, so [`source`](StdError::source) is the
/// cause's own source (the crate's rule: see [`connpool_core::Error`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum ServiceError {
    /// No connection: the pool's error (a failed dial, the checkout
    /// deadline, backoff, a closed pool).
    Pool(connpool_core::Error<HttpError>),
    /// The request failed on its connection (or its response body did).
    Request(hyper::Error),
    /// The call's deadline ([`HttpService::timeout`](super::HttpService::timeout),
    /// a [`RequestTimeout`](super::RequestTimeout), gRPC's `grpc-timeout`)
    /// passed before the response (or its body) ended. An HTTP/1.1
    /// connection it was on is closed, never lent again (its late response
    /// would be the next request's); on HTTP/2 the stream is reset.
    TimedOut {
        /// The deadline, from the call.
        after: Duration,
    },
    /// The request failed on a reused connection the server had closed
    /// (see [`HttpService::retries`](super::HttpService::retries)), and
    /// was not sent again: `reason` says why not.
    NotRetried {
        /// What the connection failed with.
        error: hyper::Error,
        /// Why the request was not safe to send twice.
        reason: &'static str,
    },
    /// A service that routes by authority got a request whose URI has none
    /// (the URI is in the variant).
    NoAuthority(String),
}

impl ServiceError {
    /// The pool's error, if the call got no connection.
    pub fn pool_error(&self) -> Option<&connpool_core::Error<HttpError>> {
        match self {
            ServiceError::Pool(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Pool(e) => e.fmt(f),
            ServiceError::Request(e) => write!(f, "HTTP request failed: {e}"),
            ServiceError::TimedOut { after } => {
                write!(
                    f,
                    "HTTP request timed out: no complete response within its deadline of {after:?}"
                )
            }
            ServiceError::NotRetried { error, reason } => write!(
                f,
                "HTTP request failed on a reused connection the server had closed ({error}); not sent again: {reason}"
            ),
            ServiceError::NoAuthority(uri) => write!(
                f,
                "request URI {uri:?} has no authority: a service that routes by authority needs an absolute URI (http://host:port/path)"
            ),
        }
    }
}

impl StdError for ServiceError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ServiceError::Pool(e) => e.source(),
            ServiceError::Request(e) | ServiceError::NotRetried { error: e, .. } => e.source(),
            ServiceError::NoAuthority(_) | ServiceError::TimedOut { .. } => None,
        }
    }
}
