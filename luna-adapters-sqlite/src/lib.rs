//! Luna's embedded store: every storage port over SQLite.
//!
//! WAL mode, a busy timeout, one writer connection (SQLite has one writer at a time; a single
//! connection turns contention into queueing instead of `SQLITE_BUSY`) and a pool of readers.
//! An append writes its events, the stream's summary row and the idempotency record in one
//! transaction; a duplicate `(stream_id, version)` or idempotency key is a `Conflict`, detected
//! by error code. The `event` table refuses UPDATE and DELETE (triggers).

mod accounts;
mod billing;
mod cache;
mod group;
mod history;
mod keys;
mod page;
mod write;

use group::Released;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use luna_codec::{EventRow, decode_row, decode_summary};
use luna_core::history::UsageCell;
use luna_core::{EntityRef, Timestamp, UserId};
use luna_ports::{
    AppendBatch, Appended, Clock, EventStore, HistoryPage, IdempotencyRecord, IdempotencyStore,
    LoadedWallet, PageQuery, PendingIdempotency, RecordedEvent, StoreError, StoredResponse,
    StoredSummary, StreamPage,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection};

/// The default database of `luna serve`.
pub const DEFAULT_URL: &str = "sqlite://./luna-data/luna.db";
/// How long a statement waits for a lock held by another process before failing `Busy`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Reader connections: one per CPU, between 2 and 8. Each sqlx SQLite connection is a thread;
/// more readers than cores made checks slower (context switches), fewer serialised them
/// (docs/PERFORMANCE.md).
pub fn readers() -> u32 {
    let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    u32::try_from(cpus.clamp(2, 8)).unwrap_or(2)
}

const EVENT_COLUMNS: &str = "position, event_id, stream_id, version, event_type, schema_version, payload, metadata, \
                             occurred_at_ms, recorded_at_ms, balance_after, available_after";

/// How the store syncs commits to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: a commit survives power loss (default: this is money).
    #[default]
    Full,
    /// `synchronous=NORMAL`: a commit survives a crash of the process, not of the machine.
    Normal,
}

/// How long a cached projection row is trusted for reads.
pub const PROJECTION_CACHE_TTL: Duration = Duration::from_secs(1);
/// Most projection rows cached at once (the cache is cleared when full).
pub const PROJECTION_CACHE_MAX: usize = 100_000;

/// The SQLite store.
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    clock: Arc<dyn Clock>,
    fail_after_event_insert: AtomicBool,
    stall_after_event_insert: AtomicBool,
    projections: cache::ProjectionCache,
    group: group::GroupCommit,
}

/// Maps a driver error to the port's error, by error code, never by message.
pub fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db) => {
            let code = db.code().and_then(|c| c.parse::<i32>().ok());
            match code.map(|c| c & 0xff) {
                // SQLITE_BUSY, SQLITE_LOCKED and their extended codes.
                Some(5 | 6) => StoreError::Busy,
                // SQLITE_FULL (disk full) and SQLITE_IOERR: the storage cannot take writes now;
                // nothing was committed (503, retry later).
                Some(13) => StoreError::Unavailable(format!("disk full: {}", db.message())),
                Some(10) => StoreError::Unavailable(format!("I/O error: {}", db.message())),
                _ => StoreError::backend(e),
            }
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::backend(e),
    }
}

pub(crate) fn i64_of(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::backend(std::io::Error::other("value out of range")))
}

pub(crate) fn u64_of(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::backend(std::io::Error::other("negative value")))
}

pub(crate) fn event_row(r: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    let row = EventRow {
        position: r.try_get("position").map_err(map_err)?,
        event_id: r.try_get("event_id").map_err(map_err)?,
        stream_id: r.try_get("stream_id").map_err(map_err)?,
        version: r.try_get("version").map_err(map_err)?,
        event_type: r.try_get("event_type").map_err(map_err)?,
        schema_version: r.try_get("schema_version").map_err(map_err)?,
        payload: r.try_get("payload").map_err(map_err)?,
        metadata: r.try_get("metadata").map_err(map_err)?,
        occurred_at_ms: r.try_get("occurred_at_ms").map_err(map_err)?,
        recorded_at_ms: r.try_get("recorded_at_ms").map_err(map_err)?,
        balance_after: r.try_get("balance_after").map_err(map_err)?,
        available_after: r.try_get("available_after").map_err(map_err)?,
    };
    decode_row(&row).map_err(StoreError::backend)
}

impl SqliteStore {
    /// Opens (creating the file and its folder if needed) and migrates a database.
    pub async fn connect(
        url: &str,
        clock: Arc<dyn Clock>,
        durability: Durability,
    ) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let filename = options.get_filename().to_path_buf();
        let in_memory =
            filename.as_os_str().is_empty() || filename.to_string_lossy().contains(":memory:");
        if !in_memory {
            if let Some(dir) = filename.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
            }
        }
        // No ping before each acquire (sqlx's default): a connection to a local file is not
        // closed behind our back, and the ping is one more trip to the connection's thread.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .min_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(map_err)?;
        sqlx::migrate!("./migrations")
            .run(&writer)
            .await
            .map_err(StoreError::backend)?;
        history::backfill(&writer).await?;
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(readers())
                .test_before_acquire(false)
                .connect_with(options.read_only(true))
                .await
                .map_err(map_err)?
        };
        Ok(SqliteStore {
            group: group::GroupCommit::start(writer.clone()),
            writer,
            reader,
            clock,
            fail_after_event_insert: AtomicBool::new(false),
            stall_after_event_insert: AtomicBool::new(false),
            projections: cache::ProjectionCache::default(),
        })
    }

    /// The writer pool (for operators' tools and tests).
    pub fn pool(&self) -> &SqlitePool {
        &self.writer
    }

    /// Makes the next append fail after its events, derived rows and projection row are
    /// written (one query) and before its idempotency record, to prove the transaction leaves
    /// none of them (tests only).
    #[doc(hidden)]
    pub fn inject_failure_after_event_insert(&self) {
        self.fail_after_event_insert.store(true, Ordering::SeqCst);
    }

    /// Makes the next append wait forever after inserting its events, so a test can drop it
    /// mid-append (a client gone, a timeout) and check that nothing of it is committed.
    #[doc(hidden)]
    pub fn inject_stall_after_event_insert(&self) {
        self.stall_after_event_insert.store(true, Ordering::SeqCst);
    }

    /// The append's writes as one member of the writer's batch: its prepared script, then
    /// its idempotency record (which needs the receipts).
    async fn append_in(
        &self,
        tx: &mut SqliteConnection,
        (write, script): (&write::Append<'_>, &write::Script),
        idempotency: Option<PendingIdempotency<'_>>,
    ) -> Result<(Appended, Released), StoreError> {
        let receipts = write::append(tx, script, write).await?;
        let released = if write.close.is_some() {
            Released::Yes
        } else {
            Released::No
        };
        if self.stall_after_event_insert.swap(false, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.fail_after_event_insert.swap(false, Ordering::SeqCst) {
            return Err(StoreError::backend(std::io::Error::other(
                "injected failure after the event insert",
            )));
        }
        if let Some(p) = idempotency {
            let (scope, key, fingerprint, created_at) =
                (p.scope, p.key, p.fingerprint, p.created_at);
            if let Some(response) = (p.render)(&receipts) {
                insert_idempotency(
                    &mut *tx,
                    &IdempotencyRecord {
                        stream: scope,
                        key,
                        fingerprint,
                        response,
                        created_at,
                    },
                )
                .await?;
            }
        }
        Ok((Appended { receipts }, released))
    }
}

async fn insert_idempotency<'e, E: sqlx::Executor<'e, Database = Sqlite>>(
    executor: E,
    r: &IdempotencyRecord,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO idempotency (stream_id, key, fingerprint, status, body, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(&r.stream)
        .bind(&r.key)
        .bind(&r.fingerprint)
        .bind(i64::from(r.response.status))
        .bind(&r.response.body)
        .bind(r.created_at.millis())
        .execute(executor)
        .await
        .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, batch: AppendBatch<'_>) -> Result<Appended, StoreError> {
        if batch.events.is_empty() {
            return Err(StoreError::backend(std::io::Error::other("empty append")));
        }
        let now = self.clock.now();
        let stream = batch.stream.clone();
        let new_version = batch.expected_version + batch.events.len() as u64;
        let summary = batch.summary.clone();
        // The savepoint is released by the same query when nothing follows the writes (and no
        // test hook is armed: those test the savepoint's rollback).
        let armed = self.stall_after_event_insert.load(Ordering::SeqCst)
            || self.fail_after_event_insert.load(Ordering::SeqCst);
        let release = batch.idempotency.is_none() && !armed;
        let write = write::Append {
            open: group::SAVEPOINT,
            close: release.then_some(group::RELEASE),
            stream: batch.stream.as_str(),
            expected_version: batch.expected_version,
            events: batch.events,
            summary: batch.summary,
            processed: batch.processed,
            now,
        };
        // Built before joining a batch: an append that cannot be encoded fails alone.
        let script = write::prepare(&write)?;
        let idempotency = batch.idempotency;
        // One member of the writer's next batch: answered once the commit holding it succeeded.
        let result = self
            .group
            .run(async |conn: &mut SqliteConnection| {
                self.append_in(conn, (&write, &script), idempotency).await
            })
            .await;
        match &result {
            Ok(_) => self.projections.put(&stream, new_version, &summary),
            Err(_) => self.projections.drop_row(&stream),
        }
        result
    }

    async fn load(
        &self,
        stream: &UserId,
        entities: &[EntityRef],
    ) -> Result<LoadedWallet, StoreError> {
        if entities.is_empty() {
            if let Some((version, summary)) = self.projections.get(stream) {
                return Ok(LoadedWallet {
                    version,
                    summary,
                    entity_events: Vec::new(),
                    cached: true,
                });
            }
        }
        // The projection row and the entity events from one read transaction, so they agree.
        let mut tx = self.reader.begin().await.map_err(map_err)?;
        let row = sqlx::query("SELECT version, summary FROM wallet WHERE stream_id = ?")
            .bind(stream.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(LoadedWallet::default());
        };
        let version: i64 = row.try_get("version").map_err(map_err)?;
        let text: String = row.try_get("summary").map_err(map_err)?;
        let version = u64_of(version)?;
        let summary = decode_summary(&text).map_err(StoreError::backend)?;
        let mut entity_events = Vec::new();
        if !entities.is_empty() {
            let marks = vec!["?"; entities.len()].join(", ");
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM event WHERE stream_id = ? AND entity IN ({marks}) ORDER BY position"
            );
            let mut q = sqlx::query(&sql).bind(stream.as_str());
            for e in entities {
                q = q.bind(e.key());
            }
            for r in q.fetch_all(&mut *tx).await.map_err(map_err)? {
                entity_events.push(event_row(&r)?);
            }
        }
        tx.commit().await.map_err(map_err)?;
        self.projections.put(stream, version, &summary);
        Ok(LoadedWallet {
            version,
            summary,
            entity_events,
            cached: false,
        })
    }

    async fn current_version(&self, stream: &UserId) -> Result<u64, StoreError> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM wallet WHERE stream_id = ?")
                .bind(stream.as_str())
                .fetch_optional(&self.reader)
                .await
                .map_err(map_err)?;
        let version = version.map(u64_of).transpose()?.unwrap_or(0);
        if self
            .projections
            .get(stream)
            .is_some_and(|(cached, _)| cached != version)
        {
            self.projections.drop_row(stream);
        }
        Ok(version)
    }

    async fn read_stream(&self, stream: &UserId) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM event WHERE stream_id = ? ORDER BY position");
        let rows = sqlx::query(&sql)
            .bind(stream.as_str())
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        rows.iter().map(event_row).collect()
    }

    async fn read_events(&self, stream: &UserId) -> Result<Vec<luna_core::Event>, StoreError> {
        page::fold_input(&self.reader, stream).await
    }

    async fn read_page(&self, stream: &UserId, q: PageQuery<'_>) -> Result<StreamPage, StoreError> {
        // Unfiltered, the count is the stream's last version (versions run 1, 2, 3…): one
        // index probe, not a scan of the history. Filtered, the count kept per (stream, type)
        // with each append.
        let total: i64 = match q.event_type {
            None => sqlx::query_scalar(
                "SELECT COALESCE(MAX(version), 0) FROM event WHERE stream_id = ?",
            )
            .bind(stream.as_str()),
            Some(t) => sqlx::query_scalar(
                "SELECT COALESCE((SELECT n FROM event_count WHERE stream_id = ? AND event_type = ?), 0)",
            )
            .bind(stream.as_str())
            .bind(t),
        }
        .fetch_one(&self.reader)
        .await
        .map_err(map_err)?;
        let rows = self.page_rows(stream, &q).await?;
        let mut events = rows.iter().map(event_row).collect::<Result<Vec<_>, _>>()?;
        let has_more = events.len() > q.limit;
        events.truncate(q.limit);
        Ok(StreamPage {
            events,
            total_count: u64_of(total)?,
            has_more,
        })
    }

    async fn history_page(
        &self,
        stream: &UserId,
        before_position: Option<u64>,
        limit: usize,
    ) -> Result<HistoryPage, StoreError> {
        history::page(&self.reader, stream, before_position, limit).await
    }

    async fn usage(
        &self,
        stream: &UserId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<Vec<UsageCell>, StoreError> {
        history::usage(&self.reader, stream, from, to).await
    }

    async fn usage_totals(
        &self,
        stream: &UserId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<luna_core::history::UsageTotals, StoreError> {
        history::usage_totals(&self.reader, stream, from, to).await
    }

    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM event WHERE position > ? ORDER BY position LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(i64_of(after_position)?)
            .bind(i64_of(limit as u64)?)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        rows.iter().map(event_row).collect()
    }

    async fn find_stream(&self, entity: &EntityRef) -> Result<Option<UserId>, StoreError> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT stream_id FROM entity_stream WHERE entity = ?")
                .bind(entity.key())
                .fetch_optional(&self.reader)
                .await
                .map_err(map_err)?;
        found
            .map(|s| UserId::parse(&s).map_err(StoreError::backend))
            .transpose()
    }

    async fn summaries(
        &self,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<StoredSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT stream_id, version, summary FROM wallet WHERE stream_id > ? ORDER BY stream_id LIMIT ?",
        )
        .bind(after.map_or("", UserId::as_str))
        .bind(i64_of(limit as u64)?)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let stream: String = r.try_get("stream_id").map_err(map_err)?;
                let version: i64 = r.try_get("version").map_err(map_err)?;
                let summary: String = r.try_get("summary").map_err(map_err)?;
                Ok(StoredSummary {
                    stream: UserId::parse(&stream).map_err(StoreError::backend)?,
                    version: u64_of(version)?,
                    summary: decode_summary(&summary).map_err(StoreError::backend)?,
                })
            })
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn get(&self, stream: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        // Read from the writer: a record written a moment ago must be seen by a retry.
        let row = sqlx::query(
            "SELECT fingerprint, status, body, created_at_ms FROM idempotency WHERE stream_id = ? AND key = ?",
        )
        .bind(stream)
        .bind(key)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        row.map(|r| {
            let status: i64 = r.try_get("status").map_err(map_err)?;
            Ok(IdempotencyRecord {
                stream: stream.to_owned(),
                key: key.to_owned(),
                fingerprint: r.try_get("fingerprint").map_err(map_err)?,
                response: StoredResponse {
                    status: u16::try_from(status).unwrap_or(500),
                    body: r.try_get("body").map_err(map_err)?,
                },
                created_at: Timestamp::from_millis(r.try_get("created_at_ms").map_err(map_err)?),
            })
        })
        .transpose()
    }

    async fn put(&self, record: IdempotencyRecord) -> Result<(), StoreError> {
        insert_idempotency(&self.writer, &record).await
    }

    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency WHERE created_at_ms < ?")
            .bind(before.millis())
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
