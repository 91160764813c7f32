//! **Close** ([`Transition::close`]): serves every waiter with `Closed`,
//! closes every idle connection; connections lent, out in a task or being
//! dialed are closed when they come back. The pool is drained once nothing is open
//! and no `Manager::close` runs any more.

use super::points::{Event, Points};
use super::{State, Transition};
use crate::engine::KeyId;
use crate::error::Error;
use crate::manager::Manager;
use crate::reason::CloseReason;

impl<M: Manager, P: Points<M>> State<M, P> {
    /// A dial of `id` made a connection that will not be lent (broken on
    /// arrival): it is closed outside the pool's counts of open connections.
    pub(crate) fn count_close_of_dialed(&mut self, id: KeyId) {
        self.tally(id, Event::Closed(CloseReason::Broken));
        self.closing += 1;
    }

    /// A `Manager::close` task ended; true if the pool is now drained.
    pub(crate) fn close_finished(&mut self) -> bool {
        self.closing -= 1;
        self.is_drained()
    }

    /// Whether nothing is dialing, out in a task or closing.
    pub(crate) fn is_settled(&self) -> bool {
        let counts = self.counts();
        counts.dialing == 0 && counts.out == 0 && self.closing == 0
    }

    pub(crate) fn is_drained(&self) -> bool {
        self.closed && self.counts().open == 0 && self.closing == 0
    }
}

impl<M: Manager, P: Points<M>> Transition<'_, M, P> {
    /// Closes the pool (see module docs).
    pub(crate) fn close(mut self) {
        // Closed already: `finish` tells whether it is drained.
        if self.st.closed {
            return self.finish();
        }
        self.st.closed = true;
        self.fx.rearm_timer(); // the maintenance task ends
        for w in self.st.waiters.live_ids() {
            self.serve(w, Err(Error::Closed));
        }
        // Nobody waits any more: the queues empty.
        self.st.tidy_global_queue();
        self.st.deadlines.clear();
        for id in self.st.keys.ids() {
            self.st.keys.get_mut(id).tidy_queues(|_| false);
            self.st.maybe_unused.push(id);
        }
        while let Some((id, conn)) = self.st.records.pop_lru() {
            let conn = conn.conn.expect("an idle connection is present");
            self.close_conn(id, conn, CloseReason::PoolClosed);
        }
        self.finish();
    }
}
