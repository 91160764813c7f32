//! What a request or a response says about its connection's future:
//! `Connection: close`, HTTP/1.0 without keep-alive, `Keep-Alive:
//! timeout=N, max=M`.

use std::time::Duration;

use http::header::{CONNECTION, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};

/// The `Keep-Alive` header's name (not among `http`'s constants: it is not
/// part of HTTP/1.1 proper, only widely sent).
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// What one response allows the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Verdict {
    /// The connection must not carry another request: `Connection: close`,
    /// an HTTP/1.0 response without `Connection: keep-alive`, or a protocol
    /// switch (`101`).
    pub(crate) close: bool,
    /// `Keep-Alive: timeout=N`, shortened (see [`idle_limit`]).
    pub(crate) idle_limit: Option<Duration>,
    /// `Keep-Alive: max=M`: requests the server still takes on it.
    pub(crate) max: Option<u32>,
}

/// Whether a message of `version` with `headers` ends its connection
/// (RFC 9112 §9.3, §9.6): `Connection: close`, or HTTP/1.0 without
/// `Connection: keep-alive`. Said by either side, it holds for both: hyper
/// closes a connection whose request said so once the response is read.
pub(crate) fn closes(version: Version, headers: &HeaderMap) -> bool {
    let (mut close, mut keep_alive) = (false, false);
    for value in headers.get_all(CONNECTION) {
        // One token, the common case, needs no splitting.
        let whole = value.as_bytes();
        if whole.eq_ignore_ascii_case(b"keep-alive") {
            keep_alive = true;
        } else if whole.eq_ignore_ascii_case(b"close") {
            close = true;
        } else {
            for token in tokens(value) {
                close |= token.eq_ignore_ascii_case("close");
                keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    close || (version <= Version::HTTP_10 && !keep_alive)
}

/// Reads what `status`, `version` and `headers` say about keep-alive.
pub(crate) fn verdict(status: StatusCode, version: Version, headers: &HeaderMap) -> Verdict {
    let close = status == StatusCode::SWITCHING_PROTOCOLS || closes(version, headers);
    let (mut timeout, mut max) = (None, None);
    for value in headers.get_all(KEEP_ALIVE) {
        for param in tokens(value) {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match name.trim() {
                n if n.eq_ignore_ascii_case("timeout") => timeout = value.parse().ok(),
                n if n.eq_ignore_ascii_case("max") => max = value.parse().ok(),
                _ => {}
            }
        }
    }
    Verdict {
        close,
        idle_limit: timeout.map(idle_limit),
        max,
    }
}

/// How long a connection whose server announced `Keep-Alive: timeout=N`
/// (`secs`) stays reusable after its last response: N less one second, but
/// at least N / 2. The header has whole seconds (a server may round its
/// real timeout down to them), the server's timer started when it wrote the
/// response, before the client read it, and a request written in the last
/// moment meets a connection the server is closing: one second covers all
/// three on any reasonable network, and the floor keeps `timeout=1` useful.
pub(crate) fn idle_limit(secs: u64) -> Duration {
    let n = Duration::from_secs(secs);
    n.saturating_sub(Duration::from_secs(1)).max(n / 2)
}

/// The comma-separated tokens of a header value, trimmed; none if the value
/// is not text.
fn tokens(value: &HeaderValue) -> impl Iterator<Item = &str> {
    value
        .to_str()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(version: Version, headers: &[(&'static str, &'static str)]) -> Verdict {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, HeaderValue::from_static(value));
        }
        verdict(StatusCode::OK, version, &map)
    }

    #[test]
    fn http11_keeps_alive_unless_told() {
        assert_eq!(of(Version::HTTP_11, &[]), Verdict::default());
        assert!(of(Version::HTTP_11, &[("connection", "Close")]).close);
        assert!(of(Version::HTTP_11, &[("connection", "upgrade, close")]).close);
        assert!(!of(Version::HTTP_11, &[("connection", "keep-alive")]).close);
    }

    #[test]
    fn http10_closes_without_keep_alive() {
        assert!(of(Version::HTTP_10, &[]).close);
        assert!(!of(Version::HTTP_10, &[("connection", "Keep-Alive")]).close);
    }

    #[test]
    fn a_request_that_says_close() {
        let mut headers = HeaderMap::new();
        assert!(!closes(Version::HTTP_11, &headers));
        assert!(closes(Version::HTTP_10, &headers));
        headers.insert(CONNECTION, HeaderValue::from_static("TE, Close"));
        assert!(closes(Version::HTTP_11, &headers));
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        assert!(!closes(Version::HTTP_10, &headers));
    }

    #[test]
    fn keep_alive_parameters() {
        let v = of(Version::HTTP_11, &[("keep-alive", "timeout=5, max=100")]);
        assert_eq!(v.idle_limit, Some(Duration::from_secs(4)));
        assert_eq!(v.max, Some(100));
        let v = of(Version::HTTP_11, &[("keep-alive", "Max=\"3\"")]);
        assert_eq!((v.idle_limit, v.max), (None, Some(3)));
        let v = of(Version::HTTP_11, &[("keep-alive", "timeout=soon, max")]);
        assert_eq!(v, Verdict::default());
    }

    #[test]
    fn idle_limit_leaves_a_margin() {
        assert_eq!(idle_limit(1), Duration::from_millis(500));
        assert_eq!(idle_limit(2), Duration::from_secs(1));
        assert_eq!(idle_limit(60), Duration::from_secs(59));
        assert_eq!(idle_limit(0), Duration::ZERO);
    }
}
