//! Outlier ejection: a replica whose calls fail again and again is taken
//! out of the balancer's choice for a while, as Envoy's outlier detection
//! does. A backend that fails fast (503s, refused streams) would otherwise
//! attract *more* calls from a balancer that counts calls in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// When [`Balanced`](super::Balanced) ejects an address: after
/// `consecutive_failures` calls in a row failed (an error: a refused or
/// broken connection, a timeout; or a response with a 5xx status, or a
/// gRPC `UNAVAILABLE` answered in the headers), it takes no call for
/// `base_time` × the times it was ejected so far (at most `max_time`),
/// then is back on its own; its next run of failures ejects it again for
/// longer, and a success resets both counts. Never more than `max_percent`
/// of the addresses are out at once (at least one may be): when the
/// fleet fails as a whole, ejecting would only concentrate the load (the
/// panic threshold).
///
/// The default, as Envoy's: 5 failures, 30 s growing to 300 s, 10 % (with
/// at least one address out, so two or three backends can lose one). A
/// gRPC status sent in the trailers of a streamed response is not seen.
/// Each field's method of the same name sets it:
/// `Ejection::default().base_time(Duration::from_secs(10))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ejection {
    /// Failed calls in a row that eject an address; 0 turns ejection off.
    pub consecutive_failures: u32,
    /// How long the first ejection lasts.
    pub base_time: Duration,
    /// The longest an ejection lasts.
    pub max_time: Duration,
    /// The most addresses out at once, in percent of the addresses (at
    /// least one).
    pub max_percent: u8,
}

impl Ejection {
    /// With `consecutive_failures` set to `n` (0 turns ejection off).
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.consecutive_failures = n;
        self
    }

    /// With `base_time` set to `d`.
    pub fn base_time(mut self, d: Duration) -> Self {
        self.base_time = d;
        self
    }

    /// With `max_time` set to `d`.
    pub fn max_time(mut self, d: Duration) -> Self {
        self.max_time = d;
        self
    }

    /// With `max_percent` set to `percent`.
    pub fn max_percent(mut self, percent: u8) -> Self {
        self.max_percent = percent;
        self
    }
}

impl Default for Ejection {
    fn default() -> Self {
        Ejection {
            consecutive_failures: 5,
            base_time: Duration::from_secs(30),
            max_time: Duration::from_secs(300),
            max_percent: 10,
        }
    }
}

/// The fleet's ejection state: the settings, how many addresses there are
/// and how many are out. Shared by the balancer's replicas.
#[derive(Debug)]
pub(crate) struct Outliers {
    settings: Mutex<Ejection>,
    replicas: AtomicUsize,
    ejected: AtomicUsize,
    ejections: AtomicU64,
}

impl Outliers {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Outliers {
            settings: Mutex::new(Ejection::default()),
            replicas: AtomicUsize::new(0),
            ejected: AtomicUsize::new(0),
            ejections: AtomicU64::new(0),
        })
    }

    pub(crate) fn set(&self, settings: Ejection) {
        *self.settings.lock() = settings;
    }

    /// Ejections so far.
    pub(crate) fn ejections(&self) -> u64 {
        self.ejections.load(Ordering::Relaxed)
    }

    /// Takes one ejection slot if the panic threshold allows.
    fn take_slot(&self, max_percent: u8) -> bool {
        let replicas = self.replicas.load(Ordering::Relaxed);
        let most = (replicas * usize::from(max_percent) / 100).max(1);
        self.ejected
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |out| {
                (out < most).then_some(out + 1)
            })
            .is_ok()
    }
}

/// One address's record: its failures in a row, its ejections, and until
/// when it is out. Counts it among the fleet's addresses while it lives.
#[derive(Debug)]
pub(crate) struct Health {
    fleet: Arc<Outliers>,
    failures: AtomicU32,
    ejections: AtomicU32,
    out_until: Mutex<Option<Instant>>,
}

impl Health {
    pub(crate) fn new(fleet: &Arc<Outliers>) -> Arc<Self> {
        fleet.replicas.fetch_add(1, Ordering::Relaxed);
        Arc::new(Health {
            fleet: Arc::clone(fleet),
            failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            out_until: Mutex::new(None),
        })
    }

    /// A call ended, well or not.
    pub(crate) fn record(&self, ok: bool) {
        if ok {
            self.failures.store(0, Ordering::Relaxed);
            self.ejections.store(0, Ordering::Relaxed);
            return;
        }
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let settings = *self.fleet.settings.lock();
        if settings.consecutive_failures == 0 || failures < settings.consecutive_failures {
            return;
        }
        let mut out_until = self.out_until.lock();
        if out_until.is_some() || !self.fleet.take_slot(settings.max_percent) {
            return;
        }
        let n = self.ejections.fetch_add(1, Ordering::Relaxed) + 1;
        let time = settings.base_time.saturating_mul(n).min(settings.max_time);
        *out_until = Some(Instant::now() + time);
        self.failures.store(0, Ordering::Relaxed);
        self.fleet.ejections.fetch_add(1, Ordering::Relaxed);
        tracing::info!(?time, "address ejected after failed calls in a row");
    }

    /// Until when it is out, if it is; an ejection that ended is over.
    pub(crate) fn out_until(&self) -> Option<Instant> {
        let mut out_until = self.out_until.lock();
        match *out_until {
            Some(until) if until > Instant::now() => Some(until),
            Some(_) => {
                *out_until = None;
                self.fleet.ejected.fetch_sub(1, Ordering::AcqRel);
                None
            }
            None => None,
        }
    }
}

impl Drop for Health {
    fn drop(&mut self) {
        self.fleet.replicas.fetch_sub(1, Ordering::Relaxed);
        if self.out_until.lock().take().is_some() {
            self.fleet.ejected.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Whether a response says its call failed: a 5xx status, or a gRPC
/// `UNAVAILABLE` (14) in the headers (a trailers-only response).
pub(crate) fn failed<B>(response: &http::Response<B>) -> bool {
    response.status().is_server_error()
        || response
            .headers()
            .get("grpc-status")
            .is_some_and(|status| status.as_bytes() == b"14")
}
