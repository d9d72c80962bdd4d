//! One append's writes as ONE multi-statement query: its events, their derived rows (counts,
//! ledger rows, daily rollups), the entity lookups, the projection row and a webhook's
//! processed mark. sqlx runs each SQLite connection on a thread of its own and every query is a
//! trip to it and back (two thread wake-ups); the writer is serial, so those trips, not the
//! statements, were what limited writes (ADR 0009). The same shape of append gives the same
//! text, so its prepared statements are reused.

use luna_codec::{LedgerRow, encode_new, encode_summary};
use luna_core::Timestamp;
use luna_ports::{NewEvent, Receipt, StoreError};
use sqlx::sqlite::SqliteArguments;
use sqlx::{Row, Sqlite, SqliteConnection};

use crate::{i64_of, map_err, u64_of};

/// A value bound to a parameter.
#[derive(Clone)]
pub(crate) enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

/// An SQL expression with its parameters' values: a value (`?`), or e.g. a subquery.
#[derive(Clone)]
pub(crate) struct Expr {
    sql: String,
    args: Vec<Arg>,
}

impl Expr {
    pub(crate) fn text(v: impl Into<String>) -> Expr {
        Expr::from(Arg::Text(v.into()))
    }

    pub(crate) fn int(v: i64) -> Expr {
        Expr::from(Arg::Int(v))
    }
}

impl From<Arg> for Expr {
    fn from(a: Arg) -> Expr {
        Expr {
            sql: "?".to_owned(),
            args: vec![a],
        }
    }
}

/// Statements and the values of their parameters, in order: sqlx binds a multi-statement
/// query's anonymous parameters (`?`) one after another across its statements. (Numbered
/// parameters cannot be used: sqlx binds a statement's unnamed gaps from the same list and
/// stops binding once that list runs out, leaving later parameters NULL.)
#[derive(Default)]
pub(crate) struct Script {
    sql: String,
    args: Vec<Arg>,
}

impl Script {
    /// Appends a statement, each `?` of `template` replaced by the next expression.
    pub(crate) fn push(&mut self, template: &str, exprs: &[&Expr]) {
        assert_eq!(
            template.matches('?').count(),
            exprs.len(),
            "one expression per `?`: {template}"
        );
        let mut parts = template.split('?');
        self.sql.push_str(parts.next().unwrap_or_default());
        for (part, e) in parts.zip(exprs) {
            self.sql.push_str(&e.sql);
            self.args.extend(e.args.iter().cloned());
            self.sql.push_str(part);
        }
        self.sql.push_str(";\n");
    }

    /// The script as one query, its values bound in order.
    pub(crate) fn query(&self) -> sqlx::query::Query<'_, Sqlite, SqliteArguments<'_>> {
        self.args
            .iter()
            .fold(sqlx::query(&self.sql), |q, a| match a {
                Arg::Text(v) => q.bind(v.as_str()),
                Arg::OptText(v) => q.bind(v.as_deref()),
                Arg::Int(v) => q.bind(*v),
                Arg::OptInt(v) => q.bind(*v),
            })
    }

    /// A ledger row at `position` (a value or an expression) and its day's and span's rollups.
    pub(crate) fn ledger(
        &mut self,
        stream: &Expr,
        position: &Expr,
        row: &LedgerRow,
    ) -> Result<(), StoreError> {
        let c = &row.cell;
        let kind = Expr::text(c.kind.as_str());
        let amount = Expr::int(row.amount().map_err(StoreError::backend)?);
        let action = Expr::text(c.action.as_str());
        let app = Expr::text(c.app.as_str());
        let unlimited = Expr::int(i64::from(row.unlimited()));
        let notional = Expr::int(row.notional().map_err(StoreError::backend)?);
        self.push(
            "INSERT INTO ledger (stream_id, position, kind, amount, balance_before, balance_after, \
             occurred_at_ms, action, app, unlimited, notional) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                stream,
                position,
                &kind,
                &amount,
                &Expr::int(row.balance_before),
                &Expr::int(row.balance_after),
                &Expr::int(row.occurred_at_ms),
                &action,
                &app,
                &unlimited,
                &notional,
            ],
        );
        self.push(
            "INSERT INTO usage_daily (stream_id, day, kind, action, app, row_count, energy, \
             unlimited, notional, first_position, last_position) \
             VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?) \
             ON CONFLICT (stream_id, day, kind, action, app) DO UPDATE SET \
             row_count = row_count + 1, energy = energy + excluded.energy, \
             unlimited = unlimited + excluded.unlimited, notional = notional + excluded.notional, \
             first_position = min(first_position, excluded.first_position), \
             last_position = max(last_position, excluded.last_position)",
            &[
                stream,
                &Expr::int(c.day),
                &kind,
                &action,
                &app,
                &amount,
                &unlimited,
                &notional,
                position,
                position,
            ],
        );
        self.push(
            "INSERT INTO usage_span (stream_id, span, kind, action, app, row_count, energy, \
             unlimited, notional) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?) \
             ON CONFLICT (stream_id, span, kind, action, app) DO UPDATE SET \
             row_count = row_count + 1, energy = energy + excluded.energy, \
             unlimited = unlimited + excluded.unlimited, notional = notional + excluded.notional",
            &[
                stream,
                &Expr::int(luna_ports::usage_span(c.day)),
                &kind,
                &action,
                &app,
                &amount,
                &unlimited,
                &notional,
            ],
        );
        Ok(())
    }
}

/// What one append writes besides its idempotency record, between the statements that open
/// and (when nothing follows) release its savepoint in the group commit.
pub(crate) struct Append<'a> {
    pub(crate) open: &'static str,
    pub(crate) close: Option<&'static str>,
    pub(crate) stream: &'a str,
    pub(crate) expected_version: u64,
    pub(crate) events: &'a [NewEvent],
    pub(crate) summary: &'a luna_core::Summary,
    pub(crate) processed: Option<&'a str>,
    pub(crate) now: Timestamp,
}

/// The append's script. Its result rows: each event's `position`, in order, then `projected`
/// if the projection row was at the expected version (absent: the optimistic conflict; a
/// duplicate version or projection row fails as a unique violation, also the conflict).
pub(crate) fn prepare(a: &Append<'_>) -> Result<Script, StoreError> {
    let mut s = Script::default();
    s.push(a.open, &[]);
    let stream = Expr::text(a.stream);
    let now = Expr::int(a.now.millis());
    for (i, e) in a.events.iter().enumerate() {
        let version = Expr::int(i64_of(a.expected_version + 1 + i as u64)?);
        event(&mut s, e, &stream, &version, &now)?;
    }
    projection(&mut s, a, &stream, &now)?;
    if let Some(event_id) = a.processed {
        s.push(
            "INSERT INTO webhook_event (stream_id, event_id, processed_at_ms) VALUES (?, ?, ?)",
            &[&stream, &Expr::text(event_id), &now],
        );
    }
    if let Some(close) = a.close {
        s.push(close, &[]);
    }
    Ok(s)
}

/// An event, its count, its entity lookup and its ledger row and rollup.
fn event(
    s: &mut Script,
    e: &NewEvent,
    stream: &Expr,
    version: &Expr,
    now: &Expr,
) -> Result<(), StoreError> {
    let row = encode_new(e);
    let ledger = LedgerRow::of_new(&e.event, row.balance_after).map_err(StoreError::backend)?;
    let event_type = Expr::text(row.encoded.event_type);
    s.push(
        "INSERT INTO event (event_id, stream_id, version, event_type, schema_version, entity, \
         payload, metadata, occurred_at_ms, recorded_at_ms, balance_after, available_after) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING position",
        &[
            &Expr::text(row.event_id),
            stream,
            version,
            &event_type,
            &Expr::int(i64::from(row.encoded.schema_version)),
            &Arg::OptText(row.encoded.entity).into(),
            &Expr::text(row.encoded.payload),
            &Expr::text(row.metadata),
            &Expr::int(row.occurred_at_ms),
            now,
            &Arg::OptInt(row.balance_after).into(),
            &Arg::OptInt(row.available_after).into(),
        ],
    );
    s.push(
        "INSERT INTO event_count (stream_id, event_type, n) VALUES (?, ?, 1) \
         ON CONFLICT (stream_id, event_type) DO UPDATE SET n = n + 1",
        &[stream, &event_type],
    );
    if let Some(entity) = e.event.kind.directory_entity() {
        s.push(
            "INSERT INTO entity_stream (entity, stream_id) VALUES (?, ?) \
             ON CONFLICT (entity) DO NOTHING",
            &[&Expr::text(entity.key()), stream],
        );
    }
    if let Some(ledger) = ledger {
        let position = Expr {
            sql: "(SELECT position FROM event WHERE stream_id = ? AND version = ?)".to_owned(),
            args: [stream, version]
                .iter()
                .flat_map(|e| e.args.iter().cloned())
                .collect(),
        };
        s.ledger(stream, &position, &ledger)?;
    }
    Ok(())
}

/// The projection row at the new version, if it was at the expected one.
fn projection(s: &mut Script, a: &Append<'_>, stream: &Expr, now: &Expr) -> Result<(), StoreError> {
    let new_version = Expr::int(i64_of(a.expected_version + a.events.len() as u64)?);
    let balance = Expr::int(a.summary.balance.units());
    let summary = Expr::text(encode_summary(a.summary));
    if a.expected_version == 0 {
        s.push(
            "INSERT INTO wallet (stream_id, version, balance, summary, updated_at_ms) \
             VALUES (?, ?, ?, ?, ?) RETURNING 1 AS projected",
            &[stream, &new_version, &balance, &summary, now],
        );
    } else {
        s.push(
            "UPDATE wallet SET version = ?, balance = ?, summary = ?, updated_at_ms = ? \
             WHERE stream_id = ? AND version = ? RETURNING 1 AS projected",
            &[
                &new_version,
                &balance,
                &summary,
                now,
                stream,
                &Expr::int(i64_of(a.expected_version)?),
            ],
        );
    }
    Ok(())
}

/// Runs the append's script ([`prepare`]) on the writer, inside the batch's transaction, and
/// returns the receipts.
pub(crate) async fn append(
    conn: &mut SqliteConnection,
    s: &Script,
    a: &Append<'_>,
) -> Result<Vec<Receipt>, StoreError> {
    let rows = s.query().fetch_all(&mut *conn).await.map_err(map_err)?;
    let mut receipts = Vec::with_capacity(a.events.len());
    let mut projected = false;
    for r in &rows {
        if r.try_get::<i64, _>("projected").is_ok() {
            projected = true;
            continue;
        }
        let position: i64 = r.try_get("position").map_err(map_err)?;
        let Some(e) = a.events.get(receipts.len()) else {
            return Err(StoreError::backend(std::io::Error::other(
                "more positions than events",
            )));
        };
        receipts.push(Receipt {
            event_id: e.event_id,
            version: a.expected_version + 1 + receipts.len() as u64,
            position: u64_of(position)?,
            recorded_at: a.now,
        });
    }
    if !projected {
        // The projection row moved on: the optimistic conflict.
        return Err(StoreError::Conflict);
    }
    if receipts.len() != a.events.len() {
        return Err(StoreError::backend(std::io::Error::other(
            "an event insert returned no position",
        )));
    }
    Ok(receipts)
}
