//! [`RecyclingMethod`]: what a returned connection goes through before the
//! next borrower gets it.

use super::conn::PgConnection;
use super::error::PgError;

/// What `DISCARD ALL` does, statement by statement, as one batch for
/// [`RecyclingMethod::Custom`] where `DISCARD ALL` is refused (a proxy that
/// forbids it, or wraps every batch in a transaction block): statements
/// allowed inside a transaction block. Unlike `DISCARD ALL` (and
/// [`RecyclingMethod::Clean`]), run inside a transaction the borrower left
/// open it would not end it, and it deallocates the statement cache's
/// statements too: prefer `Clean` where you can.
pub const CLEAN_WITHOUT_DISCARD: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; \
    RESET ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD PLANS; DISCARD TEMP; \
    DISCARD SEQUENCES; DEALLOCATE ALL";

/// What [`RecyclingMethod::Clean`] runs on a session that may have
/// changed: what `DISCARD ALL` does, statement by statement, except that
/// only the statements of SQL's `PREPARE` are deallocated (the pool's
/// statement cache survives). Preceded by a `ROLLBACK` when a transaction
/// may be open. One batch, one round trip.
pub const RESET: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; \
    SELECT pg_advisory_unlock_all(); DISCARD PLANS; DISCARD TEMP; DISCARD SEQUENCES; \
    DO $connpool$DECLARE n text; BEGIN FOR n IN SELECT name FROM pg_prepared_statements \
    WHERE from_sql LOOP EXECUTE format('DEALLOCATE %I', n); END LOOP; END$connpool$";

/// What a [`PostgresManager`](super::PostgresManager) does with a
/// connection a borrower gave back, before it is lent again or parked (its
/// [`Manager::recycle`](connpool_core::Manager::recycle): in a task of its own,
/// off the borrower's path, bounded by the pool's `ping_timeout`; a
/// connection that fails it is closed as broken, never lent).
///
/// | method | what runs | cost per return | what reaches the next borrower |
/// |---|---|---|---|
/// | `Clean` (default) | nothing if the session is unchanged; else `ROLLBACK` if a transaction is open, then [`RESET`] | unchanged session: none (no task, no round trip, the statement cache kept); changed: a task and one round trip | nothing: `SET`s, `SET ROLE`, temporary tables, advisory locks, `LISTEN`s, SQL `PREPARE`d statements, open transactions and cursors are gone |
/// | `Always` | [`RESET`] after every return | a task and one round trip | as `Clean`, also what the tracking cannot see |
/// | `Fast` | nothing (a closed client is caught by `health`) | none | everything the last borrower left |
/// | `Verified` | `Client::check_connection` (a `Sync`) | a task and one round trip | everything the last borrower left, on a connection known alive |
/// | `Custom(sql)` | `sql` (a batch), and the statement cache is emptied | a task and one round trip | what `sql` leaves |
///
/// **How `Clean` knows.** The connection's socket is read as it goes by
/// (the session's protocol, not its data): every statement's SQL is
/// classified when it is sent, and every answer's transaction status is
/// noted. A session is unchanged when, since the last reset, every
/// statement began with `SELECT`, `INSERT`, `UPDATE`, `DELETE`, `WITH`,
/// `VALUES`, `TABLE`, `MERGE`, `SHOW` or a transaction command (`BEGIN`,
/// `COMMIT`, `ROLLBACK`, `SAVEPOINT`…, `SET LOCAL`, `SET TRANSACTION`),
/// called none of `set_config`, `pg_advisory_lock` (and its `_shared` and
/// `try_` forms: the `_xact_` ones end with the transaction) or
/// `dblink_connect`, said neither `TEMP` nor `TEMPORARY`, every request was
/// answered, the last answer said no transaction is open, and the server
/// reported no setting changed (`ParameterStatus`: `TimeZone`,
/// `DateStyle`, `application_name`… changed by any means, a `SET LOCAL`
/// of one included). Anything else (`SET`, `RESET`, `CREATE TEMP`,
/// `LISTEN`, `PREPARE`, `DECLARE`, `DO`, `CALL`, `COPY`, DDL…) resets the
/// session at its return.
///
/// Its limits, where `Always` is the choice: a function called from a
/// query that changes session state itself (a user-defined function that
/// runs `set_config` on a setting the server does not report, or takes an
/// advisory lock) is not seen; a statement
/// whose future a borrower dropped before it was sent is not seen either
/// (tokio-postgres sends it when its connection task gets to it, possibly
/// after the connection was lent again); sequence state (`currval`,
/// `lastval`) reaches the next borrower unless something else reset the
/// session. A session over TLS is read above TLS, where the protocol is
/// plain, and tracked the same way; one whose server refused TLS (with an
/// `sslmode` that lets it go on in plaintext) is not tracked: for such a
/// session `Clean` resets after every return, as `Always`. (A session
/// dialed with `target_session_attrs` is tracked like any other: the
/// manager checks its server's role itself.) An
/// [`after_connect`](connpool_core::Builder::after_connect) hook that runs `SET`
/// makes every session changed: put such settings in the base
/// configuration's `options` (`-c search_path=app`) instead. A tracked
/// plaintext session is dialed by the manager, so tokio-postgres does not
/// know its address: cancel its statements with
/// [`PgConnection::cancel_query`](super::PgConnection::cancel_query), not
/// through `Client::cancel_token`'s `cancel_query`.
///
/// **Why `Clean` is the default.** A pooled session that carries one
/// borrower's `SET search_path`, `SET ROLE`, temporary tables, advisory
/// locks or `LISTEN` to the next is a correctness bug that shows up far
/// from its cause (a query against the wrong schema, a lock never
/// released, notifications for someone else). `Clean` rules them out, and
/// costs nothing where borrowers leave the session as they found it (the
/// common case: queries, DML, `Client::transaction`). Choose `Fast` when no
/// borrower changes session state and the last round trip of a changed one
/// matters more than its leftovers.
///
/// **A transaction left open.** A connection returned inside a transaction
/// block (a bare `BEGIN` never committed, or a failed one) is rolled back
/// by the reset before the next borrower gets it.
/// (`Client::transaction` rolls back when dropped, before the return.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecyclingMethod {
    /// Trust `health` (`Client::is_closed`): no recycle at all.
    Fast,
    /// A round trip proves the connection alive.
    Verified,
    /// Reset the session when it may have changed (see the table).
    #[default]
    Clean,
    /// Reset the session after every return.
    Always,
    /// Runs this SQL (one batch, e.g. [`CLEAN_WITHOUT_DISCARD`]).
    Custom(String),
}

impl RecyclingMethod {
    /// Whether a returned `conn` is recycled: never with `Fast`, when its
    /// session may have changed with `Clean`, always else.
    pub(super) fn needs_recycle(&self, conn: &PgConnection) -> bool {
        match self {
            RecyclingMethod::Fast => false,
            RecyclingMethod::Clean => !conn.is_session_clean(),
            _ => true,
        }
    }

    /// Recycles `conn`.
    pub(super) async fn run(&self, conn: &mut PgConnection) -> Result<(), PgError> {
        match self {
            RecyclingMethod::Fast => Ok(()),
            RecyclingMethod::Verified => Ok(conn.check_connection().await?),
            RecyclingMethod::Clean | RecyclingMethod::Always => reset(conn).await,
            RecyclingMethod::Custom(sql) => {
                conn.clear_statement_cache();
                Ok(conn.batch_execute(sql).await?)
            }
        }
    }
}

/// [`RESET`], after a `ROLLBACK` if a transaction may be open; empties the
/// statement cache if a borrower may have deallocated its statements.
async fn reset(conn: &mut PgConnection) -> Result<(), PgError> {
    let (rollback, forgot) = match conn.session() {
        Some(session) => (session.in_transaction(), session.forgot()),
        None => (true, true),
    };
    if forgot {
        conn.clear_statement_cache();
    }
    if rollback {
        conn.batch_execute(&format!("ROLLBACK; {RESET}")).await?;
    } else {
        conn.batch_execute(RESET).await?;
    }
    if let Some(session) = conn.session() {
        session.reset();
    }
    Ok(())
}
