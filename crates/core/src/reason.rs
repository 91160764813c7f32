//! Why the pool closes a connection.

use crate::stats::Counters;

/// Writes the reasons once: each with its `closed_*` counter of
/// [`Counters`], whose name past `closed_` is the reason's name.
macro_rules! reasons {
    ($($reason:ident => $counter:ident,)*) => {
        /// Why the pool closed a connection: one per `closed_*` counter of
        /// [`Counters`] (whose docs say what each means), named in the `debug`
        /// event of the close.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum CloseReason {
            $($reason,)*
        }

        impl CloseReason {
            /// A short lowercase name, as used in tracing events.
            pub(crate) fn as_str(self) -> &'static str {
                match self {
                    $(CloseReason::$reason => &stringify!($counter)["closed_".len()..],)*
                }
            }
        }

        impl Counters {
            /// Connections closed for any reason: the sum of the `closed_*` counters.
            pub fn closed_total(&self) -> u64 {
                0 $(+ self.$counter)*
            }

            pub(crate) fn count_close(&mut self, reason: CloseReason) {
                *match reason {
                    $(CloseReason::$reason => &mut self.$counter,)*
                } += 1;
            }
        }
    };
}

reasons! {
    Broken => closed_broken,
    ByServer => closed_by_server,
    MaxIdlePerKey => closed_max_idle_per_key,
    EvictedLru => closed_evicted_lru,
    PoolClosed => closed_pool_closed,
    IdleTimeout => closed_idle_timeout,
    Lifetime => closed_lifetime,
    Uses => closed_uses,
    HealthCheck => closed_health_check,
    Keepalive => closed_keepalive,
    Retired => closed_retired,
}
