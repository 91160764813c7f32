//! [`Limits`]: the caps of a pool, and the rules that keep them consistent
//! (checked when the pool is built and when it is resized).

use crate::error::ConfigError;

/// The caps of a pool, changeable while it runs ([`Pool::resize`](crate::Pool::resize)). Each
/// field means what the [`Builder`](crate::Builder) setting of the same
/// name means, and its method of the same name sets it: a pool's caps are
/// changed from [`Pool::limits`](crate::Pool::limits),
/// `pool.resize(pool.limits().max_open(16).max_idle(16))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Cap on open connections of all keys.
    pub max_open: usize,
    /// Cap on open connections of one key.
    pub max_open_per_key: usize,
    /// Cap on idle connections of all keys.
    pub max_idle: usize,
    /// Cap on idle connections of one key.
    pub max_idle_per_key: usize,
    /// Idle connections kept ready per key (keys without their own value,
    /// see [`Pool::set_min_idle_for`](crate::Pool::set_min_idle_for)).
    pub min_idle: usize,
}

/// The methods that set one cap each.
macro_rules! with {
    ($($cap:ident)*) => {$(
        #[doc = concat!("With `", stringify!($cap), "` set to `n`.")]
        pub fn $cap(mut self, n: usize) -> Self {
            self.$cap = n;
            self
        }
    )*};
}

impl Limits {
    with!(max_open max_open_per_key max_idle max_idle_per_key min_idle);

    /// Refuses inconsistent caps with a [`ConfigError`] (an
    /// [`Error::Config`](crate::Error::Config)) naming the setting,
    /// as the builder does. `cap(setting, value)` describes a cap an error
    /// names as the bound another one broke (the builder names the setting
    /// a default came from).
    pub(crate) fn check(
        &self,
        cap: &dyn Fn(&'static str, usize) -> String,
    ) -> Result<(), ConfigError> {
        let l = *self;
        let keeps_nothing = " (a pool that keeps nothing idle does not pool)";
        let open = || Some((l.max_open, Limits::named("max_open", l.max_open)));
        let named = |setting, n| Some((n, cap(setting, n)));
        let idle_per_key = ("max_idle_per_key", l.max_idle_per_key, keeps_nothing);
        // Each cap in turn: at least 1, then within each cap above it.
        for ((setting, n, why), bound) in [
            (("max_open", l.max_open, ""), None),
            (("max_open_per_key", l.max_open_per_key, ""), open()),
            (("max_idle", l.max_idle, keeps_nothing), open()),
            (idle_per_key, named("max_open_per_key", l.max_open_per_key)),
            (idle_per_key, named("max_idle", l.max_idle)),
        ] {
            if n == 0 {
                let message = format!("must be at least 1{why}");
                return Err(ConfigError::new(setting, message));
            }
            if let Some((limit, bound)) = bound {
                at_most(setting, n, limit, n, bound)?;
            }
        }
        self.check_min_idle("min_idle", l.min_idle, cap)
    }

    /// Refuses a `min_idle` (of `setting`) above `max_idle_per_key`.
    pub(crate) fn check_min_idle(
        &self,
        setting: &'static str,
        n: usize,
        cap: &dyn Fn(&'static str, usize) -> String,
    ) -> Result<(), ConfigError> {
        let limit = self.max_idle_per_key;
        at_most(setting, n, limit, n, cap("max_idle_per_key", limit))
    }

    /// A cap as an error names it at run time: every value is explicit.
    pub(crate) fn named(setting: &'static str, n: usize) -> String {
        format!("`{setting}` ({n})")
    }
}

/// Refuses `n` of `setting` (`what` in the message) above `limit`, the cap
/// `bound` names.
pub(crate) fn at_most(
    setting: &'static str,
    n: usize,
    limit: usize,
    what: impl std::fmt::Display,
    bound: String,
) -> Result<(), ConfigError> {
    let refused = || ConfigError::new(setting, format!("({what}) must not exceed {bound}"));
    if n > limit { Err(refused()) } else { Ok(()) }
}
