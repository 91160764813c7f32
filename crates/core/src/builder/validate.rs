//! Turns a [`Builder`]'s settings into a [`Config`], or refuses them with an
//! [`Error::Config`](crate::Error::Config) naming the setting the user set:
//! a value its setter refused, or caps, `min_idle` and pre-warm counts
//! that do not fit together.

use super::Builder;
use crate::clock;
use crate::config::Config;
use crate::error::ConfigError;
use crate::limits::{Limits, at_most};
use crate::manager::Manager;

impl<M: Manager> Builder<M> {
    pub(crate) fn validate(&self) -> Result<Config, ConfigError> {
        if let Some(refused) = self.refused.first() {
            return Err(refused.clone());
        }
        let set = &self.set;
        let max_open = set.max_open;
        let max_open_per_key = set.max_open_per_key.unwrap_or(max_open);
        let max_idle = set.max_idle.unwrap_or(max_open);
        let max_idle_per_key = set
            .max_idle_per_key
            .unwrap_or(max_open_per_key.min(max_idle));
        // A cap the user left unset is named by the setting it defaults to:
        // a message names only settings the user can see in their code.
        let cap = |setting: &'static str, n: usize| {
            let (value, origin) = match setting {
                "max_open_per_key" => (set.max_open_per_key, "max_open"),
                "max_idle" => (set.max_idle, "max_open"),
                _ if max_open_per_key <= max_idle => (
                    set.max_idle_per_key,
                    set.max_open_per_key
                        .map_or("max_open", |_| "max_open_per_key"),
                ),
                _ => (set.max_idle_per_key, "max_idle"),
            };
            match value {
                Some(_) => Limits::named(setting, n),
                None => format!("`{origin}` ({n}), which `{setting}` defaults to"),
            }
        };
        let limits = Limits {
            max_open,
            max_open_per_key,
            max_idle,
            max_idle_per_key,
            min_idle: set.min_idle,
        };
        limits.check(&cap)?;
        let idle_per_key = || cap("max_idle_per_key", max_idle_per_key);
        for (key, n) in &self.min_idle_for {
            let what = format!("{n} for key {key:?}");
            at_most("min_idle_for", *n, max_idle_per_key, what, idle_per_key())?;
        }
        let method = self.initial_method;
        for (key, n) in &self.initial {
            let what = match method {
                "initial" => format!("{n}"),
                _ => format!("{n} for key {key:?}"),
            };
            let bound = format!(
                "{}: the extra connections would be closed as soon as they were opened",
                idle_per_key()
            );
            at_most(method, *n, max_idle_per_key, what, bound)?;
        }
        let total: usize = self.initial.iter().map(|(_, n)| n).sum();
        let what = format!("{total} in all");
        at_most(method, total, max_idle, what, cap("max_idle", max_idle))?;
        Ok(Config {
            limits,
            idle_timeout_ns: set.idle_timeout.map_or(u64::MAX, clock::nanos),
            health_idle_ns: match set.health_check {
                Some(std::time::Duration::ZERO) => 0,
                Some(d) => clock::nanos(d).max(1),
                None => u64::MAX,
            },
            set: set.clone(),
        })
    }
}
