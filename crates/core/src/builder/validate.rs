//! Turns a [`Builder`]'s settings into a [`Config`], or refuses them with an
//! [`Error::Config`](crate::Error::Config) naming the setting the user set.

use super::Builder;
use crate::clock;
use crate::config::Config;
use crate::error::ConfigError;
use crate::limits::Limits;
use crate::manager::Manager;

// Bounds that keep a connection's life record small (its counts are narrow).
const MAX_USES_LIMIT: u64 = u32::MAX as u64;
const MAX_MISSED_LIMIT: u32 = u16::MAX as u32;
const MAX_BORROWERS_LIMIT: usize = u16::MAX as usize;

// A zero `checkout_timeout` may be meant as no bound: its refusal names the
// way to say that.
const WAIT_FOREVER: &str = " (use `None` to wait forever)";

/// Refuses a count of `field` outside `1..=max`, naming the field.
fn count_in_range(field: &'static str, value: u64, max: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::new(field, "must be at least 1"))
    } else if value > max {
        Err(ConfigError::new(
            field,
            format!("({value}) must be at most {max}"),
        ))
    } else {
        Ok(())
    }
}

impl<M: Manager> Builder<M> {
    pub(crate) fn validate(&self) -> Result<Config, ConfigError> {
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
        if self.set.max_waiters == Some(0) {
            return Err(ConfigError::new(
                "max_waiters",
                "must be at least 1 (a getter waits for its own dial; use `None` for no cap)",
            ));
        }
        let set = &self.set;
        let positive = [
            ("connect_timeout", Some(set.connect_timeout), ""),
            ("checkout_timeout", set.checkout_timeout, WAIT_FOREVER),
            ("idle_timeout", set.idle_timeout, ""),
            ("max_lifetime", set.max_lifetime, ""),
            ("ping_timeout", Some(set.ping_timeout), ""),
            ("keepalive_interval", set.keepalive_interval, ""),
            ("leak_detection_threshold", set.leak_detection_threshold, ""),
            ("acquire_slow_threshold", set.acquire_slow_threshold, ""),
        ];
        for (field, d, hint) in positive {
            if d.is_some_and(|d| d.is_zero()) {
                let message = format!("must be greater than zero{hint}");
                return Err(ConfigError::new(field, message));
            }
        }
        if !(0.0..1.0).contains(&self.set.jitter) {
            return Err(ConfigError::new(
                "jitter",
                format!("({}) must be in [0, 1)", self.set.jitter),
            ));
        }
        if let Some(n) = self.set.max_uses {
            count_in_range("max_uses", n, MAX_USES_LIMIT)?;
        }
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
        count_in_range(
            "keepalive_max_missed",
            self.set.keepalive_max_missed.into(),
            MAX_MISSED_LIMIT.into(),
        )?;
        if let Some(b) = self.set.backoff {
            if b.base.is_zero() {
                return Err(ConfigError::new(
                    "backoff",
                    "base must be greater than zero (use `no_backoff()` for none)",
                ));
            }
            if b.base > b.cap {
                return Err(ConfigError::new(
                    "backoff",
                    format!("base ({:?}) must not exceed cap ({:?})", b.base, b.cap),
                ));
            }
        }
        if let Some(n) = self.set.max_connecting {
            count_in_range("max_connecting", n as u64, u64::MAX)?;
        }
        count_in_range(
            "max_borrowers",
            self.set.max_borrowers as u64,
            MAX_BORROWERS_LIMIT as u64,
        )?;
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
