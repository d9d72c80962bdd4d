//! Luna's production store: every storage port over PostgreSQL.
//!
//! An append writes its events, the stream's summary row and the idempotency record in one
//! transaction — or, when it is one event and nothing else, in one autocommit statement (ADR
//! 0010). Every append first updates the stream's projection row where its version is the
//! expected one: a second writer of the stream waits for the first, then finds the version
//! moved and writes nothing — the optimistic `Conflict` (a duplicate `(stream_id, version)`,
//! SQLSTATE 23505, is one too). Every write touches one stream, so a store sharded by
//! `stream_id` keeps each transaction on one shard; coalesced reads (`coalesce.rs`) may read
//! several streams in one statement. The `event` table refuses UPDATE, DELETE and TRUNCATE
//! (triggers).

mod accounts;
mod append;
mod billing;
mod coalesce;
mod history;
mod keys;
mod page;
mod txn;

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
    LoadedWallet, PageQuery, RecordedEvent, StoreError, StoredResponse, StoredSummary, StreamPage,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Postgres, Row, Transaction};

/// How a table is laid out on a PostgreSQL distributed by user (ADR 0005).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// Distributed by the user stream: every unique key includes this column.
    Stream(&'static str),
    /// A directory distributed by its own key: every unique key includes this column.
    Directory(&'static str),
    /// A small table replicated to every node.
    Reference,
}

/// Every table of the schema and its distribution (ADR 0005). The schema test fails when a
/// table is missing here or breaks its class's rule.
pub const TABLES: &[(&str, Distribution)] = &[
    ("event", Distribution::Stream("stream_id")),
    ("wallet", Distribution::Stream("stream_id")),
    ("idempotency", Distribution::Stream("stream_id")),
    ("entity_stream", Distribution::Directory("entity")),
    ("service_key", Distribution::Reference),
    ("account", Distribution::Stream("stream_id")),
    ("account_email", Distribution::Directory("email")),
    ("auth_session", Distribution::Stream("stream_id")),
    ("refresh_history", Distribution::Stream("stream_id")),
    ("login_throttle", Distribution::Directory("bucket")),
    ("setting", Distribution::Reference),
    ("webhook_event", Distribution::Stream("stream_id")),
    ("billing_customer", Distribution::Stream("stream_id")),
    ("customer_stream", Distribution::Directory("customer_id")),
    ("billing_checkout", Distribution::Stream("stream_id")),
    ("unmatched_payment", Distribution::Directory("payment_ref")),
    ("ledger", Distribution::Stream("stream_id")),
    ("usage_daily", Distribution::Stream("stream_id")),
    ("usage_span", Distribution::Stream("stream_id")),
    ("event_count", Distribution::Stream("stream_id")),
    ("history_backfill", Distribution::Reference),
];

/// The Citus statements that distribute the schema (run once, after `luna migrate`, on the
/// coordinator).
pub fn citus_statements() -> Vec<String> {
    TABLES
        .iter()
        .map(|(table, d)| match d {
            Distribution::Stream(c) | Distribution::Directory(c) => {
                format!("SELECT create_distributed_table('{table}', '{c}');")
            }
            Distribution::Reference => format!("SELECT create_reference_table('{table}');"),
        })
        .collect()
}

/// Connections per pool.
pub const POOL_SIZE: u32 = 16;
/// How long a request waits for a free connection before the database counts as unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// A pooled connection idle at least this long is pinged before use (the server or a proxy
/// may have closed it meanwhile). Busy connections are not: sqlx's default pings before every
/// acquire, one more round trip per query (ADR 0009).
pub const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

const EVENT_COLUMNS: &str = "position, event_id::text AS event_id, stream_id, version, event_type, schema_version, \
                             payload::text AS payload, metadata::text AS metadata, occurred_at_ms, recorded_at_ms, balance_after, available_after";

/// The projection row with the events of the named entities (`$2`), oldest first, in one
/// statement; a row with a NULL position when the entities have no event.
const ENTITY_LOAD: &str = "SELECT w.version AS wallet_version, w.summary::text AS summary, \
     e.position, e.event_id::text AS event_id, e.stream_id, e.version, e.event_type, e.schema_version, \
     e.payload::text AS payload, e.metadata::text AS metadata, e.occurred_at_ms, e.recorded_at_ms, \
     e.balance_after, e.available_after \
     FROM wallet w LEFT JOIN event e ON e.stream_id = w.stream_id AND e.entity = ANY($2) \
     WHERE w.stream_id = $1 ORDER BY e.position";

/// The PostgreSQL store.
pub struct PgStore {
    pool: PgPool,
    /// Projection reads without entities (checks, consumes), coalesced under load.
    projections: coalesce::Coalescer<String, (i64, String)>,
    /// Session reads (every request with a user token), coalesced the same way.
    /// Keyed by (stream, session id).
    session_reads: coalesce::Coalescer<(String, String), luna_ports::Session>,
    clock: Arc<dyn Clock>,
    fail_after_event_insert: AtomicBool,
}

/// Maps a driver error to the port's error, by SQLSTATE, never by message.
pub fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // serialization_failure, deadlock_detected, lock_not_available
            Some("40001" | "40P01" | "55P03") => StoreError::Busy,
            // connection exceptions, admin shutdown, cannot connect now, too many connections
            Some(c) if c.starts_with("08") || c == "57P01" || c == "57P03" || c == "53300" => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::backend(e),
        },
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::backend(e),
    }
}

pub(crate) fn u64_of(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::backend(std::io::Error::other("negative value")))
}

pub(crate) fn i64_of(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::backend(std::io::Error::other("value out of range")))
}

pub(crate) fn event_row(r: &PgRow) -> Result<RecordedEvent, StoreError> {
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

/// A stream's projection row as loaded (never from a cache here).
fn loaded(
    version: i64,
    summary: &str,
    entity_events: Vec<RecordedEvent>,
) -> Result<LoadedWallet, StoreError> {
    Ok(LoadedWallet {
        version: u64_of(version)?,
        summary: decode_summary(summary).map_err(StoreError::backend)?,
        entity_events,
        cached: false,
    })
}

/// The projection rows (version, summary) of a batch of streams, in one statement.
async fn projection_rows(
    pool: &PgPool,
    streams: Vec<String>,
) -> Result<std::collections::HashMap<String, (i64, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT stream_id, version, summary::text AS summary FROM wallet WHERE stream_id = ANY($1)",
    )
    .bind(&streams)
    .fetch_all(pool)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("stream_id").map_err(map_err)?,
                (
                    r.try_get("version").map_err(map_err)?,
                    r.try_get("summary").map_err(map_err)?,
                ),
            ))
        })
        .collect()
}

/// The statement a consume on an existing stream sends (its event, derived rows and projection
/// row, in autocommit): for `luna-bench`, which runs it under pgbench as the database's own
/// ceiling.
#[doc(hidden)]
pub fn consume_statement() -> &'static str {
    history::single_event_sql(true)
}

impl PgStore {
    /// Connects and migrates. `schema`, when given, is created if needed and used as the
    /// search path (tests use a fresh schema each).
    pub async fn connect(
        url: &str,
        schema: Option<&str>,
        pool_size: u32,
        clock: Arc<dyn Clock>,
    ) -> Result<PgStore, StoreError> {
        let mut options = PgConnectOptions::from_str(url).map_err(StoreError::backend)?;
        if let Some(schema) = schema {
            if !schema
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_')
            {
                return Err(StoreError::backend(std::io::Error::other(
                    "schema names are [A-Za-z0-9_]",
                )));
            }
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await
                .map_err(map_err)?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&admin)
                .await
                .map_err(map_err)?;
            admin.close().await;
            options = options.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    // A failed ping closes this connection; the pool takes or opens another.
                    Ok(meta.idle_for < PING_IDLE_AFTER || conn.ping().await.is_ok())
                })
            })
            .connect_with(options)
            .await
            .map_err(map_err)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(StoreError::backend)?;
        history::backfill(&pool).await?;
        Ok(PgStore {
            pool,
            projections: coalesce::Coalescer::new(),
            session_reads: coalesce::Coalescer::new(),
            clock,
            fail_after_event_insert: AtomicBool::new(false),
        })
    }

    /// The pool (for operators' tools and tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Makes the next append fail after its events and projection row are written (one
    /// statement per event, the first carrying the projection) and before its other records,
    /// to prove the transaction leaves none of them (tests only).
    #[doc(hidden)]
    pub fn inject_failure_after_event_insert(&self) {
        self.fail_after_event_insert.store(true, Ordering::SeqCst);
    }

    async fn append_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        batch: AppendBatch<'_>,
        now: Timestamp,
    ) -> Result<Appended, StoreError> {
        let stream = batch.stream.as_str();
        let receipts = append::insert_events(
            tx,
            stream,
            batch.expected_version,
            batch.events,
            batch.summary,
            now,
        )
        .await?;
        if self.fail_after_event_insert.swap(false, Ordering::SeqCst) {
            return Err(StoreError::backend(std::io::Error::other(
                "injected failure after the event insert",
            )));
        }
        if let Some(event_id) = batch.processed {
            sqlx::query("INSERT INTO webhook_event (stream_id, event_id, processed_at_ms) VALUES ($1, $2, $3)")
                .bind(stream)
                .bind(event_id)
                .bind(now.millis())
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
        }
        if let Some(p) = batch.idempotency {
            let (scope, key, fingerprint, created_at) =
                (p.scope, p.key, p.fingerprint, p.created_at);
            if let Some(response) = (p.render)(&receipts) {
                insert_idempotency(
                    &mut **tx,
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
        Ok(Appended { receipts })
    }
}

async fn insert_idempotency<'e, E: sqlx::Executor<'e, Database = Postgres>>(
    executor: E,
    r: &IdempotencyRecord,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO idempotency (stream_id, key, fingerprint, status, body, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&r.stream)
        .bind(&r.key)
        .bind(&r.fingerprint)
        .bind(i32::from(r.response.status))
        .bind(&r.response.body)
        .bind(r.created_at.millis())
        .execute(executor)
        .await
        .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl EventStore for PgStore {
    async fn append(&self, batch: AppendBatch<'_>) -> Result<Appended, StoreError> {
        if batch.events.is_empty() {
            return Err(StoreError::backend(std::io::Error::other("empty append")));
        }
        let now = self.clock.now();
        // An armed test failure needs the transaction path (it fails between statements).
        let armed = self.fail_after_event_insert.load(Ordering::SeqCst);
        if let Some(event) = append::single_statement(&batch).filter(|_| !armed) {
            let receipt = append::single(
                &self.pool,
                batch.stream.as_str(),
                batch.expected_version,
                event,
                batch.summary,
                now,
            )
            .await?;
            return Ok(Appended {
                receipts: vec![receipt],
            });
        }
        let mut conn = crate::txn::Conn::acquire(&self.pool).await?;
        let mut tx = conn.begin().await?;
        match self.append_in(&mut tx, batch, now).await {
            Ok(appended) => {
                tx.commit().await.map_err(map_err)?;
                Ok(appended)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn load(
        &self,
        stream: &UserId,
        entities: &[EntityRef],
    ) -> Result<LoadedWallet, StoreError> {
        if entities.is_empty() {
            let row = self
                .projections
                .read(stream.as_str().to_owned(), |streams| {
                    projection_rows(&self.pool, streams)
                })
                .await?;
            return match row {
                None => Ok(LoadedWallet::default()),
                Some((version, summary)) => loaded(version, &summary, Vec::new()),
            };
        }
        // One statement, so the projection row and the entity events come from one snapshot.
        let keys: Vec<String> = entities.iter().map(EntityRef::key).collect();
        let rows = sqlx::query(ENTITY_LOAD)
            .bind(stream.as_str())
            .bind(&keys)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let Some(first) = rows.first() else {
            return Ok(LoadedWallet::default());
        };
        let version: i64 = first.try_get("wallet_version").map_err(map_err)?;
        let summary: String = first.try_get("summary").map_err(map_err)?;
        let mut entity_events = Vec::new();
        for r in &rows {
            let position: Option<i64> = r.try_get("position").map_err(map_err)?;
            if position.is_some() {
                entity_events.push(event_row(r)?);
            }
        }
        loaded(version, &summary, entity_events)
    }

    async fn current_version(&self, stream: &UserId) -> Result<u64, StoreError> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM wallet WHERE stream_id = $1")
                .bind(stream.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        match version {
            // No projection row: the stream has no event yet.
            None => Ok(0),
            Some(v) => u64::try_from(v).map_err(StoreError::backend),
        }
    }

    async fn read_stream(&self, stream: &UserId) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM event WHERE stream_id = $1 ORDER BY position");
        let rows = sqlx::query(&sql)
            .bind(stream.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(event_row).collect()
    }

    async fn read_events(&self, stream: &UserId) -> Result<Vec<luna_core::Event>, StoreError> {
        page::fold_input(&self.pool, stream).await
    }

    async fn read_page(&self, stream: &UserId, q: PageQuery<'_>) -> Result<StreamPage, StoreError> {
        page::read_page(&self.pool, stream, q).await
    }

    async fn history_page(
        &self,
        stream: &UserId,
        before_position: Option<u64>,
        limit: usize,
    ) -> Result<HistoryPage, StoreError> {
        history::page(&self.pool, stream, before_position, limit).await
    }

    async fn usage(
        &self,
        stream: &UserId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<Vec<UsageCell>, StoreError> {
        history::usage(&self.pool, stream, from, to).await
    }

    async fn usage_totals(
        &self,
        stream: &UserId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<luna_core::history::UsageTotals, StoreError> {
        history::usage_totals(&self.pool, stream, from, to).await
    }

    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM event WHERE position > $1 ORDER BY position LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(i64_of(after_position)?)
            .bind(i64_of(limit as u64)?)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(event_row).collect()
    }

    async fn find_stream(&self, entity: &EntityRef) -> Result<Option<UserId>, StoreError> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT stream_id FROM entity_stream WHERE entity = $1")
                .bind(entity.key())
                .fetch_optional(&self.pool)
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
            "SELECT stream_id, version, summary::text AS summary FROM wallet \
             WHERE stream_id COLLATE \"C\" > $1 ORDER BY stream_id COLLATE \"C\" LIMIT $2",
        )
        .bind(after.map_or("", UserId::as_str))
        .bind(i64_of(limit as u64)?)
        .fetch_all(&self.pool)
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
            .execute(&self.pool)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
}

#[async_trait]
impl IdempotencyStore for PgStore {
    async fn get(&self, stream: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT fingerprint, status, body, created_at_ms FROM idempotency WHERE stream_id = $1 AND key = $2",
        )
        .bind(stream)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(|r| {
            let status: i32 = r.try_get("status").map_err(map_err)?;
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
        insert_idempotency(&self.pool, &record).await
    }

    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency WHERE created_at_ms < $1")
            .bind(before.millis())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
