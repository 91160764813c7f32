//! Kernel TCP keepalive: [`TcpKeepaliveConfig`] and its defaults.

use std::time::Duration;

use socket2::TcpKeepalive;

/// Default idle time before the kernel sends the first keepalive probe
/// (`TCP_KEEPIDLE`): 60 s, curl's default. The system default (7200 s on
/// Linux) leaves a silently dead peer undetected for over two hours; 60 s is
/// below the idle limits of common NATs, firewalls and cloud load balancers
/// (AWS NLB 350 s, Azure LB 4 min, consumer NATs often 2–5 min), and costs one
/// empty segment a minute on a connection that carries nothing else.
pub const DEFAULT_KEEPALIVE_TIME: Duration = Duration::from_secs(60);
/// Default time between unanswered keepalive probes (`TCP_KEEPINTVL`): 10 s.
/// Once the first probe goes unanswered the peer is likely gone; probing
/// every 10 s declares it dead quickly while riding out a lost segment or two.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Default number of unanswered probes before the kernel drops the
/// connection (`TCP_KEEPCNT`): 3, so a single or double packet loss never
/// kills a healthy connection, and a dead peer is declared within
/// 60 + 3 × 10 = 90 s of silence.
pub const DEFAULT_KEEPALIVE_RETRIES: u32 = 3;

/// Kernel TCP keepalive settings, applied to every connection through
/// [`socket2::TcpKeepalive`] (and enabling `SO_KEEPALIVE`).
///
/// Kernel keepalive probes only an *idle* socket (nothing sent and unacked).
/// It complements the pool's own background keepalive (an app-level ping of
/// idle pooled connections, see [`Ping`](super::Ping)): it also watches
/// connections that are lent while their user waits on a read, and keeps NAT
/// mappings of long-lived quiet connections alive.
///
/// A socket with data in flight is never probed: a write to a vanished
/// peer would be retransmitted for TCP's own minutes (about 15 on Linux).
/// So on Linux the same settings also set `TCP_USER_TIMEOUT` to
/// `time + interval × retries` (90 s by default), as grpc-go does: a
/// write unacknowledged for that long fails the connection, and the
/// deadline a dead peer is found by is the same whether the connection
/// was quiet or busy. (With both set, Linux closes an idle connection at
/// that same point, so the probes' own verdict is unchanged.) It sends
/// nothing: a socket option, checked by the kernel's own retransmission
/// timer. The kernel counts in whole seconds
/// (Windows in milliseconds): sub-second parts are dropped, and values are
/// raised to at least 1 s (1 probe for `retries`), which every system accepts.
///
/// On systems where `socket2` cannot set `interval` or `retries` (OpenBSD,
/// Solaris, Haiku…), those fields are ignored and the system's values apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpKeepaliveConfig {
    /// Idle time before the first probe (`TCP_KEEPIDLE`; `TCP_KEEPALIVE` on macOS).
    pub time: Duration,
    /// Time between unanswered probes (`TCP_KEEPINTVL`).
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped (`TCP_KEEPCNT`).
    pub retries: u32,
}

impl Default for TcpKeepaliveConfig {
    /// 60 s / 10 s / 3 ([`DEFAULT_KEEPALIVE_TIME`],
    /// [`DEFAULT_KEEPALIVE_INTERVAL`], [`DEFAULT_KEEPALIVE_RETRIES`]).
    fn default() -> Self {
        Self {
            time: DEFAULT_KEEPALIVE_TIME,
            interval: DEFAULT_KEEPALIVE_INTERVAL,
            retries: DEFAULT_KEEPALIVE_RETRIES,
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
