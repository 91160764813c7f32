//! [`SharedTransaction`]: a transaction that takes a shared connection's
//! session out of sharing until it is clean again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::OwnedRwLockWriteGuard;
use tokio_postgres::{Row, SimpleQueryMessage, Statement};

use super::classify::{Effect, classify, forgetting, unshareable};
use super::error::{PgError, Refusal};
use super::recycling::RESET;
use super::shared::{Params, Shared, SharedPgConnection, ToSharedStatement, statement_methods};

/// A transaction on a shared connection, holding its session alone. Made
/// by [`SharedPgConnection::transaction`].
///
/// Its methods take any SQL but `DEALLOCATE` and `DISCARD` (the
/// borrowers' prepared statements are the connection's), and prepare only
/// what a shared connection would (a prepared statement outlives the
/// transaction). It ends with [`commit`](SharedTransaction::commit) or
/// [`rollback`](SharedTransaction::rollback); dropped unfinished (a
/// cancelled future, an early return), it is rolled back in a task of its
/// own before the session is shared again (outside a runtime, the
/// connection is closed instead).
///
/// Invariant: while `permit` is held no other borrower's statement is
/// sent; it is given up only with the session clean (no transaction open,
/// and reset if `dirty`), or with the connection poisoned.
#[derive(Debug)]
pub struct SharedTransaction<'a> {
    conn: &'a SharedPgConnection,
    permit: Option<OwnedRwLockWriteGuard<()>>,
    /// A statement that could change the session was sent.
    dirty: AtomicBool,
}

impl SharedPgConnection {
    /// A transaction that has the session to itself: it waits until the
    /// statements other borrowers already sent are answered, then other
    /// borrowers' statements wait until it ends. Keep it short: up to
    /// every borrower of the connection waits on it.
    ///
    /// It ends with [`commit`](SharedTransaction::commit) or
    /// [`rollback`](SharedTransaction::rollback); dropped, it is rolled
    /// back (in a task, before any other statement is sent). Either way a
    /// transaction in which a statement could have changed the session
    /// (`SET`, `LISTEN`, temporary tables…) resets it (one more round trip,
    /// statement cache kept).
    ///
    /// A statement sent through another handle to the same connection
    /// (a clone of this one) waits until the transaction ends: awaiting it
    /// while holding the transaction waits for ever.
    ///
    /// ```no_run
    /// use connpool_postgres::pool::Pool;
    /// use connpool_postgres::PostgresManager;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let manager: PostgresManager = "host=127.0.0.1 user=postgres dbname=app".parse()?;
    /// let pool = Pool::builder(manager.shared(32).single()).build().await?;
    /// let mut conn = pool.get().await?;
    /// // Refused, and nothing sent: it would put every borrower's
    /// // statements in this transaction.
    /// assert!(conn.batch_execute("BEGIN").await.unwrap_err().is_unshareable());
    ///
    /// let tx = conn.transaction().await?;
    /// tx.execute("UPDATE account SET balance = balance - 10 WHERE id = 1", &[]).await?;
    /// tx.execute("UPDATE account SET balance = balance + 10 WHERE id = 2", &[]).await?;
    /// tx.commit().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn transaction(&mut self) -> Result<SharedTransaction<'_>, PgError> {
        SharedTransaction::begin(self).await
    }
}

impl<'a> SharedTransaction<'a> {
    /// Waits for the session alone, then `BEGIN`.
    pub(super) async fn begin(conn: &'a SharedPgConnection) -> Result<Self, PgError> {
        let permit = Arc::clone(&conn.shared.gate).write_owned().await;
        conn.shared.usable()?;
        let tx = Self {
            conn,
            permit: Some(permit),
            dirty: AtomicBool::new(false),
        };
        // A failed BEGIN leaves no transaction open: the drop's rollback
        // is a no-op then.
        tx.conn.shared.conn.batch_execute("BEGIN").await?;
        Ok(tx)
    }

    fn shared(&self) -> &Shared {
        &self.conn.shared
    }

    /// Checks `sql` (if any) and notes whether it could change the session.
    async fn admit(&self, sql: Option<&str>) -> Result<(), PgError> {
        let Some(sql) = sql else {
            return Ok(());
        };
        match classify(sql) {
            Effect::Clean => {}
            Effect::Dirty => self.dirty.store(true, Ordering::Relaxed),
            Effect::Forgets => {
                let keyword = forgetting(sql).unwrap_or_else(|| "DEALLOCATE".to_owned());
                return Err(PgError::unshareable(keyword, Refusal::Forgets));
            }
        }
        Ok(())
    }

    statement_methods!();

    /// [`SharedPgConnection::prepare_cached`]: only what a shared
    /// connection would prepare.
    pub async fn prepare_cached(&self, sql: &str) -> Result<Statement, PgError> {
        if let Some(keyword) = unshareable(sql) {
            return Err(PgError::unshareable(keyword, Refusal::Prepared));
        }
        Ok(self.conn.shared.conn.prepare_cached(sql).await?)
    }

    /// Commits; the session is shared again once it is clean.
    pub async fn commit(self) -> Result<(), PgError> {
        self.end("COMMIT").await
    }

    /// Rolls back; the session is shared again once it is clean.
    pub async fn rollback(self) -> Result<(), PgError> {
        self.end("ROLLBACK").await
    }

    /// Runs `verb`, resets the session if it may have changed (or `verb`
    /// failed), and only then gives up the permit. Dropped half-way, the
    /// drop finishes the job.
    async fn end(mut self, verb: &str) -> Result<(), PgError> {
        let client = &self.conn.shared.conn;
        let ended = client.batch_execute(verb).await;
        let reset = ended.is_err() || self.dirty.load(Ordering::Relaxed);
        if reset && let Err(failed) = client.batch_execute(&rollback_and_reset()).await {
            poison(&self.conn.shared, self.permit.take());
            return Err(ended.err().unwrap_or(failed).into());
        }
        self.permit = None;
        Ok(ended?)
    }
}

impl Drop for SharedTransaction<'_> {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        let shared = Arc::clone(&self.conn.shared);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if shared
                        .conn
                        .batch_execute(&rollback_and_reset())
                        .await
                        .is_err()
                    {
                        poison(&shared, Some(permit));
                    }
                });
            }
            Err(_) => poison(&shared, Some(permit)),
        }
    }
}

/// Ends a transaction if one is open, and resets the session (keeping the
/// protocol-level statements the borrowers share).
fn rollback_and_reset() -> String {
    format!("ROLLBACK; {RESET}")
}

/// No statement is sent on `shared` again; then the permit goes.
fn poison(shared: &Shared, permit: Option<OwnedRwLockWriteGuard<()>>) {
    shared.poisoned.store(true, Ordering::Release);
    drop(permit);
}
