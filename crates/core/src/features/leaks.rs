//! **Leak detection** ([`Transition::scan_leaks`]): with a
//! `leak_detection_threshold`, every exclusive lending stamps the
//! connection's record with the time and the `get`'s call site (the
//! checkout writes the record anyway). The maintenance task scans the
//! records of lent connections at a `Due::Pool` deadline: a connection
//! held past the threshold is reported (an `Action::Leak`, logged outside
//! the lock) and its site cleared, so it is reported once per lending. The
//! next scan is due when the connection lent longest ago among those not
//! reported passes the threshold, or a threshold from now if none is lent,
//! but never sooner than a quarter threshold from now: a pool lending all
//! the time does not scan all the time. No per-borrow timer, heap entry or
//! task; a scan is O(connection records), at most four per threshold.

use super::Transition;
use super::{Act, Action};
use crate::engine::Due;
use crate::manager::Manager;

impl<M: Manager> Transition<'_, M> {
    /// Schedules the first scan, if leak detection is on.
    pub(crate) fn start_leak_scans(mut self) {
        if let Some(d) = self.config.set.leak_detection_threshold
            && !self.st.closed
        {
            self.schedule(self.now + d, Due::Pool);
        }
        self.finish();
    }

    /// Reports the connections held past the threshold and schedules the
    /// next scan (see the module docs).
    pub(crate) fn scan_leaks(&mut self) {
        let Some(threshold) = self.config.set.leak_detection_threshold else {
            return;
        };
        let now = self.now;
        let mut next = now + threshold;
        let mut found = Vec::new();
        self.st.records.for_each_held(|id, conn| {
            let Some(site) = conn.site else {
                return;
            };
            let due = conn.since + threshold;
            if due <= now {
                conn.site = None;
                found.push((id, site, now.saturating_duration_since(conn.since)));
            } else {
                next = next.min(due);
            }
        });
        for (id, site, held) in found {
            self.st.tally_with(id, |c| c.leaks += 1);
            let leak = Act::Leak(self.st.keys.get(id).key.clone(), site, held);
            self.fx.actions.push(Action::Ext(leak));
        }
        let next = next.max(now + threshold / 4);
        self.schedule(next, Due::Pool);
    }
}
