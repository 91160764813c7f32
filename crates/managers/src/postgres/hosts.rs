//! [`Hosts`]: which hosts of a multi-host configuration were found
//! read-only, so that the dials after a failover do not go back to the
//! demoted primary that refused a write (Npgsql's host status cache,
//! pgjdbc's `hostRecheckSeconds`).

use parking_lot::Mutex;

use super::dial::Target;

/// The hosts of a manager's configuration that refused a write (`25006`)
/// or whose session a ping found read-only, in the order they were found
/// so. Shared by the manager's clones and its connections.
///
/// Invariant: a host is listed once, and only until a dial finds it
/// read-write again. A dial that wants writes (`target_session_attrs` of
/// `any` or `read-write`) tries the hosts not listed first, in the
/// configuration's order, then the listed ones, the earliest found first,
/// each checked (`SHOW transaction_read_only`, as libpq asks): a host
/// promoted since is taken and dropped from the list; one still read-only
/// is taken only if no host will take writes, as `any` allows.
#[derive(Debug, Default)]
pub(super) struct Hosts {
    read_only: Mutex<Vec<Target>>,
}

impl Hosts {
    /// `target` refused a write, or was found read-only.
    pub(super) fn found_read_only(&self, target: &Target) {
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
    /// for a session that takes writes, each with whether it is to be
    /// checked first (it was found read-only).
    pub(super) fn dial_order(&self, targets: Vec<Target>) -> Vec<(Target, bool)> {
        let read_only = self.read_only.lock();
        if read_only.is_empty() {
            return targets.into_iter().map(|t| (t, false)).collect();
        }
        let position = |t: &Target| read_only.iter().position(|r| r == t);
        let mut order: Vec<(Target, bool)> = targets
            .into_iter()
            .map(|t| {
                let known = position(&t).is_some();
                (t, known)
            })
            .collect();
        // Stable: the hosts not found read-only keep their order, first.
        order.sort_by_key(|(t, known)| known.then(|| position(t)));
        order
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
        assert_eq!(
            hosts.dial_order(all()),
            vec![(tcp(1), false), (tcp(2), false), (tcp(3), false)]
        );
        hosts.found_read_only(&tcp(2));
        hosts.found_read_only(&tcp(1));
        hosts.found_read_only(&tcp(2));
        assert_eq!(
            hosts.dial_order(all()),
            vec![(tcp(3), false), (tcp(2), true), (tcp(1), true)],
            "the others first, then the earliest found read-only"
        );
        hosts.found_read_write(&tcp(2));
        assert_eq!(
            hosts.dial_order(all()),
            vec![(tcp(2), false), (tcp(3), false), (tcp(1), true)]
        );
    }
}
