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

impl Limits {
    /// With `max_open` set to `n`.
    pub fn max_open(mut self, n: usize) -> Self {
        self.max_open = n;
        self
    }

    /// With `max_open_per_key` set to `n`.
    pub fn max_open_per_key(mut self, n: usize) -> Self {
        self.max_open_per_key = n;
        self
    }

    /// With `max_idle` set to `n`.
    pub fn max_idle(mut self, n: usize) -> Self {
        self.max_idle = n;
        self
    }

    /// With `max_idle_per_key` set to `n`.
    pub fn max_idle_per_key(mut self, n: usize) -> Self {
        self.max_idle_per_key = n;
        self
    }

    /// With `min_idle` set to `n`.
    pub fn min_idle(mut self, n: usize) -> Self {
        self.min_idle = n;
        self
    }

    /// Refuses inconsistent caps with a [`ConfigError`] (an
    /// [`Error::Config`](crate::Error::Config)) naming the setting,
    /// as the builder does. `cap(setting, value)` describes a cap an error
    /// names as the bound another one broke (the builder names the setting
    /// a default came from).
    pub(crate) fn check(
        &self,
        cap: &dyn Fn(&'static str, usize) -> String,
    ) -> Result<(), ConfigError> {
        let Limits {
            max_open,
            max_open_per_key,
            max_idle,
            max_idle_per_key,
            min_idle,
        } = *self;
        const KEEPS_NOTHING: &str = " (a pool that keeps nothing idle does not pool)";
        let at_least_one = |setting: &'static str, n: usize, why: &str| match n {
            0 => Err(ConfigError::new(
                setting,
                format!("must be at least 1{why}"),
            )),
            _ => Ok(()),
        };
        // `bound` is the cap as `cap` names it.
        let at_most = |setting: &'static str, n: usize, limit: usize, bound: String| match n > limit
        {
            true => Err(ConfigError::new(
                setting,
                format!("({n}) must not exceed {bound}"),
            )),
            false => Ok(()),
        };
        let max_open_named = format!("`max_open` ({max_open})");
        at_least_one("max_open", max_open, "")?;
        at_least_one("max_open_per_key", max_open_per_key, "")?;
        at_most(
            "max_open_per_key",
            max_open_per_key,
            max_open,
            max_open_named.clone(),
        )?;
        at_least_one("max_idle", max_idle, KEEPS_NOTHING)?;
        at_most("max_idle", max_idle, max_open, max_open_named)?;
        at_least_one("max_idle_per_key", max_idle_per_key, KEEPS_NOTHING)?;
        at_most(
            "max_idle_per_key",
            max_idle_per_key,
            max_open_per_key,
            cap("max_open_per_key", max_open_per_key),
        )?;
        at_most(
            "max_idle_per_key",
            max_idle_per_key,
            max_idle,
            cap("max_idle", max_idle),
        )?;
        self.check_min_idle("min_idle", min_idle, cap)
    }

    /// Refuses a `min_idle` (of `setting`) above `max_idle_per_key`.
    pub(crate) fn check_min_idle(
        &self,
        setting: &'static str,
        n: usize,
        cap: &dyn Fn(&'static str, usize) -> String,
    ) -> Result<(), ConfigError> {
        match n > self.max_idle_per_key {
            true => Err(ConfigError::new(
                setting,
                format!(
                    "({n}) must not exceed {}",
                    cap("max_idle_per_key", self.max_idle_per_key)
                ),
            )),
            false => Ok(()),
        }
    }

    /// A cap as an error names it at run time: every value is explicit.
    pub(crate) fn named(setting: &'static str, n: usize) -> String {
        format!("`{setting}` ({n})")
    }
}
