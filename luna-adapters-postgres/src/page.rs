//! The events page: one statement per shape so PostgreSQL walks the right index, and
//! `total_count` from one index probe (unfiltered) or the count kept per type (filtered).

use luna_core::UserId;
use luna_ports::{PageQuery, StoreError, StreamPage};
use sqlx::PgPool;

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
