//! Turns a [`Builder`]'s settings into a [`Config`], or refuses them with an
//! [`Error::Config`](crate::Error::Config) naming the setting the user set:
//! a value its setter refused, or caps, `min_idle` and pre-warm counts
//! that do not fit together.

use super::Builder;
use crate::clock;
use crate::config::Config;
use crate::error::ConfigError;
use crate::limits::Limits;
use crate::manager::Manager;

impl<M: Manager> Builder<M> {
    pub(crate) fn validate(&self) -> Result<Config, ConfigError> {
        if let Some(refused) = self.refused.first() {
            return Err(refused.clone());
        }
        let max_open = self.set.max_open;
        let max_open_per_key = self.set.max_open_per_key.unwrap_or(max_open);
        let max_idle = self.set.max_idle.unwrap_or(max_open);
        let max_idle_per_key = self
            .set
            .max_idle_per_key
            .unwrap_or(max_open_per_key.min(max_idle));
        // A cap the user left unset is named by the setting it defaults to:
        // a message names only settings the user can see in their code.
        let cap = |setting: &'static str, n: usize| {
            let (set, origin) = match setting {
                "max_open_per_key" => (self.set.max_open_per_key.is_some(), "max_open"),
                "max_idle" => (self.set.max_idle.is_some(), "max_open"),
                _ if max_open_per_key <= max_idle => (
                    self.set.max_idle_per_key.is_some(),
                    self.set
                        .max_open_per_key
                        .map_or("max_open", |_| "max_open_per_key"),
                ),
                _ => (self.set.max_idle_per_key.is_some(), "max_idle"),
            };
            match set {
                true => format!("`{setting}` ({n})"),
                false => format!("`{origin}` ({n}), which `{setting}` defaults to"),
            }
        };
        let limits = Limits {
            max_open,
            max_open_per_key,
            max_idle,
            max_idle_per_key,
            min_idle: 0,
        };
        limits.check(&cap)?;
        limits.check_min_idle("min_idle", self.set.min_idle, &cap)?;
        for (key, n) in &self.min_idle_for {
            if *n > max_idle_per_key {
                return Err(ConfigError::new(
                    "min_idle_for",
                    format!(
                        "({n} for key {key:?}) must not exceed {}",
                        cap("max_idle_per_key", max_idle_per_key)
                    ),
                ));
            }
        }
        let mut total = 0usize;
        let method = self.initial_method;
        for (key, n) in &self.initial {
            if *n > max_idle_per_key {
                let what = match method {
                    "initial" => format!("{n}"),
                    _ => format!("{n} for key {key:?}"),
                };
                return Err(ConfigError::new(
                    method,
                    format!(
                        "({what}) must not exceed {}: the extra connections would be closed \
                         as soon as they were opened",
                        cap("max_idle_per_key", max_idle_per_key)
                    ),
                ));
            }
            total += n;
        }
        if total > max_idle {
            return Err(ConfigError::new(
                method,
                format!(
                    "({total} in all) must not exceed {}",
                    cap("max_idle", max_idle)
                ),
            ));
        }
        Ok(Config {
            max_open_per_key,
            max_idle,
            max_idle_per_key,
            idle_timeout_ns: self.set.idle_timeout.map_or(u64::MAX, clock::nanos),
            health_idle_ns: match self.set.health_check {
                Some(std::time::Duration::ZERO) => 0,
                Some(d) => clock::nanos(d).max(1),
                None => u64::MAX,
            },
            set: self.set.clone(),
        })
    }
}
