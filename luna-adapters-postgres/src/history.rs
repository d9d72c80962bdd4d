//! The derived history data written with each append (ledger rows, usage rollups per day and
//! per span, event counts per type), its reads, and its one-time build for events stored
//! before it existed (issue 9). An event and all its derived rows are one statement
//! (data-modifying `WITH`), so keeping them costs no round trip.

use std::sync::LazyLock;

use luna_codec::{LedgerRow, cell_of, stream_rows};
use luna_core::history::{ROW_EVENT_TYPES, TxKind, UsageCell, UsageTotals, sum_cells};
use luna_core::{Timestamp, UserId};
use luna_ports::{HistoryEntry, HistoryPage, StoreError, UsageSplit, bounded};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgPool, Postgres, Row};

use crate::{EVENT_COLUMNS, event_row, i64_of, map_err, u64_of};

/// The event's columns, in the order of its values `$1`–`$12`.
macro_rules! event_columns {
    () => {
        "INSERT INTO event (event_id, stream_id, version, event_type, schema_version, entity, \
         payload, metadata, occurred_at_ms, recorded_at_ms, balance_after, available_after) "
    };
}

/// A count row meeting its (stream, type) adds one.
macro_rules! count_conflict {
    () => {
        " ON CONFLICT (stream_id, event_type) DO UPDATE SET n = event_count.n + 1"
    };
}

/// Inserts an event (`$1`–`$12`) and counts it under its type, then the parts given.
macro_rules! event_cte {
    ($($more:tt)*) => {
        concat!(
            "WITH e AS (",
            event_columns!(),
            "VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::json, $8::json, $9, $10, $11, $12) \
             RETURNING position), c AS (INSERT INTO event_count (stream_id, event_type, n) \
             VALUES ($2, $4, 1)",
            count_conflict!(),
            ")",
            $($more)*
        )
    };
}

/// The ledger's columns, in the order of [`ledger_insert`]'s values.
macro_rules! ledger_columns {
    () => {
        "INSERT INTO ledger (stream_id, position, kind, amount, balance_before, balance_after, \
         occurred_at_ms, action, app, unlimited, notional) "
    };
}

/// The ledger row (`$13`–`$21`) at position `$pos`, for the stream `$2`.
macro_rules! ledger_insert {
    ($position:literal) => {
        concat!(
            ledger_columns!(),
            "VALUES ($2, ",
            $position,
            ", $13, $14, $15, $16, $17, $18, $19, $20, $21)"
        )
    };
}

/// The rollup's columns, in the order of [`rollup_insert`]'s values.
macro_rules! rollup_columns {
    () => {
        "INSERT INTO usage_daily (stream_id, day, kind, action, app, row_count, energy, \
         unlimited, notional, first_position, last_position) "
    };
}

/// A rollup row meeting its day's cell adds to it.
macro_rules! rollup_conflict {
    () => {
        " ON CONFLICT (stream_id, day, kind, action, app) DO UPDATE SET \
         row_count = usage_daily.row_count + 1, energy = usage_daily.energy + excluded.energy, \
         unlimited = usage_daily.unlimited + excluded.unlimited, \
         notional = usage_daily.notional + excluded.notional, \
         first_position = LEAST(usage_daily.first_position, excluded.first_position), \
         last_position = GREATEST(usage_daily.last_position, excluded.last_position)"
    };
}

/// The ledger row's day (`$22`) rollup.
macro_rules! rollup_insert {
    ($position:literal) => {
        concat!(
            rollup_columns!(),
            "VALUES ($2, $22, $13, $18, $19, 1, $14, $20, $21, ",
            $position,
            ", ",
            $position,
            ")",
            rollup_conflict!()
        )
    };
}

/// The span of the ledger row's day `$22`: [`luna_ports::usage_span`], the floor of day / 32
/// (`%` truncates toward zero).
macro_rules! span_of_day {
    () => {
        "(($22::bigint - (($22::bigint % 32) + 32) % 32) / 32)"
    };
}
const _: () = assert!(
    luna_ports::USAGE_SPAN_DAYS == 32,
    "span_of_day! divides by 32"
);

/// The span rollup's columns.
macro_rules! span_columns {
    () => {
        "INSERT INTO usage_span (stream_id, span, kind, action, app, row_count, energy, \
         unlimited, notional) "
    };
}

/// A span rollup row meeting its span's cell adds to it.
macro_rules! span_conflict {
    () => {
        " ON CONFLICT (stream_id, span, kind, action, app) DO UPDATE SET \
         row_count = usage_span.row_count + 1, energy = usage_span.energy + excluded.energy, \
         unlimited = usage_span.unlimited + excluded.unlimited, \
         notional = usage_span.notional + excluded.notional"
    };
}

/// The ledger row's span rollup.
macro_rules! span_insert {
    () => {
        concat!(
            span_columns!(),
            "VALUES ($2, ",
            span_of_day!(),
            ", $13, $18, $19, 1, $14, $20, $21)",
            span_conflict!()
        )
    };
}

/// The ledger row and its rollups of the event `e`.
macro_rules! ledger_parts {
    () => {
        concat!(
            ", l AS (",
            ledger_insert!("(SELECT position FROM e)"),
            "), u AS (",
            rollup_insert!("(SELECT position FROM e)"),
            "), s AS (",
            span_insert!(),
            ")"
        )
    };
}

/// A new stream's projection row (`$23` version, `$24` balance, `$25` summary; `$26` unused).
macro_rules! wallet_insert {
    () => {
        ", w AS (INSERT INTO wallet (stream_id, version, balance, summary, updated_at_ms) \
         VALUES ($2, $23, $24, $25::json, $10) RETURNING 1)"
    };
}

/// The event's position.
macro_rules! answer {
    () => {
        " SELECT position FROM e"
    };
}

/// The statement appending one event after the first of its batch on an existing stream, or
/// the first on a new stream (`new_stream`: with the projection row, inserted): with its ledger
/// row and rollup if it is an energy event. The first event on an existing stream is
/// [`single_event_sql`]'s statement, which updates the projection row before anything else, so
/// every writer of a stream takes that row's lock first (ADR 0010: the same order on both
/// paths, no deadlock between them).
pub(crate) fn insert_event_sql(energy: bool, new_stream: bool) -> &'static str {
    match (energy, new_stream) {
        (false, false) => concat!(event_cte!(), answer!()),
        (true, false) => concat!(event_cte!(ledger_parts!()), answer!()),
        (false, true) => concat!(event_cte!(wallet_insert!()), answer!()),
        (true, true) => concat!(event_cte!(ledger_parts!(), wallet_insert!()), answer!()),
    }
}

/// One event on an existing stream as a single statement that writes nothing unless the
/// projection row is still at the expected version (`$26`): the projection update comes first
/// and every insert selects from the row before it (`w` → `e` → count, ledger, rollup), so a
/// moved projection inserts no row and the statement answers none. It needs no transaction
/// around it (ADR 0010). Parameters are numbered as in [`insert_event_sql`] and cast, so
/// pgbench's untyped ones resolve too.
macro_rules! single_event {
    ($($more:tt)*) => {
        concat!(
            "WITH w AS (UPDATE wallet SET version = $23::bigint, balance = $24::bigint, \
             summary = $25::json, updated_at_ms = $10::bigint \
             WHERE stream_id = $2::text AND version = $26::bigint RETURNING 1), e AS (",
            event_columns!(),
            "SELECT $1::uuid, $2::text, $3::bigint, $4::text, $5::integer, $6::text, $7::json, \
             $8::json, $9::bigint, $10::bigint, $11::bigint, $12::bigint FROM w RETURNING position), \
             c AS (INSERT INTO event_count (stream_id, event_type, n) SELECT $2::text, $4::text, 1 FROM e",
            count_conflict!(),
            ")",
            $($more)*
            " SELECT position FROM e"
        )
    };
}

/// The statement of an append that is one event on an existing stream and nothing else, with
/// its ledger row and rollups if it is an energy event (see [`single_event`]).
pub(crate) fn single_event_sql(energy: bool) -> &'static str {
    if energy {
        single_event!(
            ", l AS (",
            ledger_columns!(),
            "SELECT $2::text, position, $13::text, $14::bigint, $15::bigint, $16::bigint, \
             $17::bigint, $18::text, $19::text, $20::bigint, $21::bigint FROM e), u AS (",
            rollup_columns!(),
            "SELECT $2::text, $22::bigint, $13::text, $18::text, $19::text, 1, $14::bigint, \
             $20::bigint, $21::bigint, position, position FROM e",
            rollup_conflict!(),
            "), s AS (",
            span_columns!(),
            "SELECT $2::text, ",
            span_of_day!(),
            ", $13::text, $18::text, $19::text, 1, $14::bigint, $20::bigint, $21::bigint FROM e",
            span_conflict!(),
            ")",
        )
    } else {
        single_event!()
    }
}

/// A ledger row and its rollups for an event already stored (`$1`: its position).
const INSERT_LEDGER: &str = concat!(
    "WITH l AS (",
    ledger_insert!("$1"),
    "), u AS (",
    rollup_insert!("$1"),
    ") ",
    span_insert!()
);

/// Binds a ledger row's columns as `$13`–`$22` after the statement's first twelve.
pub(crate) fn bind_ledger<'q>(
    q: Query<'q, Postgres, PgArguments>,
    row: &'q LedgerRow,
) -> Result<Query<'q, Postgres, PgArguments>, StoreError> {
    let c = &row.cell;
    Ok(q.bind(c.kind.as_str())
        .bind(row.amount().map_err(StoreError::backend)?)
        .bind(row.balance_before)
        .bind(row.balance_after)
        .bind(row.occurred_at_ms)
        .bind(c.action.as_str())
        .bind(c.app.as_str())
        .bind(i64::from(row.unlimited()))
        .bind(row.notional().map_err(StoreError::backend)?)
        .bind(c.day))
}

/// Builds the ledger and rollups of the events stored before they were kept, once: the first
/// statement marks the work done (a second process blocks on that row, then finds nothing to
/// do) and appends wait on the table lock until the build commits.
pub(crate) async fn backfill(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    let claimed = sqlx::query("UPDATE history_backfill SET done = 1 WHERE done = 0")
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    if claimed.rows_affected() == 0 {
        return tx.commit().await.map_err(map_err);
    }
    sqlx::query("LOCK TABLE event IN SHARE MODE")
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    let streams: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT stream_id FROM event WHERE stream_id NOT IN (SELECT stream_id FROM ledger)",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    let sql = format!("SELECT {EVENT_COLUMNS} FROM event WHERE stream_id = $1 ORDER BY position");
    for stream in streams {
        let rows = sqlx::query(&sql)
            .bind(&stream)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        let recorded = rows.iter().map(event_row).collect::<Result<Vec<_>, _>>()?;
        for (position, row) in stream_rows(&recorded) {
            // `$3`–`$12` are unused by this statement but keep the numbering of the append's.
            let q = sqlx::query(INSERT_LEDGER)
                .bind(i64_of(position)?)
                .bind(&stream);
            let q = (3..=12).fold(q, |q, _| q.bind(None::<i64>));
            bind_ledger(q, &row)?
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
    }
    tx.commit().await.map_err(map_err)
}

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
         WHERE l.stream_id = $1 AND l.position < $2 ORDER BY l.position DESC LIMIT $3"
    )
});

/// A page of the stream's ledger joined with its events, newest first.
pub(crate) async fn page(
    pool: &PgPool,
    stream: &UserId,
    before: Option<u64>,
    limit: usize,
) -> Result<HistoryPage, StoreError> {
    let total: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(n), 0)::bigint FROM event_count WHERE stream_id = $1 AND event_type = ANY($2)",
    )
    .bind(stream.as_str())
    .bind(&ROW_EVENT_TYPES[..])
    .fetch_one(pool)
    .await
    .map_err(map_err)?;
    let rows = sqlx::query(&PAGE_SQL)
        .bind(stream.as_str())
        .bind(before.map_or(Ok(i64::MAX), i64_of)?)
        .bind(i64_of(limit as u64 + 1)?)
        .fetch_all(pool)
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

fn entry(r: &PgRow) -> Result<HistoryEntry, StoreError> {
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
    pool: &PgPool,
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
             WHERE stream_id = $1 AND day >= $2 AND day < $3",
        )
        .bind(stream.as_str())
        .bind(first)
        .bind(end)
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
        for r in &rows {
            cells.push(cell(r, r.try_get("day").map_err(map_err)?, "row_count")?);
        }
    }
    cells.extend(edge_cells(pool, stream, &split).await?);
    Ok(sum_cells(cells))
}

/// The usage cells of the range's partial days (at most two), summed per cell by the database.
async fn edge_cells(
    pool: &PgPool,
    stream: &UserId,
    split: &UsageSplit,
) -> Result<Vec<UsageCell>, StoreError> {
    let mut cells = Vec::new();
    for edge in &split.edges {
        // The rows of the edge's days lie between the first and last positions their rollups
        // keep: a walk of the ledger's key, filtered by time, summed per cell by the database.
        let (first_day, last_day) = edge.days();
        let rows = sqlx::query(
            "SELECT kind, action, app, COUNT(*) AS one, SUM(amount)::bigint AS energy, SUM(unlimited)::bigint AS unlimited, \
             SUM(notional)::bigint AS notional, occurred_at_ms / 86400000 \
             - (CASE WHEN occurred_at_ms % 86400000 < 0 THEN 1 ELSE 0 END) AS day FROM ledger WHERE stream_id = $1 \
             AND position >= (SELECT MIN(first_position) FROM usage_daily WHERE stream_id = $1 AND day >= $2 AND day <= $3) \
             AND position <= (SELECT MAX(last_position) FROM usage_daily WHERE stream_id = $1 AND day >= $2 AND day <= $3) \
             AND occurred_at_ms >= $4 AND occurred_at_ms < $5 GROUP BY kind, action, app, day",
        )
        .bind(stream.as_str())
        .bind(first_day)
        .bind(last_day)
        .bind(edge.from.millis())
        .bind(edge.to.millis())
        .fetch_all(pool)
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
/// rollups (O(days), as two arrays: a row costs more than its values), plus the partial days'
/// cells.
pub(crate) async fn usage_totals(
    pool: &PgPool,
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
            "SELECT 0 AS part, kind, action, app, SUM(row_count)::bigint AS row_count, \
             SUM(energy)::bigint AS energy, SUM(unlimited)::bigint AS unlimited, \
             SUM(notional)::bigint AS notional, NULL::bigint[] AS days, \
             NULL::bigint[] AS energies FROM ( \
             SELECT kind, action, app, row_count, energy, unlimited, notional FROM usage_span \
             WHERE stream_id = $1 AND span >= $5 AND span < $6 \
             UNION ALL SELECT kind, action, app, row_count, energy, unlimited, notional \
             FROM usage_daily WHERE stream_id = $1 AND day >= $7 AND day < $8 \
             UNION ALL SELECT kind, action, app, row_count, energy, unlimited, notional \
             FROM usage_daily WHERE stream_id = $1 AND day >= $9 AND day < $10) k \
             GROUP BY kind, action, app \
             UNION ALL SELECT 1, '', '', '', 0, 0, 0, 0, \
             COALESCE(array_agg(day ORDER BY day), '{}'), \
             COALESCE(array_agg(energy ORDER BY day), '{}') FROM (SELECT day, \
             SUM(energy)::bigint AS energy FROM usage_daily WHERE stream_id = $1 AND day >= $2 \
             AND day < $3 AND kind = $4 GROUP BY day) d",
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
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
        // Part 0: a key's totals (day 0); part 1: the days and their consumed energy.
        for r in &rows {
            let part: i32 = r.try_get("part").map_err(map_err)?;
            if part == 0 {
                keys.push(cell(r, 0, "row_count")?);
            } else {
                let days: Vec<i64> = r.try_get("days").map_err(map_err)?;
                let energies: Vec<i64> = r.try_get("energies").map_err(map_err)?;
                if days.len() != energies.len() {
                    return Err(StoreError::Backend(
                        "the days and their energies differ in number".into(),
                    ));
                }
                for (day, energy) in days.into_iter().zip(energies) {
                    daily.push((day, u64_of(energy)?));
                }
            }
        }
    }
    let edges = edge_cells(pool, stream, &split).await?;
    Ok(UsageTotals::from_parts(keys, daily, &edges))
}

fn cell_of_row(r: &PgRow, day: i64, rows: i64) -> Result<UsageCell, StoreError> {
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

fn cell(r: &PgRow, day: i64, rows: &str) -> Result<UsageCell, StoreError> {
    cell_of_row(r, day, r.try_get(rows).map_err(map_err)?)
}
