//! **Points**: where the features attach to the hand-off. The hand-off's
//! transitions call these, and only these, for what a feature adds to
//! them; each calls the features concerned, in order. A feature's own
//! steps (a resize, a keepalive ping's return) are transitions of its own,
//! in its file.
//!
//! | point | when | features |
//! |---|---|---|
//! | [`on_nothing_idle`](Transition::on_nothing_idle) | a checkout finds nothing to lend | backoff: fail at once, or wait for a probe |
//! | [`on_dialed`](Transition::on_dialed) | a dial made a connection | backoff: ends |
//! | [`on_dial_failed`](Transition::on_dial_failed) | a dial failed | backoff: begins or grows |
//! | [`on_queued`](Transition::on_queued) | a getter queued at the pool's cap gets its turn | backoff: fail it |
//! | [`on_refused`](Transition::on_refused) | a borrower returns a new connection refused | backoff: a failed dial, and a trial |
//! | [`on_returned`](Transition::on_returned) | a return ends | server-changed clearing; backoff: the trial ends |
//! | [`on_key_due`](Transition::on_key_due) | a feature's deadline for a key | backoff: probe; `min_idle`: refill |
//! | [`on_fewer_idle`](Transition::on_fewer_idle) | a key may have fewer idle connections | `min_idle`: refill |
//! | [`on_pool_due`](Transition::on_pool_due) | a feature's deadline for the pool | leak reports: scan |

use crate::engine::Transition;
use crate::engine::checkout::Round;
use crate::engine::{KeyId, WaiterId};
use crate::error::{ConnectError, Error};
use crate::manager::Manager;

impl<M: Manager> Transition<'_, M> {
    /// A checkout of `id` found nothing to lend: the getter may wait, or
    /// fails with this error.
    pub(crate) fn on_nothing_idle(
        &mut self,
        id: KeyId,
        round: Round,
    ) -> Result<(), Error<M::Error>> {
        self.may_wait(id, round)
    }

    /// A dial of `id` made a connection. Returns whether every getter
    /// queued for a dial of the key dials now.
    pub(crate) fn on_dialed(&mut self, id: KeyId) -> bool {
        self.connected(id)
    }

    /// A dial of `id` failed with `err`.
    pub(crate) fn on_dial_failed(&mut self, id: KeyId, err: ConnectError<M::Error>) {
        self.dial_failed(id, err);
    }

    /// The waiter `w` of `id`, queued at the pool's cap, has its turn to
    /// dial. Returns whether a feature served it instead (with an error).
    pub(crate) fn on_queued(&mut self, w: WaiterId, id: KeyId) -> bool {
        self.turned_away(w, id)
    }

    /// A borrower returns a new connection of `id` whose server closed it
    /// under its first request.
    pub(crate) fn on_refused(&mut self, id: KeyId) {
        self.refused(id, ConnectError::Refused);
    }

    /// A return of a connection of `id` ended: the key is cleared if
    /// `clear` (its server changed); the connection `served` its borrower.
    #[inline]
    pub(crate) fn on_returned(&mut self, id: KeyId, clear: bool, served: bool) {
        if clear {
            self.clear_key(id);
        }
        if served {
            self.served(id);
        }
    }

    /// A feature's deadline for `id`, a live key.
    pub(crate) fn on_key_due(&mut self, id: KeyId) {
        self.backoff_due(id);
        self.refill(id);
    }

    /// `id` may have fewer idle connections than before (a checkout, a
    /// close, a dial that served a getter): the end of every transition
    /// that may take a key below its `min_idle`.
    #[inline]
    pub(crate) fn on_fewer_idle(&mut self, id: KeyId) {
        self.refill(id);
    }

    /// A feature's deadline for the pool.
    pub(crate) fn on_pool_due(&mut self) {
        self.scan_leaks();
    }
}
