//! [`Hosts`]: which hosts of a multi-host configuration were found
//! read-only, so that the dials after a failover do not go back to the
//! demoted primary that refused a write (Npgsql's host status cache,
//! pgjdbc's `hostRecheckSeconds`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::target::Target;

/// The hosts of a manager's configuration that refused a write (`25006`)
/// or whose session a ping found read-only, in the order they were found
/// so. Shared by the manager's clones and its connections.
///
/// Invariant: a host is listed once, and only until a dial finds it
/// read-write again. A dial that wants writes (`target_session_attrs` of
/// `any` or `read-write`) tries the hosts not listed first, in the
/// configuration's order, then the listed ones, the earliest found first.
/// Once a host was found read-only, each session is checked before it is
/// taken (`SHOW transaction_read_only`, as libpq asks; `any` then acts as
/// libpq's `prefer-standby` does the other way round): a host promoted
/// since is taken and dropped from the list; a read-only one is taken
/// only if no host will take writes, as `any` allows.
#[derive(Debug, Default)]
pub(super) struct Hosts {
    read_only: Mutex<Vec<Target>>,
    /// A host was found read-only: the sessions that take writes are
    /// told apart from then on.
    seen_read_only: AtomicBool,
    /// When a session's write was last refused (`25006`).
    refused_at: Mutex<Option<Instant>>,
}

/// How long after a refused write a dial that finds only read-only hosts
/// fails instead of taking one (pgjdbc's and Npgsql's host recheck time):
/// the session would be refused again at its first write.
const RECHECK: Duration = Duration::from_secs(10);

impl Hosts {
    /// A session of `target` refused a write, or a ping found it
    /// read-only.
    pub(super) fn refused_write(&self, target: &Target) {
        *self.refused_at.lock() = Some(Instant::now());
        self.found_read_only(target);
    }

    /// How long ago a write was refused, if within [`RECHECK`].
    pub(super) fn refused_lately(&self) -> Option<Duration> {
        let ago = self.refused_at.lock().map(|at| at.elapsed())?;
        (ago < RECHECK).then_some(ago)
    }

    /// A dial found `target` read-only.
    pub(super) fn found_read_only(&self, target: &Target) {
        self.seen_read_only.store(true, Ordering::Relaxed);
        let mut read_only = self.read_only.lock();
        if !read_only.contains(target) {
            read_only.push(target.clone());
        }
    }

    /// `target` was found read-write.
    pub(super) fn found_read_write(&self, target: &Target) {
        self.read_only.lock().retain(|t| t != target);
    }

    /// `targets`, in the configuration's order, in the order to dial them
    /// for a session that takes writes, and whether each session is to be
    /// checked before it is taken (once a host was found read-only).
    pub(super) fn dial_order(&self, targets: Vec<Target>) -> (Vec<Target>, bool) {
        let read_only = self.read_only.lock();
        let check = self.seen_read_only.load(Ordering::Relaxed);
        let position = |t: &Target| read_only.iter().position(|r| r == t);
        let mut order = targets;
        // Stable: the hosts not found read-only keep their order, first.
        order.sort_by_key(|t| position(t).map_or(0, |p| p + 1));
        (order, check)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn tcp(port: u16) -> Target {
        Target::Tcp(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn hosts_found_read_only_are_dialed_last_and_checked() {
        let hosts = Hosts::default();
        let all = || vec![tcp(1), tcp(2), tcp(3)];
        assert_eq!(hosts.dial_order(all()), (all(), false));
        hosts.found_read_only(&tcp(2));
        hosts.found_read_only(&tcp(1));
        hosts.found_read_only(&tcp(2));
        assert_eq!(
            hosts.dial_order(all()),
            (vec![tcp(3), tcp(2), tcp(1)], true),
            "the others first, then the earliest found read-only, each checked"
        );
        hosts.found_read_write(&tcp(2));
        assert_eq!(
            hosts.dial_order(all()),
            (vec![tcp(2), tcp(3), tcp(1)], true)
        );
        assert_eq!(hosts.refused_lately(), None, "found by dials only");
        hosts.refused_write(&tcp(3));
        assert!(hosts.refused_lately().is_some());
        assert_eq!(
            hosts.dial_order(all()),
            (vec![tcp(2), tcp(1), tcp(3)], true)
        );
    }
}
