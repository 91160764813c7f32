//! Kernel TCP keepalive: its settings, their defaults, and the socket
//! options they become.

use std::time::Duration;

use socket2::TcpKeepalive;

/// Default idle time before the kernel sends the first keepalive probe
/// (`TCP_KEEPIDLE`): 60 s, curl's default. The system default (7200 s on
/// Linux) leaves a silently dead peer undetected for over two hours; 60 s is
/// below the idle limits of common NATs, firewalls and cloud load balancers
/// (AWS NLB 350 s, Azure LB 4 min, consumer NATs often 2–5 min), and costs one
/// empty segment a minute on a connection that carries nothing else.
pub const TCP_KEEPALIVE_TIME: Duration = Duration::from_secs(60);
/// Default time between unanswered keepalive probes (`TCP_KEEPINTVL`): 10 s.
/// Once the first probe goes unanswered the peer is likely gone; probing
/// every 10 s declares it dead quickly while riding out a lost segment or two.
pub const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Default number of unanswered probes before the kernel drops the
/// connection (`TCP_KEEPCNT`): 3, so a single or double packet loss never
/// kills a healthy connection, and a dead peer is declared within
/// 60 + 3 × 10 = 90 s of silence.
pub const TCP_KEEPALIVE_RETRIES: u32 = 3;

/// Kernel TCP keepalive settings, applied to every connection through
/// [`socket2::TcpKeepalive`] (and enabling `SO_KEEPALIVE`), and the
/// `TCP_USER_TIMEOUT` they imply: see
/// [`TcpManager::tcp_keepalive`](super::TcpManager::tcp_keepalive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcpKeepaliveConfig {
    /// Idle time before the first probe (`TCP_KEEPIDLE`; `TCP_KEEPALIVE` on macOS).
    pub(crate) time: Duration,
    /// Time between unanswered probes (`TCP_KEEPINTVL`).
    pub(crate) interval: Duration,
    /// Unanswered probes before the connection is dropped (`TCP_KEEPCNT`).
    pub(crate) retries: u32,
}

impl Default for TcpKeepaliveConfig {
    /// 60 s / 10 s / 3 ([`TCP_KEEPALIVE_TIME`],
    /// [`TCP_KEEPALIVE_INTERVAL`], [`TCP_KEEPALIVE_RETRIES`]).
    fn default() -> Self {
        Self {
            time: TCP_KEEPALIVE_TIME,
            interval: TCP_KEEPALIVE_INTERVAL,
            retries: TCP_KEEPALIVE_RETRIES,
        }
    }
}

impl TcpKeepaliveConfig {
    /// `TCP_USER_TIMEOUT`: how long the probes take to declare a peer dead
    /// (`time + interval × retries`, each raised as the kernel raises it).
    #[cfg_attr(
        not(any(target_os = "android", target_os = "fuchsia", target_os = "linux")),
        allow(dead_code)
    )]
    pub(super) fn user_timeout(self) -> Duration {
        let at_least_a_second = |d: Duration| d.max(Duration::from_secs(1));
        at_least_a_second(self.time) + at_least_a_second(self.interval) * self.retries.max(1)
    }

    #[allow(unused_mut)]
    pub(super) fn to_socket2(self) -> TcpKeepalive {
        let at_least_a_second = |d: Duration| d.max(Duration::from_secs(1));
        let mut ka = TcpKeepalive::new().with_time(at_least_a_second(self.time));
        #[cfg(any(
            target_os = "android",
            target_os = "dragonfly",
            target_os = "freebsd",
            target_os = "fuchsia",
            target_os = "illumos",
            target_os = "ios",
            target_os = "visionos",
            target_os = "linux",
            target_os = "macos",
            target_os = "netbsd",
            target_os = "tvos",
            target_os = "watchos",
            target_os = "windows",
            target_os = "cygwin",
        ))]
        {
            ka = ka
                .with_interval(at_least_a_second(self.interval))
                .with_retries(self.retries.max(1));
        }
        ka
    }
}
