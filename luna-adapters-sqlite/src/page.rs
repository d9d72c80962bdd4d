//! Reads of a stream: the events page — one statement per shape, so SQLite walks an index and
//! stops after the page instead of reading the stream's whole history (issue 9) — and the
//! fold's input, decoding only what a fold reads.

use luna_core::UserId;
use luna_ports::{PageQuery, StoreError};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use crate::{EVENT_COLUMNS, SqliteStore, i64_of, map_err};

/// A value bound to a statement whose shape is chosen at run time.
enum Bind<'a> {
    Text(&'a str),
    Int(i64),
}

/// The statement of one page shape and its values (the stream first, the limit last).
fn shape<'a>(
    stream: &'a str,
    event_type: Option<&'a str>,
    before: Option<i64>,
    cursor_version: Option<i64>,
    limit: i64,
) -> (String, Vec<Bind<'a>>) {
    let (condition, order, mut binds) = match (event_type, before, cursor_version) {
        (None, None, _) => ("", "version", vec![]),
        (None, Some(_), Some(v)) => ("AND version < ?", "version", vec![Bind::Int(v)]),
        // A cursor that is not one of this stream's events (made up by a client): correct,
        // not indexed.
        (None, Some(p), None) => ("AND position < ?", "position", vec![Bind::Int(p)]),
        (Some(t), None, _) => ("AND event_type = ?", "position", vec![Bind::Text(t)]),
        (Some(t), Some(p), _) => (
            "AND event_type = ? AND position < ?",
            "position",
            vec![Bind::Text(t), Bind::Int(p)],
        ),
    };
    binds.insert(0, Bind::Text(stream));
    binds.push(Bind::Int(limit));
    (
        format!(
            "SELECT {EVENT_COLUMNS} FROM event WHERE stream_id = ? {condition} \
             ORDER BY {order} DESC LIMIT ?"
        ),
        binds,
    )
}

impl SqliteStore {
    /// The rows of a page, newest first, one more than the limit. Each shape is its own
    /// statement so SQLite walks an index and stops after the page: unfiltered, the
    /// (stream, version) index — a cursor is turned into its version first (versions and
    /// positions grow together within a stream); by type, the (stream, type, position) index.
    pub(crate) async fn page_rows(
        &self,
        stream: &UserId,
        q: &PageQuery<'_>,
    ) -> Result<Vec<SqliteRow>, StoreError> {
        let limit = i64_of(q.limit as u64 + 1)?;
        let before = q.before_position.map(i64_of).transpose()?;
        let cursor_version: Option<i64> = match (q.event_type, before) {
            (None, Some(p)) => {
                sqlx::query_scalar("SELECT version FROM event WHERE position = ? AND stream_id = ?")
                    .bind(p)
                    .bind(stream.as_str())
                    .fetch_optional(&self.reader)
                    .await
                    .map_err(map_err)?
            }
            _ => None,
        };
        let (sql, binds) = shape(stream.as_str(), q.event_type, before, cursor_version, limit);
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = match b {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        query.fetch_all(&self.reader).await.map_err(map_err)
    }
}

/// Every event of a stream, oldest first, decoding only what a fold reads (the narrative).
pub(crate) async fn fold_input(
    reader: &SqlitePool,
    stream: &UserId,
) -> Result<Vec<luna_core::Event>, StoreError> {
    // Only what a fold reads: no metadata, ids or stream to parse per row.
    let rows = sqlx::query(
        "SELECT event_type, schema_version, payload, occurred_at_ms FROM event \
             WHERE stream_id = ? ORDER BY position",
    )
    .bind(stream.as_str())
    .fetch_all(reader)
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
