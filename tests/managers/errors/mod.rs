//! Errors read well in a log: for every error of the pool and its managers,
//! `{}` of the error says what went wrong down to the root cause, and walking
//! its `source()` chain (as `anyhow`'s `{:#}` or a logger does) repeats no
//! message: each error either writes its cause into its message or returns
//! it as its source, never both.
//!
//! The PostgreSQL cases run against a real server (`support::pg`; with
//! `CI=true` they must run, never skip): an unknown database, an unknown
//! role, a wrong password and a server that is down each show PostgreSQL's
//! own words in `{}` of the pool's `Error`.

use std::error::Error as StdError;

#[cfg(feature = "http")]
mod h2;
mod pool;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "tcp")]
mod tcp;

/// The messages of `e` and of each of its sources, outermost first.
pub(crate) fn chain(e: &dyn StdError) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut next = e.source();
    while let Some(s) = next {
        out.push(s.to_string());
        next = s.source();
    }
    out
}

/// No message of `e`'s chain contains the next one's. Returns the chain.
#[track_caller]
pub(crate) fn no_repetition(e: &dyn StdError) -> Vec<String> {
    let messages = chain(e);
    for pair in messages.windows(2) {
        assert!(
            !pair[0].contains(&pair[1]),
            "{:?} repeats its source {:?}; the chain: {messages:#?}",
            pair[0],
            pair[1]
        );
    }
    messages
}

/// [`no_repetition`], and `{}` of `e` contains the root cause's message
/// (and `root`, if given). Returns `{}`.
#[track_caller]
pub(crate) fn reads_well(e: &dyn StdError, root: Option<&str>) -> String {
    let messages = no_repetition(e);
    let top = &messages[0];
    let last = messages.last().unwrap();
    assert!(top.contains(last), "{top:?} lacks the root cause {last:?}");
    if let Some(root) = root {
        assert!(top.contains(root), "{top:?} lacks {root:?}");
    }
    top.clone()
}
