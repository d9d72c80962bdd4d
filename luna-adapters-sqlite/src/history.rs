//! The derived history data written with each append (ledger rows, usage rollups per day and
//! per span, event counts per type), its reads, and its one-time build for events stored
//! before it existed (issue 9).

use std::sync::LazyLock;

use luna_codec::{LedgerRow, cell_of, stream_rows};
use luna_core::history::{ROW_EVENT_TYPES, TxKind, UsageCell, UsageTotals, sum_cells};
use luna_core::{Timestamp, UserId};
use luna_ports::{HistoryEntry, HistoryPage, StoreError, UsageSplit, bounded};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::{EVENT_COLUMNS, event_row, i64_of, map_err, u64_of};

/// A page of the ledger joined with its events (the event columns qualified), newest first.
static PAGE_SQL: LazyLock<String> = LazyLock::new(|| {
    let event_columns = EVENT_COLUMNS
        .split(", ")
        .map(|c| format!("e.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {event_columns}, l.balance_before AS l_before, l.balance_after AS l_after, \
         l.occurred_at_ms AS l_at, l.kind, l.action, l.app, l.amount AS energy, l.unlimited, l.notional \
         FROM ledger l JOIN event e ON e.stream_id = l.stream_id AND e.position = l.position \
         WHERE l.stream_id = ? AND l.position < ? ORDER BY l.position DESC LIMIT ?"
    )
});

/// Inserts one ledger row and adds it to its day's and span's rollups (the statements appends
/// use).
async fn insert_ledger(
    tx: &mut SqliteConnection,
    stream: &str,
    position: u64,
    row: &LedgerRow,
) -> Result<(), StoreError> {
    use crate::write::{Expr, Script};
    let mut s = Script::default();
    s.ledger(&Expr::text(stream), &Expr::int(i64_of(position)?), row)?;
    s.query().execute(&mut *tx).await.map_err(map_err)?;
    Ok(())
}

/// Builds the ledger and rollups of the events stored before they were kept, once, under
/// the write lock (the first statement marks the work done, so a second process waits for
/// this one and then finds nothing to do).
pub(crate) async fn backfill(writer: &SqlitePool) -> Result<(), StoreError> {
    // A second process opening during another's build waits for it: the busy timeout alone
    // (5 s) is shorter than building a large database.
    let deadline = std::time::Instant::now() + BACKFILL_WAIT;
    loop {
        match backfill_once(writer).await {
            Err(StoreError::Busy) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            done => return done,
        }
    }
}

/// How long opening waits for another process's build of the history data.
const BACKFILL_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

async fn backfill_once(writer: &SqlitePool) -> Result<(), StoreError> {
    let mut tx = writer.begin().await.map_err(map_err)?;
    let claimed = sqlx::query("UPDATE history_backfill SET done = 1 WHERE done = 0")
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    if claimed.rows_affected() == 0 {
        return tx.commit().await.map_err(map_err);
    }
    let streams: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT stream_id FROM event WHERE stream_id NOT IN (SELECT stream_id FROM ledger)",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    let sql = format!("SELECT {EVENT_COLUMNS} FROM event WHERE stream_id = ? ORDER BY position");
    for stream in streams {
        let rows = sqlx::query(&sql)
            .bind(&stream)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        let recorded = rows.iter().map(event_row).collect::<Result<Vec<_>, _>>()?;
        for (position, row) in stream_rows(&recorded) {
            insert_ledger(&mut tx, &stream, position, &row).await?;
        }
    }
    tx.commit().await.map_err(map_err)
}

/// A page of the stream's ledger joined with its events, newest first.
pub(crate) async fn page(
    reader: &SqlitePool,
    stream: &UserId,
    before: Option<u64>,
    limit: usize,
) -> Result<HistoryPage, StoreError> {
    let total: i64 = sqlx::query_scalar(&ROW_COUNT_SQL)
        .bind(stream.as_str())
        .fetch_one(reader)
        .await
        .map_err(map_err)?;
    let rows = sqlx::query(&PAGE_SQL)
        .bind(stream.as_str())
        .bind(before.map_or(Ok(i64::MAX), i64_of)?)
        .bind(i64_of(limit as u64 + 1)?)
        .fetch_all(reader)
        .await
        .map_err(map_err)?;
    let mut entries = rows.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
    let has_more = entries.len() > limit;
    entries.truncate(limit);
    Ok(HistoryPage {
        entries,
        total_count: u64_of(total)?,
        has_more,
    })
}

fn entry(r: &SqliteRow) -> Result<HistoryEntry, StoreError> {
    Ok(HistoryEntry {
        event: event_row(r)?,
        balance_before: r.try_get("l_before").map_err(map_err)?,
        balance_after: r.try_get("l_after").map_err(map_err)?,
        cell: {
            let at: i64 = r.try_get("l_at").map_err(map_err)?;
            cell_of_row(r, Timestamp::from_millis(at).day_number(), 1)?
        },
    })
}

/// The usage cells of `[from, to)`: whole days from the rollups, the edges from the ledger.
pub(crate) async fn usage(
    reader: &SqlitePool,
    stream: &UserId,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> Result<Vec<UsageCell>, StoreError> {
    let split = UsageSplit::of(from, to);
    let mut cells = Vec::new();
    if let Some(days) = split.days {
        let (first, end) = bounded(days);
        let rows = sqlx::query(
            "SELECT day, kind, action, app, row_count, energy, unlimited, notional FROM usage_daily \
             WHERE stream_id = ? AND day >= ? AND day < ?",
        )
        .bind(stream.as_str())
        .bind(first)
        .bind(end)
        .fetch_all(reader)
        .await
        .map_err(map_err)?;
        for r in &rows {
            cells.push(cell(r, r.try_get("day").map_err(map_err)?, "row_count")?);
        }
    }
    cells.extend(edge_cells(reader, stream, &split).await?);
    Ok(sum_cells(cells))
}

/// The usage cells of the range's partial days (at most two), summed per cell by the database.
async fn edge_cells(
    reader: &SqlitePool,
    stream: &UserId,
    split: &UsageSplit,
) -> Result<Vec<UsageCell>, StoreError> {
    let mut cells = Vec::new();
    for edge in &split.edges {
        // The rows of the edge's days lie between the first and last positions their rollups
        // keep: a walk of the ledger's key, filtered by time, summed per cell by the database.
        let (first_day, last_day) = edge.days();
        let rows = sqlx::query(
            "SELECT kind, action, app, COUNT(*) AS one, SUM(amount) AS energy, SUM(unlimited) AS unlimited, \
             SUM(notional) AS notional, occurred_at_ms / 86400000 \
             - (CASE WHEN occurred_at_ms % 86400000 < 0 THEN 1 ELSE 0 END) AS day FROM ledger WHERE stream_id = ?1 \
             AND position >= (SELECT MIN(first_position) FROM usage_daily WHERE stream_id = ?1 AND day >= ?2 AND day <= ?3) \
             AND position <= (SELECT MAX(last_position) FROM usage_daily WHERE stream_id = ?1 AND day >= ?2 AND day <= ?3) \
             AND occurred_at_ms >= ?4 AND occurred_at_ms < ?5 GROUP BY kind, action, app, day",
        )
        .bind(stream.as_str())
        .bind(first_day)
        .bind(last_day)
        .bind(edge.from.millis())
        .bind(edge.to.millis())
        .fetch_all(reader)
        .await
        .map_err(map_err)?;
        for r in &rows {
            cells.push(cell(r, r.try_get("day").map_err(map_err)?, "one")?);
        }
    }
    Ok(cells)
}

/// The range's usage as analytics reads it, summed by the database in one statement: the
/// totals per key from the whole spans' rollups and the loose days' daily rollups (O(keys ×
/// (range / 32 days + 64 loose days)) cells), the consumed energy per day from the daily
/// rollups (O(days), as one JSON array: a row costs more than its SQL here), plus the partial
/// days' cells.
pub(crate) async fn usage_totals(
    reader: &SqlitePool,
    stream: &UserId,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> Result<UsageTotals, StoreError> {
    let split = UsageSplit::of(from, to);
    let (mut keys, mut daily) = (Vec::new(), Vec::new());
    if let Some(days) = split.days {
        // One statement, so the totals and the days come from one snapshot (a consume
        // committed in between would make them disagree). An absent part binds an empty range.
        let (first, end) = bounded(days);
        let [spans, loose, more_loose] = split.key_ranges();
        let rows = sqlx::query(
            "SELECT 0 AS part, kind, action, app, SUM(row_count) AS row_count, \
             SUM(energy) AS energy, SUM(unlimited) AS unlimited, SUM(notional) AS notional, \
             NULL AS daily FROM ( \
             SELECT kind, action, app, row_count, energy, unlimited, notional FROM usage_span \
             WHERE stream_id = ?1 AND span >= ?5 AND span < ?6 \
             UNION ALL SELECT kind, action, app, row_count, energy, unlimited, notional \
             FROM usage_daily WHERE stream_id = ?1 AND day >= ?7 AND day < ?8 \
             UNION ALL SELECT kind, action, app, row_count, energy, unlimited, notional \
             FROM usage_daily WHERE stream_id = ?1 AND day >= ?9 AND day < ?10) \
             GROUP BY kind, action, app \
             UNION ALL SELECT 1, '', '', '', 0, 0, 0, 0, \
             (SELECT json_group_array(json_array(day, energy)) FROM (SELECT day, \
             SUM(energy) AS energy FROM usage_daily WHERE stream_id = ?1 AND day >= ?2 \
             AND day < ?3 AND kind = ?4 GROUP BY day))",
        )
        .bind(stream.as_str())
        .bind(first)
        .bind(end)
        .bind(TxKind::Consume.as_str())
        .bind(spans.0)
        .bind(spans.1)
        .bind(loose.0)
        .bind(loose.1)
        .bind(more_loose.0)
        .bind(more_loose.1)
        .fetch_all(reader)
        .await
        .map_err(map_err)?;
        // Part 0: a key's totals (day 0); part 1: the days' consumed energy, `[[day, energy]…]`.
        for r in &rows {
            let part: i64 = r.try_get("part").map_err(map_err)?;
            if part == 0 {
                keys.push(cell(r, 0, "row_count")?);
            } else {
                let json: String = r.try_get("daily").map_err(map_err)?;
                let days: Vec<(i64, i64)> =
                    serde_json::from_str(&json).map_err(StoreError::backend)?;
                for (day, energy) in days {
                    daily.push((day, u64_of(energy)?));
                }
            }
        }
    }
    let edges = edge_cells(reader, stream, &split).await?;
    Ok(UsageTotals::from_parts(keys, daily, &edges))
}

/// The statement counting a stream's history rows: the counts of the row types.
static ROW_COUNT_SQL: LazyLock<String> = LazyLock::new(|| {
    let types = ROW_EVENT_TYPES
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT COALESCE(SUM(n), 0) FROM event_count WHERE stream_id = ? AND event_type IN ({types})"
    )
});

fn cell_of_row(r: &SqliteRow, day: i64, rows: i64) -> Result<UsageCell, StoreError> {
    cell_of(
        day,
        r.try_get("kind").map_err(map_err)?,
        r.try_get("action").map_err(map_err)?,
        r.try_get("app").map_err(map_err)?,
        rows,
        r.try_get("energy").map_err(map_err)?,
        r.try_get("unlimited").map_err(map_err)?,
        r.try_get("notional").map_err(map_err)?,
    )
    .map_err(StoreError::backend)
}

fn cell(r: &SqliteRow, day: i64, rows: &str) -> Result<UsageCell, StoreError> {
    cell_of_row(r, day, r.try_get(rows).map_err(map_err)?)
}
