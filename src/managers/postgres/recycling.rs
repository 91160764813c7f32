//! [`RecyclingMethod`]: what a returned connection goes through before the
//! next borrower gets it.

use super::conn::PgConnection;
use super::error::PgError;

/// The SQL of [`RecyclingMethod::Clean`] statement by statement, as one
/// batch for [`RecyclingMethod::Custom`] where `DISCARD ALL` is refused (a
/// proxy that forbids it, or wraps every batch in a transaction block):
/// what `DISCARD ALL` does, in statements allowed inside a transaction
/// block. Unlike `DISCARD ALL`, run inside a transaction the borrower left
/// open it would not end it: prefer `Clean` where you can.
pub const CLEAN_WITHOUT_DISCARD: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; \
    RESET ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD PLANS; DISCARD TEMP; \
    DISCARD SEQUENCES; DEALLOCATE ALL";

/// What a [`PostgresManager`](super::PostgresManager) does with a
/// connection a borrower gave back, before it is lent again or parked (its
/// [`Manager::recycle`](crate::Manager::recycle): in a task of its own,
/// off the borrower's path, bounded by the pool's `ping_timeout`; a
/// connection that fails it is closed as broken, never lent).
///
/// | method | what runs | cost per return | what reaches the next borrower |
/// |---|---|---|---|
/// | `Fast` | nothing (a closed client is caught by `is_broken`) | none: no task, no round trip | everything the last borrower left |
/// | `Verified` | `Client::check_connection` (a `Sync`) | a task and one round trip | everything the last borrower left, on a connection known alive |
/// | `Clean` (default) | `DISCARD ALL`, and the statement cache is emptied | a task and one round trip; each cached statement is prepared again by the next borrower that uses it | nothing: `SET`s, temporary tables, advisory locks, `LISTEN`s, prepared statements, open cursors and cached plans are gone |
/// | `Custom(sql)` | `sql` (a batch), and the statement cache is emptied | a task and one round trip | what `sql` leaves |
///
/// **Why `Clean` is the default.** A pooled session that carries one
/// borrower's `SET search_path`, `SET ROLE`, temporary tables, advisory
/// locks or `LISTEN` to the next is a correctness bug that shows up far
/// from its cause (a query against the wrong schema, a lock never
/// released, notifications for someone else). `DISCARD ALL` rules all of
/// them out for one round trip that no borrower waits for. Choose `Fast`
/// when every borrower leaves the session as it found it (only
/// `Client::transaction`, no session-level `SET`) and the statement cache
/// must survive between borrowers.
///
/// **A transaction left open.** `DISCARD ALL` cannot run inside a
/// transaction block: a connection returned in the middle of one (a bare
/// `BEGIN` never committed) fails `Clean` and is closed, so its
/// transaction ends with it and nothing reaches the next borrower.
/// (`Client::transaction` rolls back when dropped, before the recycle.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecyclingMethod {
    /// Trust `is_broken` (`Client::is_closed`): no recycle at all.
    Fast,
    /// A round trip proves the connection alive.
    Verified,
    /// `DISCARD ALL`: the session is as new (see the table).
    #[default]
    Clean,
    /// Runs this SQL (one batch, e.g. [`CLEAN_WITHOUT_DISCARD`]).
    Custom(String),
}

impl RecyclingMethod {
    /// Whether there is anything to run (everything but `Fast`).
    pub(super) fn recycles(&self) -> bool {
        *self != RecyclingMethod::Fast
    }

    /// Recycles `conn`.
    pub(super) async fn run(&self, conn: &mut PgConnection) -> Result<(), PgError> {
        match self {
            RecyclingMethod::Fast => Ok(()),
            RecyclingMethod::Verified => Ok(conn.check_connection().await?),
            RecyclingMethod::Clean => {
                conn.statement_cache().clear();
                Ok(conn.batch_execute("DISCARD ALL").await?)
            }
            RecyclingMethod::Custom(sql) => {
                conn.statement_cache().clear();
                Ok(conn.batch_execute(sql).await?)
            }
        }
    }
}
