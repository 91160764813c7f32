//! [`RedisError`]: why a Redis dial, ping or reset failed.

use std::fmt;
use std::io;

/// Why a [`RedisManager`](super::RedisManager) dial, ping or reset failed,
/// or why its URL was refused. Its message says all (what failed, where,
/// and the cause, once), so its [`source`](std::error::Error::source) is
/// `None`. No password is ever in it. (redis-rs's own error is
/// [`redis::RedisError`], re-exported as `managers::redis::redis::RedisError`;
/// this one wraps it where the server answered.)
#[derive(Debug)]
#[non_exhaustive]
pub enum RedisError {
    /// The URL was refused (not `redis://` or `rediss://`, a Unix socket,
    /// `rediss` without the `tls` feature, certificate checks turned off).
    Url(String),
    /// The TCP connection, or the TLS handshake, failed.
    Connect(io::Error),
    /// The server refused the connection's setup (`HELLO`, `AUTH`,
    /// `SELECT`), or did not answer it.
    Setup {
        /// `host:port`.
        server: String,
        /// What the driver said (the server's words for a refusal).
        error: redis::RedisError,
    },
    /// A `PING` or the reset of a returned connection failed.
    Command {
        /// `host:port`.
        server: String,
        /// `PING` or `RESET`.
        command: &'static str,
        /// What the driver said.
        error: redis::RedisError,
    },
    /// No Sentinel said where the master is, or the server it named is
    /// not a master (its `ROLE`).
    Sentinel {
        /// The master's name.
        master: String,
        /// What the last Sentinel (or the server) said.
        reason: String,
    },
}

impl RedisError {
    /// The driver's error, if the failure came from redis-rs.
    pub fn redis_error(&self) -> Option<&redis::RedisError> {
        match self {
            RedisError::Setup { error, .. } | RedisError::Command { error, .. } => Some(error),
            RedisError::Url(_) | RedisError::Connect(_) | RedisError::Sentinel { .. } => None,
        }
    }
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisError::Url(why) => write!(f, "invalid Redis URL: {why}"),
            RedisError::Connect(e) => e.fmt(f),
            RedisError::Setup { server, error } => {
                write!(f, "setting up the connection to {server} failed: {error}")
            }
            RedisError::Command {
                server,
                command,
                error,
            } => write!(f, "{command} on {server} failed: {error}"),
            RedisError::Sentinel { master, reason } => {
                write!(f, "finding the Redis master {master:?} failed: {reason}")
            }
        }
    }
}

impl std::error::Error for RedisError {}
