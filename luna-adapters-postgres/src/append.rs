//! The append's statements: each event with its derived rows in one statement, the batch's
//! first carrying the projection row (on an existing stream, updated before the event is
//! inserted, so every writer locks the projection row first). An append that is one event on
//! an existing stream and nothing else (every consume without an idempotency key, every app
//! event) is that one statement in autocommit — no `BEGIN`, no `COMMIT`: two round trips of
//! four (ADR 0010); any other runs in a transaction.

use luna_codec::{LedgerRow, NewEventRow, encode_new, encode_summary};
use luna_core::{Summary, Timestamp};
use luna_ports::{AppendBatch, NewEvent, Receipt, StoreError};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::{history, i64_of, map_err, u64_of};

/// The event of an append that is a single statement: one event on an existing stream, with
/// no record beside it (idempotency record, processed mark, directory entry).
pub(crate) fn single_statement<'b>(batch: &AppendBatch<'b>) -> Option<&'b NewEvent> {
    match batch.events {
        [one]
            if batch.expected_version > 0
                && batch.idempotency.is_none()
                && batch.processed.is_none()
                && one.event.kind.directory_entity().is_none() =>
        {
            Some(one)
        }
        _ => None,
    }
}

/// Binds an event's columns (`$1`–`$12`), then its ledger row's (`$13`–`$22`: typed NULLs
/// when it has none and the projection follows, so `$23`–`$26` keep their numbers).
fn bind_event<'q>(
    stream: &'q str,
    version: u64,
    row: &'q NewEventRow,
    ledger: Option<&'q LedgerRow>,
    now: Timestamp,
    projection_follows: bool,
    sql: &'static str,
) -> Result<Query<'q, Postgres, PgArguments>, StoreError> {
    let query = sqlx::query(sql)
        .bind(&row.event_id)
        .bind(stream)
        .bind(i64_of(version)?)
        .bind(&row.encoded.event_type)
        .bind(row.encoded.schema_version)
        .bind(row.encoded.entity.as_deref())
        .bind(&row.encoded.payload)
        .bind(&row.metadata)
        .bind(row.occurred_at_ms)
        .bind(now.millis())
        .bind(row.balance_after)
        .bind(row.available_after);
    Ok(match ledger {
        Some(l) => history::bind_ledger(query, l)?,
        None if projection_follows => (13..=22).fold(query, |q, _| q.bind(None::<i64>)),
        None => query,
    })
}

/// The projection row's values (`$23` new version, `$24` balance, `$25` summary, `$26` the
/// expected version).
fn bind_projection<'q>(
    query: Query<'q, Postgres, PgArguments>,
    expected_version: u64,
    new_version: u64,
    summary: &Summary,
) -> Result<Query<'q, Postgres, PgArguments>, StoreError> {
    Ok(query
        .bind(i64_of(new_version)?)
        .bind(summary.balance.units())
        .bind(encode_summary(summary))
        .bind(i64_of(expected_version)?))
}

/// Inserts the `index`th event of an append (its derived rows in the same statement) and
/// answers its receipt. `projection` — the new version and summary — goes with the first
/// event: inserted with it on a new stream; on an existing stream updated *before* it, where
/// the version is still the expected one (ADR 0010: every writer locks the projection row
/// first). No row answered: the projection moved on, the optimistic `Conflict` (nothing of the
/// statement was written).
async fn insert_one<'e>(
    executor: impl sqlx::Executor<'e, Database = Postgres>,
    stream: &str,
    expected_version: u64,
    index: usize,
    e: &NewEvent,
    projection: Option<(u64, &Summary)>,
    now: Timestamp,
) -> Result<Receipt, StoreError> {
    let row = encode_new(e);
    let ledger = LedgerRow::of_new(&e.event, row.balance_after).map_err(StoreError::backend)?;
    let energy = ledger.is_some();
    let sql = match (projection, expected_version) {
        (Some(_), 0) => history::insert_event_sql(energy, true),
        (Some(_), _) => history::single_event_sql(energy),
        (None, _) => history::insert_event_sql(energy, false),
    };
    let version = expected_version + 1 + index as u64;
    let query = bind_event(
        stream,
        version,
        &row,
        ledger.as_ref(),
        now,
        projection.is_some(),
        sql,
    )?;
    let query = match projection {
        Some((new_version, summary)) => {
            bind_projection(query, expected_version, new_version, summary)?
        }
        None => query,
    };
    let answered = query
        .fetch_optional(executor)
        .await
        .map_err(map_err)?
        .ok_or(StoreError::Conflict)?;
    let position: i64 = answered.try_get("position").map_err(map_err)?;
    Ok(Receipt {
        event_id: e.event_id,
        version,
        position: u64_of(position)?,
        recorded_at: now,
    })
}

/// Appends a [single-statement](single_statement) batch's event in autocommit: the statement is
/// its own transaction.
pub(crate) async fn single(
    pool: &PgPool,
    stream: &str,
    expected_version: u64,
    e: &NewEvent,
    summary: &Summary,
    now: Timestamp,
) -> Result<Receipt, StoreError> {
    let projection = Some((expected_version + 1, summary));
    insert_one(pool, stream, expected_version, 0, e, projection, now).await
}

/// Inserts a batch's events (a duplicate version, or a projection row that moved on, is the
/// optimistic `Conflict`) and the keyed lookups of the entities clients name without their
/// user, in the caller's transaction; the first event's statement writes the projection row.
pub(crate) async fn insert_events(
    tx: &mut Transaction<'_, Postgres>,
    stream: &str,
    expected_version: u64,
    events: &[NewEvent],
    summary: &Summary,
    now: Timestamp,
) -> Result<Vec<Receipt>, StoreError> {
    let new_version = expected_version + events.len() as u64;
    let mut receipts = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let projection = (i == 0).then_some((new_version, summary));
        receipts
            .push(insert_one(&mut **tx, stream, expected_version, i, e, projection, now).await?);
    }
    for entity in events
        .iter()
        .filter_map(|e| e.event.kind.directory_entity())
    {
        sqlx::query("INSERT INTO entity_stream (entity, stream_id) VALUES ($1, $2) ON CONFLICT (entity) DO NOTHING")
            .bind(entity.key())
            .bind(stream)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
    }
    Ok(receipts)
}
