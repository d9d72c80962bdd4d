//! The events page: one statement per shape, so SQLite walks an index and stops after the
//! page instead of reading the stream's whole history (issue 9).

use luna_core::UserId;
use luna_ports::{PageQuery, StoreError};
use sqlx::sqlite::SqliteRow;

use crate::{EVENT_COLUMNS, SqliteStore, i64_of, map_err};

/// A value bound to a statement whose shape is chosen at run time.
enum SqliteBind<'a> {
    Text(&'a str),
    Int(i64),
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
        let (sql, binds): (String, Vec<SqliteBind<'_>>) = match (
            q.event_type,
            before,
            cursor_version,
        ) {
            (None, None, _) => (
                format!(
                    "SELECT {EVENT_COLUMNS} FROM event WHERE stream_id = ? ORDER BY version DESC LIMIT ?"
                ),
                vec![SqliteBind::Text(stream.as_str()), SqliteBind::Int(limit)],
            ),
            (None, Some(_), Some(v)) => (
                format!(
                    "SELECT {EVENT_COLUMNS} FROM event WHERE stream_id = ? AND version < ? ORDER BY version DESC LIMIT ?"
                ),
                vec![
                    SqliteBind::Text(stream.as_str()),
                    SqliteBind::Int(v),
                    SqliteBind::Int(limit),
                ],
            ),
            // A cursor that is not one of this stream's events (made up by a client): correct,
            // not indexed.
            (None, Some(p), None) => (
                format!(
                    "SELECT {EVENT_COLUMNS} FROM event WHERE stream_id = ? AND position < ? ORDER BY position DESC LIMIT ?"
                ),
                vec![
                    SqliteBind::Text(stream.as_str()),
                    SqliteBind::Int(p),
                    SqliteBind::Int(limit),
                ],
            ),
            (Some(t), None, _) => (
                format!(
                    "SELECT {EVENT_COLUMNS} FROM event WHERE stream_id = ? AND event_type = ? ORDER BY position DESC LIMIT ?"
                ),
                vec![
                    SqliteBind::Text(stream.as_str()),
                    SqliteBind::Text(t),
                    SqliteBind::Int(limit),
                ],
            ),
            (Some(t), Some(p), _) => (
                format!(
                    "SELECT {EVENT_COLUMNS} FROM event WHERE stream_id = ? AND event_type = ? AND position < ? ORDER BY position DESC LIMIT ?"
                ),
                vec![
                    SqliteBind::Text(stream.as_str()),
                    SqliteBind::Text(t),
                    SqliteBind::Int(p),
                    SqliteBind::Int(limit),
                ],
            ),
        };
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = match b {
                SqliteBind::Text(t) => query.bind(t),
                SqliteBind::Int(i) => query.bind(i),
            };
        }
        query.fetch_all(&self.reader).await.map_err(map_err)
    }
}
