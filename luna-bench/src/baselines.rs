//! Raw sqlx doing what one consume does to the database — read the projection row, insert the
//! event, update the projection, in one transaction — with precomputed bytes: the database
//! ceiling the hub is compared with.

use std::time::Instant;

use luna_codec::NewEventRow;
use sqlx::{PgPool, SqlitePool};

use crate::stats::Stats;

const USERS_PER_TASK: usize = 4;

/// The baseline on SQLite (same writer pool as the store).
pub async fn sqlite(pool: &SqlitePool, row: &NewEventRow, ops: usize, concurrency: usize) -> Stats {
    let run = uuid::Uuid::new_v4().simple().to_string();
    for t in 0..concurrency {
        for k in 0..USERS_PER_TASK {
            sqlx::query("INSERT INTO wallet (stream_id, version, balance, summary, updated_at_ms) VALUES (?, 0, 0, '{}', 0)")
                .bind(format!("raw-{run}-{t}-{k}"))
                .execute(pool)
                .await
                .expect("baseline wallet");
        }
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let (pool, row, run) = (pool.clone(), row.clone(), run.clone());
        tasks.push(tokio::spawn(async move {
            let mut versions = [0i64; USERS_PER_TASK];
            let mut lat = Vec::new();
            for i in 0..ops / concurrency {
                let k = i % USERS_PER_TASK;
                let stream = format!("raw-{run}-{t}-{k}");
                let s = Instant::now();
                let (_v, _summary): (i64, String) =
                    sqlx::query_as("SELECT version, summary FROM wallet WHERE stream_id = ?")
                        .bind(&stream)
                        .fetch_one(&pool)
                        .await
                        .expect("select");
                let mut tx = pool.begin().await.expect("begin");
                sqlx::query(
                    "INSERT INTO event (event_id, stream_id, version, event_type, schema_version, entity, payload, \
                     metadata, occurred_at_ms, recorded_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING position",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&stream)
                .bind(versions[k] + 1)
                .bind(&row.encoded.event_type)
                .bind(row.encoded.schema_version)
                .bind(Some(format!("tx:{}", uuid::Uuid::now_v7())))
                .bind(&row.encoded.payload)
                .bind(&row.metadata)
                .bind(row.occurred_at_ms)
                .bind(row.occurred_at_ms)
                .fetch_one(&mut *tx)
                .await
                .expect("insert");
                sqlx::query("UPDATE wallet SET version = ?, balance = ?, summary = ?, updated_at_ms = ? WHERE stream_id = ? AND version = ?")
                    .bind(versions[k] + 1)
                    .bind(100)
                    .bind(&row.encoded.payload)
                    .bind(row.occurred_at_ms)
                    .bind(&stream)
                    .bind(versions[k])
                    .execute(&mut *tx)
                    .await
                    .expect("update");
                tx.commit().await.expect("commit");
                versions[k] += 1;
                lat.push(s.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    Stats::new(all, start.elapsed())
}

/// The baseline on PostgreSQL (same pool as the store).
#[allow(
    clippy::too_many_lines,
    reason = "the load tool is rebuilt around wrk and pgbench by the performance issue"
)]
pub async fn postgres(pool: &PgPool, row: &NewEventRow, ops: usize, concurrency: usize) -> Stats {
    let run = uuid::Uuid::new_v4().simple().to_string();
    for t in 0..concurrency {
        for k in 0..USERS_PER_TASK {
            sqlx::query("INSERT INTO wallet (stream_id, version, balance, summary, updated_at_ms) VALUES ($1, 0, 0, '{}', 0)")
                .bind(format!("raw-{run}-{t}-{k}"))
                .execute(pool)
                .await
                .expect("baseline wallet");
        }
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let (pool, row, run) = (pool.clone(), row.clone(), run.clone());
        tasks.push(tokio::spawn(async move {
            let mut versions = [0i64; USERS_PER_TASK];
            let mut lat = Vec::new();
            for i in 0..ops / concurrency {
                let k = i % USERS_PER_TASK;
                let stream = format!("raw-{run}-{t}-{k}");
                let s = Instant::now();
                let (_v, _summary): (i64, String) =
                    sqlx::query_as("SELECT version, summary::text FROM wallet WHERE stream_id = $1")
                        .bind(&stream)
                        .fetch_one(&pool)
                        .await
                        .expect("select");
                let mut tx = pool.begin().await.expect("begin");
                sqlx::query(
                    "INSERT INTO event (event_id, stream_id, version, event_type, schema_version, entity, payload, \
                     metadata, occurred_at_ms, recorded_at_ms) \
                     VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::json, $8::json, $9, $10) RETURNING position",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&stream)
                .bind(versions[k] + 1)
                .bind(&row.encoded.event_type)
                .bind(row.encoded.schema_version)
                .bind(Some(format!("tx:{}", uuid::Uuid::now_v7())))
                .bind(&row.encoded.payload)
                .bind(&row.metadata)
                .bind(row.occurred_at_ms)
                .bind(row.occurred_at_ms)
                .fetch_one(&mut *tx)
                .await
                .expect("insert");
                sqlx::query(
                    "UPDATE wallet SET version = $1, balance = $2, summary = $3::json, updated_at_ms = $4 \
                     WHERE stream_id = $5 AND version = $6",
                )
                .bind(versions[k] + 1)
                .bind(100i64)
                .bind(&row.encoded.payload)
                .bind(row.occurred_at_ms)
                .bind(&stream)
                .bind(versions[k])
                .execute(&mut *tx)
                .await
                .expect("update");
                tx.commit().await.expect("commit");
                versions[k] += 1;
                lat.push(s.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    Stats::new(all, start.elapsed())
}
