//! Group commit on the single SQLite writer (issue 9): appends that arrive while a commit is
//! syncing share the next transaction and its one sync. Each member runs its statements in its
//! own savepoint, so a member that fails (a version conflict, a taken idempotency key or
//! processed mark) rolls back alone and is answered at once; the others are answered only once
//! the commit that holds their writes has succeeded, or all get its error.
//!
//! A background task commits: a member adds itself and wakes it; the task takes the lock after
//! the members already queued for it (the lock is fair), so a batch is everything that arrived
//! during the previous commit. A member whose future is dropped between its savepoint and its
//! release leaves the transaction poisoned: the whole batch is rolled back and its members get
//! `Busy` (retried by the engine), never a half-written append.
//!
//! Cancellation safety: only the committer task (never cancelled) awaits COMMIT or ROLLBACK. A
//! member that finds the batch poisoned, or the connection's transaction state unknown (a
//! `BEGIN` or `ROLLBACK` whose future was dropped), abandons it without awaiting anything: the
//! connection is closed instead of going back to the pool (closing rolls its transaction back)
//! and the batch's members are told to retry.

use std::sync::{Arc, Weak};

use luna_ports::StoreError;
use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{Mutex, Notify, watch};

use crate::map_err;

/// Opens a member's savepoint: the first statement of its first query.
pub(crate) const SAVEPOINT: &str = "SAVEPOINT member";
/// Releases a member's savepoint.
pub(crate) const RELEASE: &str = "RELEASE member";

/// Whether a member's writes released its savepoint themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Released {
    Yes,
    No,
}

/// How a batch ended.
#[derive(Debug, Clone)]
enum Outcome {
    Committed,
    /// Rolled back because a member was abandoned mid-append: retry.
    Abandoned,
    /// The commit failed: the storage cannot take writes now.
    Unavailable(String),
    /// The commit failed otherwise.
    Failed(String),
}

struct State {
    /// The writer connection while a transaction is open.
    conn: Option<PoolConnection<Sqlite>>,
    /// A member was dropped between its savepoint and its release.
    poisoned: bool,
    /// Whether the connection is in a transaction is not known (a statement that opens or
    /// ends one did not report back): it must be closed, never returned to the pool.
    in_doubt: bool,
    /// Where the open transaction's outcome is published.
    batch: Arc<watch::Sender<Option<Outcome>>>,
}

struct Shared {
    writer: SqlitePool,
    state: Mutex<State>,
}

/// The group-commit writer.
pub(crate) struct GroupCommit {
    shared: Arc<Shared>,
    wake: Arc<Notify>,
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // The committer finds the store gone and ends.
        self.wake.notify_one();
    }
}

impl GroupCommit {
    /// Starts the committer on the writer pool.
    pub(crate) fn start(writer: SqlitePool) -> GroupCommit {
        let shared = Arc::new(Shared {
            writer,
            state: Mutex::new(State {
                conn: None,
                poisoned: false,
                in_doubt: false,
                batch: Arc::new(watch::channel(None).0),
            }),
        });
        let wake = Arc::new(Notify::new());
        tokio::spawn(committer(Arc::downgrade(&shared), wake.clone()));
        GroupCommit { shared, wake }
    }

    /// Runs `write` as one member of the next batch, answered once the batch is committed.
    /// `write` opens the member's savepoint with its first statement ([`SAVEPOINT`], in the
    /// same query as its first writes: one trip to the connection's thread fewer) and says
    /// whether its last statement released it ([`RELEASE`]); if not, it is released here. On
    /// an error the savepoint is rolled back; if that fails (never opened, already released)
    /// the whole batch is abandoned — nothing of a failed member is ever committed.
    pub(crate) async fn run<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        F: for<'c> AsyncFnOnce(&'c mut SqliteConnection) -> Result<(T, Released), StoreError>,
    {
        let _wake = WakeOnDrop(&self.wake);
        let mut st = self.shared.state.lock().await;
        if st.poisoned || st.in_doubt {
            abandon(&mut st);
        }
        if st.conn.is_none() {
            let conn = self.shared.writer.acquire().await.map_err(map_err)?;
            // Kept in the state before `BEGIN` is awaited: if this future is dropped, the
            // connection stays here, in doubt, instead of going back to the pool mid-transaction.
            st.in_doubt = true;
            let conn = st.conn.insert(conn);
            let begun = sqlx::query("BEGIN IMMEDIATE").execute(&mut **conn).await;
            if let Err(e) = begun {
                abandon(&mut st);
                return Err(map_err(e));
            }
            st.in_doubt = false;
        }
        // Poisoned until the savepoint is released or rolled back: dropping this future in
        // between leaves it set.
        st.poisoned = true;
        let Some(conn) = st.conn.as_mut() else {
            return Err(StoreError::backend(std::io::Error::other(
                "group commit without its connection",
            )));
        };
        let conn: &mut SqliteConnection = conn;
        let written = write(&mut *conn).await;
        let closed = match &written {
            Ok((_, Released::Yes)) => Ok(()),
            Ok((_, Released::No)) => sqlx::query(RELEASE).execute(&mut *conn).await.map(drop),
            Err(_) => match sqlx::query("ROLLBACK TO member").execute(&mut *conn).await {
                Ok(_) => sqlx::query(RELEASE).execute(&mut *conn).await.map(drop),
                Err(e) => Err(e),
            },
        };
        if let Err(e) = closed {
            // The savepoint could not be closed (SQLite may have rolled the whole transaction
            // back, e.g. on a full disk): the batch stays poisoned and is abandoned; the member
            // reports its own error if it had one.
            return Err(written.err().unwrap_or_else(|| map_err(e)));
        }
        st.poisoned = false;
        let value = match written {
            Ok((v, _)) => v,
            // Nothing of this member stays; the batch (maybe empty) is still committed.
            Err(e) => return Err(e),
        };
        let mut done = st.batch.subscribe();
        drop(st);
        self.wake.notify_one();
        let outcome = done
            .wait_for(Option::is_some)
            .await
            .map_err(|_| StoreError::backend(std::io::Error::other("the committer ended")))?
            .clone();
        match outcome {
            Some(Outcome::Committed) => Ok(value),
            Some(Outcome::Abandoned) => Err(StoreError::Busy),
            Some(Outcome::Unavailable(m)) => Err(StoreError::Unavailable(m)),
            Some(Outcome::Failed(m)) => Err(StoreError::backend(std::io::Error::other(m))),
            None => Err(StoreError::backend(std::io::Error::other(
                "a batch ended without an outcome",
            ))),
        }
    }
}

/// Wakes the committer when a member ends, however it ends (a member dropped mid-append must
/// not leave the writer's transaction open).
struct WakeOnDrop<'a>(&'a Notify);

impl Drop for WakeOnDrop<'_> {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// Ends the open batch without awaiting anything (so a member may do it, cancellation-safe):
/// the connection is closed rather than returned to the pool — closing rolls back its
/// transaction — and the batch's members are told to retry.
fn abandon(st: &mut State) {
    if let Some(mut conn) = st.conn.take() {
        conn.close_on_drop();
    }
    publish(st, Outcome::Abandoned);
}

/// Publishes the open batch's outcome and starts the next batch.
fn publish(st: &mut State, outcome: Outcome) {
    st.poisoned = false;
    st.in_doubt = false;
    let batch = std::mem::replace(&mut st.batch, Arc::new(watch::channel(None).0));
    batch.send_replace(Some(outcome));
}

/// Commits the open transaction (or abandons it if poisoned) and publishes how it ended. Only
/// the committer task calls it, so its awaits are never cancelled mid-way.
async fn finish(st: &mut State) {
    if st.poisoned || st.in_doubt {
        abandon(st);
        return;
    }
    let Some(conn) = st.conn.as_mut() else {
        return;
    };
    st.in_doubt = true;
    let outcome = match sqlx::query("COMMIT").execute(&mut **conn).await {
        Ok(_) => {
            st.in_doubt = false;
            Outcome::Committed
        }
        Err(e) => {
            if sqlx::query("ROLLBACK").execute(&mut **conn).await.is_ok() {
                st.in_doubt = false;
            }
            match map_err(e) {
                StoreError::Unavailable(m) => Outcome::Unavailable(m),
                other => Outcome::Failed(other.to_string()),
            }
        }
    };
    if let Some(mut conn) = st.conn.take() {
        if st.in_doubt {
            // A ROLLBACK that failed leaves the transaction state unknown: close it.
            conn.close_on_drop();
        }
    }
    publish(st, outcome);
}

/// Commits whenever woken, until the store is dropped.
async fn committer(shared: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut st = shared.state.lock().await;
        finish(&mut st).await;
    }
}
