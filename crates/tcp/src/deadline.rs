//! [`Deadline`]: when a service's calls must be done, one per call or one
//! instant its calls share.

use std::time::Duration;

use tokio::time::Instant;

/// A service's deadline: a length for each call (its `timeout`), an
/// instant every call shares (its `deadline`), both (the sooner applies),
/// or neither (the pool's and the manager's timeouts alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deadline {
    per_call: Option<Duration>,
    /// The instant, and its length when it was set (named in errors).
    shared: Option<(Instant, Duration)>,
}

impl Deadline {
    /// Each call's, from its start.
    pub fn per_call(self, after: impl Into<Option<Duration>>) -> Self {
        Self {
            per_call: after.into(),
            ..self
        }
    }

    /// One instant for every call from now on.
    pub fn shared(self, at: Instant) -> Self {
        let length = at.saturating_duration_since(Instant::now());
        Self {
            shared: Some((at, length)),
            ..self
        }
    }

    /// For a call starting now: its deadline, and the length of the one
    /// that applies, if any.
    pub fn start(self) -> Option<(Instant, Duration)> {
        let own = self.per_call.map(|after| (Instant::now() + after, after));
        match (own, self.shared) {
            (Some(own), Some(shared)) => Some(if own.0 <= shared.0 { own } else { shared }),
            (own, shared) => own.or(shared),
        }
    }
}
