//! Why the pool closes a connection.

/// Why the pool closed a connection: one per `closed_*` counter of
/// [`Counters`](crate::Counters) (whose docs say what each means), named in the `debug`
/// event of the close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CloseReason {
    Broken,
    ByServer,
    MaxIdlePerKey,
    EvictedLru,
    PoolClosed,
    IdleTimeout,
    Lifetime,
    Uses,
    HealthCheck,
    Keepalive,
    Retired,
}

impl CloseReason {
    /// A short lowercase name, as used in tracing events.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CloseReason::Broken => "broken",
            CloseReason::ByServer => "by_server",
            CloseReason::MaxIdlePerKey => "max_idle_per_key",
            CloseReason::EvictedLru => "evicted_lru",
            CloseReason::PoolClosed => "pool_closed",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Lifetime => "lifetime",
            CloseReason::Uses => "uses",
            CloseReason::HealthCheck => "health_check",
            CloseReason::Keepalive => "keepalive",
            CloseReason::Retired => "retired",
        }
    }
}
