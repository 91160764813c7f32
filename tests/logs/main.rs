//! What the pool tells the log, in a process of its own: `tracing`
//! caches per call site whether anyone listens, and a test of another
//! thread that meets a call site first, with no subscriber of its own,
//! can leave it unheard by the subscriber a test here installs.
//!
//! An outage: a key entering backoff at `warn`, with its key and the
//! dial's error (at the first failure of a run and each power of two after
//! it), and its recovery at `info`.

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use tracing::Level;

use support::log::capture;
use support::*;

type M = Mock<u32>;

/// The backoff under test: 100 ms doubling to 1 s.
const BASE: Duration = Duration::from_millis(100);
const CAP: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn an_outage_is_warned_about_with_its_key_and_error_and_its_end_is_logged() {
    let (log, _guard) = capture();
    let mock = M::new();
    mock.set_down(true);
    let pool = mock
        .core_pool(|b| b.name("orders").backoff(BASE, CAP))
        .await;
    for i in 0..8 {
        if i > 0 {
            tokio::time::advance(CAP).await; // past the backoff: a dial again
        }
        assert!(pool.get_for(&7).await.is_err());
    }
    let failures = pool.key_state(&7).unwrap().counters.dial_failures;
    assert!(failures >= 8, "{failures}");
    let warned = log.warnings("dials of the key fail");
    // At the 1st, 2nd, 4th, 8th… failure: a few lines for any outage.
    assert_eq!(warned.len() as u32, failures.ilog2() + 1, "{warned:?}");
    for (i, line) in warned.iter().enumerate() {
        let f = &line.fields;
        assert_eq!((f["pool"].as_str(), f["key"].as_str()), ("orders", "7"));
        assert!(f["error"].contains("backend down"), "{f:?}");
        assert_eq!(f["failures"], (1u32 << i).to_string());
    }

    // Back before the key is forgotten (a failure memory after the last
    // failure): gets fail at once or wait for a probe until one succeeds.
    mock.set_down(false);
    let mut tries = 0;
    while pool.get_for(&7).await.is_err() {
        tries += 1;
        assert!(tries < 20, "never served");
        tokio::time::advance(BASE).await;
    }
    let back: Vec<_> = log
        .at(Level::INFO)
        .into_iter()
        .filter(|l| l.message.contains("the key is back"))
        .collect();
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(back[0].fields["key"], "7");
    assert!(back[0].fields.contains_key("down_for"), "{back:?}");
}
