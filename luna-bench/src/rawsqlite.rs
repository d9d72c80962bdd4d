//! The SQLite ceiling (issue 9): one writer in a tight loop, one transaction and one durable
//! commit (`synchronous=FULL`, WAL) per consume — insert the event, update the projection at
//! its version, with time-ordered event ids like the hub's — through rusqlite on the same
//! SQLite library sqlx links, in the hub's schema.
//! No HTTP, no pool, no async: what the database alone does one commit at a time.

use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use crate::stats::Stats;

/// Runs consumes for `seconds` over `users` projection rows in the (migrated, empty) database
/// at `path`.
pub(crate) fn consume_loop(path: &std::path::Path, seconds: u64, users: usize) -> Stats {
    let conn = Connection::open(path).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("full");
    let row = crate::sample_consume();
    for u in 0..users {
        conn.execute(
            "INSERT INTO wallet (stream_id, version, balance, summary, updated_at_ms) VALUES (?1, 0, 1000000, '{}', 0)",
            params![format!("raw-{u}")],
        )
        .expect("wallet");
    }
    let mut versions = vec![0i64; users];
    let mut lat = Vec::new();
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    for i in 0.. {
        if Instant::now() >= until {
            break;
        }
        let u = i % users;
        let s = Instant::now();
        let tx = conn.unchecked_transaction().expect("begin");
        tx.prepare_cached(
            "INSERT INTO event (event_id, stream_id, version, event_type, schema_version, entity, payload, \
             metadata, occurred_at_ms, recorded_at_ms, balance_after, available_after) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .expect("prepare")
        .execute(params![
            uuid::Uuid::now_v7().to_string(),
            format!("raw-{u}"),
            versions[u] + 1,
            row.encoded.event_type,
            row.encoded.schema_version,
            row.encoded.entity,
            row.encoded.payload,
            row.metadata,
            row.occurred_at_ms,
            row.occurred_at_ms,
            1_000_000 - 5 * (versions[u] + 1),
            1_000_000 - 5 * (versions[u] + 1),
        ])
        .expect("insert");
        let updated = tx
            .prepare_cached(
                "UPDATE wallet SET version = ?1, balance = balance - 5, updated_at_ms = ?2 \
                 WHERE stream_id = ?3 AND version = ?4",
            )
            .expect("prepare")
            .execute(params![
                versions[u] + 1,
                row.occurred_at_ms,
                format!("raw-{u}"),
                versions[u]
            ])
            .expect("update");
        assert_eq!(updated, 1, "the projection was at its version");
        tx.commit().expect("commit");
        versions[u] += 1;
        lat.push(s.elapsed());
    }
    Stats::new(lat, start.elapsed().max(Duration::from_nanos(1)))
}
