//! The defaults a [`Builder`](crate::Builder) starts from, one constant per
//! setting; the builder's docs give them in a table, with why each was
//! chosen.

use std::time::Duration;

use crate::config::HealthCheck;

/// `max_open`: Go's default global idle cap (`MaxIdleConns`),
/// enough for most services, and below PostgreSQL's default `max_connections`.
pub const MAX_OPEN: usize = 100;
/// `connect_timeout`: long enough for a slow TLS handshake across
/// regions, short enough that a black-holed host frees its slot quickly.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `checkout_timeout`: a getter never waits forever (bb8's default too).
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// `idle_timeout`: Go's `IdleConnTimeout`. Long enough to carry a
/// connection across the gaps of ordinary traffic, short enough that a quiet
/// client hands its sockets back to the server.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// `max_lifetime`: HikariCP's and bb8's 30 minutes, so load
/// balancers and DNS changes are followed and server-side leaks are bounded.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// `jitter`: gRPC's ±10% on `MaxConnectionAge`, applied downwards
/// so a lifetime never exceeds `max_lifetime`.
pub const JITTER: f64 = 0.1;
/// `health_check`: HikariCP skips validation of a connection
/// used within the last 500 ms (`aliveBypassWindowMs`): a connection that just
/// worked almost surely still works, and a busy pool pays no round trip.
pub const HEALTH_CHECK: HealthCheck = HealthCheck::IfIdleFor(Duration::from_millis(500));
/// `ping_timeout`: a healthy peer answers a ping in milliseconds;
/// five seconds only fails a peer that is gone.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// `keepalive_interval`: half of the ~60 s after which NATs and
/// firewalls commonly drop an idle flow, so idle connections survive them,
/// and a dead one is found before a user meets it.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// `keepalive_timeout`: gRPC's `Timeout` is 20 s; an idle
/// connection whose peer takes more than 10 s to answer a ping is not worth
/// keeping.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// `keepalive_max_missed` (unless the manager has its own, see
/// [`Manager::keepalive_max_missed`](crate::Manager::keepalive_max_missed)):
/// 1, gRPC's semantics. A missed ping on an idle connection costs one dial
/// to repair; keeping a doubtful one costs a user's request.
pub const KEEPALIVE_MAX_MISSED: u32 = 1;
/// `backoff`, its first delay: short enough that one transient failure costs
/// callers of that key at most 100 ms of fast failures.
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// `backoff`, its cap: a backend that comes back is used again within 5 s.
pub const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// `max_connecting`: the MongoDB pool spec's `maxConnecting`. A
/// burst of getters on a cold key opens connections two at a time (each
/// serving a waiter as soon as it is up, returns serving the rest), instead
/// of hitting a just-restarted backend with one handshake per getter.
pub const MAX_CONNECTING: usize = 2;
/// `acquire_slow_threshold`: sqlx's. A get that waits 2 s is
/// worth a warning well before its checkout deadline (30 s) fails it.
pub const ACQUIRE_SLOW_THRESHOLD: Duration = Duration::from_secs(2);
/// `name`.
pub const NAME: &str = "connpool";
/// `max_borrowers`: a shared (multiplexed) connection carries at
/// most 100 borrowers at once, gRPC's usual `MAX_CONCURRENT_STREAMS`. A peer
/// that advertises no limit (or a huge one) would otherwise never look
/// saturated, and every call would funnel through one connection.
pub const MAX_BORROWERS: usize = 100;
