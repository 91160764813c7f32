//! When a request that failed is sent once more: Go's `shouldRetryRequest`
//! for a pool of exclusively lent (HTTP/1.1) connections.
//!
//! A connection that sat idle may have been closed by its server (its
//! keep-alive timeout, its `keepalive_requests`) while the close was still
//! on its way: the request written into it fails with hyper's "connection
//! closed before message completed", a reset, or no dispatch at all. Such
//! a request is sent again, on another connection, when all of these hold:
//!
//! - the connection was **reused** (lent before): a fresh connection that
//!   fails says something about the server, not about staleness;
//! - the failure is a **closed connection** before any response arrived
//!   ([`is_stale`]), not a timeout, a parse error or the body's own error;
//! - the request is **safe to send twice**: hyper gave it back unwritten,
//!   or it is replayable as Go's `isReplayable` says (GET, HEAD, OPTIONS,
//!   TRACE, or any method with an `Idempotency-Key` or
//!   `X-Idempotency-Key` header), with a body that can be sent again
//!   ([`replay`]).
//!
//! And again, as long as each attempt meets a reused connection that
//! turns out closed: when every idle connection went stale together (a
//! load balancer restarted), each is tried and retired in turn, and the
//! request ends on a fresh dial. A failure on a fresh connection is the
//! caller's. This is Go's `Transport.roundTrip` loop. A fresh connection
//! closed under its first request is more: the server (or the load
//! balancer in front of it) accepts connections and answers none, so the
//! pool hears of it as a refused dial (`Pooled::mark_refused`): the
//! origin backs off and is probed, instead of a new connection per try.
//!
//! On a shared (HTTP/2) connection, a request the server did not process
//! is sent again, whatever its method (RFC 9113 §8.7; Go's HTTP/2
//! `canRetryError`): hyper gave it back unsent (the connection closed or
//! went away first), or the stream was refused (`REFUSED_STREAM`, or a
//! `GOAWAY` whose last stream is below it) and its body can be replayed.
//! At most [`MAX_UNPROCESSED`] times: a server that refuses every stream
//! is the caller's to hear about.

use std::any::Any;
use std::error::Error as StdError;
use std::io;

use bytes::Bytes;
use http::header::HeaderName;
use http::{Method, Request};
use http_body_util::{Empty, Full};

/// How many times one request the server did not process is sent again.
pub(super) const MAX_UNPROCESSED: u32 = 5;

/// The headers that make any method safe to retry (IETF draft
/// `httpapi-idempotency-key-header`, Stripe's convention; Go accepts both).
const IDEMPOTENCY_KEYS: [HeaderName; 2] = [
    HeaderName::from_static("idempotency-key"),
    HeaderName::from_static("x-idempotency-key"),
];

/// Whether `error` says the connection was closed under the request before
/// any response came: hyper's incomplete message, a canceled or closed
/// dispatch, or a reset, broken pipe or EOF from the socket.
pub(super) fn is_stale(error: &hyper::Error) -> bool {
    if error.is_incomplete_message() || error.is_canceled() || error.is_closed() {
        return true;
    }
    let mut source = error.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            );
        }
        source = e.source();
    }
    false
}

/// A copy of `request` to send again if an attempt meets a stale
/// connection, or why it may not be: its method is not one Go replays and
/// it has no `Idempotency-Key` (or `X-Idempotency-Key`), or its body cannot
/// be replayed (only bodies of type `Full<Bytes>`, `Empty<Bytes>` and
/// `String` can, cheaply: `Bytes` are shared, not copied). The copy has
/// the request's method, URI, version and headers, not its extensions.
pub(super) fn replay<B: 'static>(request: &Request<B>) -> Result<Request<B>, &'static str> {
    let keyed = || {
        IDEMPOTENCY_KEYS
            .iter()
            .any(|k| request.headers().contains_key(k))
    };
    if !is_replayable(request.method()) && !keyed() {
        return Err(
            "its method is not GET, HEAD, OPTIONS or TRACE and it carries no Idempotency-Key header",
        );
    }
    let body = clone_body(request.body()).ok_or("its body cannot be replayed")?;
    Ok(copy_with(request, body))
}

/// Whether `error` says the server did not process the request, so it may
/// go again on any connection whatever its method (RFC 9113 §8.7): the
/// stream was refused (`REFUSED_STREAM`), or the server's `GOAWAY` named a
/// last stream below it (h2 fails such streams with the `GOAWAY`).
pub(super) fn was_not_processed(error: &hyper::Error) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::REFUSED_STREAM)
                || (h2.is_go_away() && h2.is_remote());
        }
        source = e.source();
    }
    false
}

/// A copy of `request` to send again if the server does not process it
/// ([`was_not_processed`]): any method, a body that can be replayed.
pub(super) fn replay_unprocessed<B: 'static>(request: &Request<B>) -> Option<Request<B>> {
    let body = clone_body(request.body())?;
    Some(copy_with(request, body))
}

/// `request`'s method, URI, version and headers over `body`.
fn copy_with<B>(request: &Request<B>, body: B) -> Request<B> {
    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// Go's `isReplayable` methods: the safe ones. PUT and DELETE are
/// idempotent too (RFC 9110), but carry effects Go does not repeat unasked.
fn is_replayable(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// A clone of `body` if its type is one of the replayable ones.
fn clone_body<B: 'static>(body: &B) -> Option<B> {
    // Into a slot of the caller's type, found by downcasting: no
    // allocation on the path of every request on a reused connection.
    let mut slot: Option<B> = None;
    let (any, out): (&dyn Any, &mut dyn Any) = (body, &mut slot);
    if let (Some(b), Some(out)) = (
        any.downcast_ref::<Full<Bytes>>(),
        out.downcast_mut::<Option<Full<Bytes>>>(),
    ) {
        *out = Some(b.clone());
    } else if let (Some(b), Some(out)) = (
        any.downcast_ref::<Empty<Bytes>>(),
        out.downcast_mut::<Option<Empty<Bytes>>>(),
    ) {
        *out = Some(*b);
    } else if let (Some(b), Some(out)) = (
        any.downcast_ref::<String>(),
        out.downcast_mut::<Option<String>>(),
    ) {
        *out = Some(b.clone());
    }
    slot
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<B>(method: Method, body: B) -> Request<B> {
        let mut r = Request::new(body);
        *r.method_mut() = method;
        r
    }

    #[test]
    fn idempotent_methods_with_replayable_bodies() {
        let get = request(Method::GET, Full::new(Bytes::from_static(b"x")));
        let copy = replay(&get).expect("replayable");
        assert_eq!(copy.method(), Method::GET);
        assert!(replay(&request(Method::HEAD, Empty::<Bytes>::new())).is_ok());
        assert!(replay(&request(Method::OPTIONS, String::from("x"))).is_ok());
    }

    #[test]
    fn other_methods_only_with_an_idempotency_key() {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            for key in ["Idempotency-Key", "x-idempotency-key"] {
                let mut unsafe_ = request(method.clone(), Full::new(Bytes::new()));
                assert!(replay(&unsafe_).unwrap_err().contains("Idempotency-Key"));
                unsafe_
                    .headers_mut()
                    .insert(key, http::HeaderValue::from_static("k1"));
                assert_eq!(replay(&unsafe_).unwrap().headers()[key], "k1");
            }
        }
    }

    #[test]
    fn unknown_bodies_are_not_replayed() {
        let get = request(
            Method::GET,
            http_body_util::BodyExt::boxed(Empty::<Bytes>::new()),
        );
        assert_eq!(replay(&get).unwrap_err(), "its body cannot be replayed");
    }
}
