//! Reads of a stream: the events page — one statement per shape so PostgreSQL walks the right
//! index, `total_count` from one index probe (unfiltered) or the count kept per type
//! (filtered) — and the fold's input, decoding only what a fold reads.

use luna_core::UserId;
use luna_ports::{PageQuery, StoreError, StreamPage};
use sqlx::{PgPool, Row};

use crate::{EVENT_COLUMNS, event_row, i64_of, map_err, u64_of};

/// A page of a stream, newest first.
pub(crate) async fn read_page(
    pool: &PgPool,
    stream: &UserId,
    q: PageQuery<'_>,
) -> Result<StreamPage, StoreError> {
    // Unfiltered, the count is the stream's last version (versions run 1, 2, 3…): one
    // index probe, not a scan of the history. Filtered, the count kept per (stream, type)
    // with each append.
    let total: i64 = match q.event_type {
            None => sqlx::query_scalar(
                "SELECT COALESCE(MAX(version), 0) FROM event WHERE stream_id = $1",
            )
            .bind(stream.as_str()),
            Some(t) => sqlx::query_scalar(
                "SELECT COALESCE((SELECT n FROM event_count WHERE stream_id = $1 AND event_type = $2), 0)",
            )
            .bind(stream.as_str())
            .bind(t),
        }
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    // One statement per shape: a catch-all `($2 IS NULL OR …)` makes PostgreSQL's generic
    // plan walk the stream by position and filter, not the (stream, type, position) index.
    let condition = match (q.event_type.is_some(), q.before_position.is_some()) {
        (false, false) => "",
        (false, true) => "AND position < $3",
        (true, false) => "AND event_type = $2",
        (true, true) => "AND event_type = $2 AND position < $3",
    };
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM event WHERE stream_id = $1 {condition} \
             ORDER BY position DESC LIMIT $4"
    );
    let mut query = sqlx::query(&sql).bind(stream.as_str());
    // Unused numbers are bound as typed NULLs so each shape keeps `$4` for the limit.
    query = match q.event_type {
        Some(t) => query.bind(t),
        None => query.bind(None::<&str>),
    };
    let rows = query
        .bind(q.before_position.map(i64_of).transpose()?)
        .bind(i64_of(q.limit as u64 + 1)?)
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    let mut events = rows.iter().map(event_row).collect::<Result<Vec<_>, _>>()?;
    let has_more = events.len() > q.limit;
    events.truncate(q.limit);
    Ok(StreamPage {
        events,
        total_count: u64_of(total)?,
        has_more,
    })
}

/// Every event of a stream, oldest first, decoding only what a fold reads (the narrative).
pub(crate) async fn fold_input(
    pool: &PgPool,
    stream: &UserId,
) -> Result<Vec<luna_core::Event>, StoreError> {
    // Only what a fold reads: no metadata, ids or stream to parse per row.
    let rows = sqlx::query(
        "SELECT event_type, schema_version, payload::text AS payload, occurred_at_ms FROM event \
         WHERE stream_id = $1 ORDER BY position",
    )
    .bind(stream.as_str())
    .fetch_all(pool)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|r| {
            luna_codec::decode_event(
                r.try_get("event_type").map_err(map_err)?,
                r.try_get("schema_version").map_err(map_err)?,
                r.try_get("payload").map_err(map_err)?,
                r.try_get("occurred_at_ms").map_err(map_err)?,
            )
            .map_err(StoreError::backend)
        })
        .collect()
}
