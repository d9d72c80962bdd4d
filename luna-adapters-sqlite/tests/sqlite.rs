//! The SQLite store: the shared port contract suite, the database-enforced append-only rule,
//! atomicity of an append, and the concurrency storm.

use std::path::PathBuf;
use std::sync::Arc;

use luna_adapters_sqlite::{Durability, SqliteStore};
use luna_app::Hub;
use luna_core::{Catalog, Policy};
use luna_ports::{EventStore, StoreError};
use luna_testkit::contract::{
    DAYS_AROUND_SPAN_EDGES, append_on, every_kind_history, months_of_history, span_counts,
    unique_user,
};
use luna_testkit::storm::{StormPlan, storm};
use luna_testkit::{FixedClock, SequentialIds, ports};

fn fresh_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "luna-sqlite-{}-{}-{}",
        std::process::id(),
        name,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    dir.join("nested").join("luna.db")
}

async fn open(name: &str) -> SqliteStore {
    let url = format!("sqlite://{}", fresh_path(name).display());
    SqliteStore::connect(
        &url,
        Arc::new(FixedClock::default_start()),
        Durability::Full,
    )
    .await
    .expect("open sqlite")
}

async fn fresh_store() -> Option<SqliteStore> {
    Some(open("contract").await)
}

mod contract {
    luna_testkit::store_contract_tests!(super::fresh_store);
}

/// A database whose history rows and rollups are missing (events stored before migration
/// 0007) gets them built from its events when it opens, once.
#[tokio::test]
async fn the_history_of_events_stored_before_it_was_kept_is_built_on_open() {
    let url = format!("sqlite://{}", fresh_path("backfill").display());
    let connect = || async {
        SqliteStore::connect(
            &url,
            Arc::new(FixedClock::default_start()),
            Durability::Full,
        )
        .await
        .expect("open")
    };
    let store = connect().await;
    let u = unique_user("backfill");
    let history = every_kind_history();
    append_on(&store, &u, &[], &history).await.expect("append");
    for sql in [
        "DELETE FROM ledger",
        "DELETE FROM usage_daily",
        "DELETE FROM usage_span",
        "UPDATE history_backfill SET done = 0",
    ] {
        sqlx::query(sql).execute(store.pool()).await.expect(sql);
    }
    let gone = store.history_page(&u, None, 10).await.expect("page");
    assert!(gone.entries.is_empty(), "the rows were removed");
    drop(store);
    let store = connect().await;
    luna_testkit::contract::assert_history_matches_the_fold(&store, &u, &history).await;
    // Built once: reopening finds the work done and leaves the rows as they are.
    drop(store);
    let store = connect().await;
    luna_testkit::contract::assert_history_matches_the_fold(&store, &u, &history).await;
}

/// `luna verify` checks the derived history data against the events: a changed ledger
/// balance, rollup or count is reported.
#[tokio::test]
async fn verify_flags_derived_history_that_differs_from_the_events() {
    // Each change on its own store, so each is caught by its own check.
    for (tamper, expected) in [
        (
            "UPDATE ledger SET balance_after = balance_after + 1 WHERE position = (SELECT MAX(position) FROM ledger)",
            "history rows differ",
        ),
        (
            "UPDATE ledger SET app = 'other' WHERE kind = 'consume'",
            "history rows differ",
        ),
        (
            "UPDATE usage_daily SET energy = energy + 1",
            "usage rollups differ",
        ),
        (
            "UPDATE usage_span SET energy = energy + 1",
            "usage totals over all time differ",
        ),
        (
            "UPDATE usage_span SET span = span + 1000",
            "usage span rollup from",
        ),
        (
            "UPDATE usage_daily SET first_position = last_position + 1",
            "usage of part of",
        ),
        (
            "UPDATE event_count SET n = n + 1 WHERE event_type = 'EnergyConsumed'",
            "EnergyConsumed: ",
        ),
    ] {
        let store = open("verify-history").await;
        let u = unique_user("verify-history");
        append_on(&store, &u, &[], &every_kind_history())
            .await
            .expect("append");
        let report = luna_app::verify::verify(&store, |_| {})
            .await
            .expect("verify");
        assert!(report.is_ok(), "{:?}", report.violations);
        sqlx::query(tamper)
            .execute(store.pool())
            .await
            .expect(tamper);
        let report = luna_app::verify::verify(&store, |_| {})
            .await
            .expect("verify");
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.problem.contains(expected)),
            "{tamper}: {:?}",
            report.violations
        );
    }
}

#[tokio::test]
async fn connecting_creates_the_database_file_and_its_folder() {
    let path = fresh_path("create");
    assert!(!path.parent().expect("parent").exists());
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::connect(
        &url,
        Arc::new(FixedClock::default_start()),
        Durability::Full,
    )
    .await
    .expect("open");
    store.ping().await.expect("ping");
    assert!(path.exists());
}

#[tokio::test]
async fn update_and_delete_on_event_are_refused_by_the_database() {
    let store = open("append-only").await;
    let u = unique_user("ao");
    append_on(&store, &u, &[], &every_kind_history()[..2])
        .await
        .expect("append");
    let update = sqlx::query("UPDATE event SET payload = '{}' WHERE stream_id = ?")
        .bind(u.as_str())
        .execute(store.pool())
        .await;
    assert!(update.is_err(), "UPDATE on event must fail");
    let delete = sqlx::query("DELETE FROM event WHERE stream_id = ?")
        .bind(u.as_str())
        .execute(store.pool())
        .await;
    assert!(delete.is_err(), "DELETE on event must fail");
    assert_eq!(store.read_stream(&u).await.expect("read").len(), 2);
}

#[tokio::test]
async fn a_failure_between_the_event_insert_and_the_projection_write_leaves_neither() {
    let store = open("atomic").await;
    let u = unique_user("atomic");
    let history = every_kind_history();
    append_on(&store, &u, &[], &history[..2])
        .await
        .expect("append");
    let before = store.load(&u, &[]).await.expect("load");
    store.inject_failure_after_event_insert();
    let err = append_on(&store, &u, &history[..2], &history[2..4])
        .await
        .expect_err("injected failure");
    assert!(matches!(err, StoreError::Backend(_)), "got {err:?}");
    assert_eq!(
        store.read_stream(&u).await.expect("read").len(),
        2,
        "no event of the failed append"
    );
    let after = store.load(&u, &[]).await.expect("load");
    assert_eq!(
        (after.version, after.summary),
        (before.version, before.summary),
        "projection untouched"
    );
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM event WHERE stream_id = ?")
        .bind(u.as_str())
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(count, 2);
    // and the stream is still writable at its real version
    append_on(&store, &u, &history[..2], &history[2..4])
        .await
        .expect("append after rollback");
}

/// An append whose projection row is not at its version fails `Conflict` and commits nothing,
/// even when its query released its savepoint before the check (the batch is abandoned). The
/// event's unique version catches every real conflict earlier; here the projection row is
/// moved by hand so only the projection's check can see it.
#[tokio::test]
async fn a_projection_conflict_after_the_savepoint_was_released_commits_nothing() {
    let store = open("released").await;
    let u = unique_user("released");
    let history = every_kind_history();
    append_on(&store, &u, &[], &history[..2])
        .await
        .expect("append");
    let moved = "UPDATE wallet SET version = ? WHERE stream_id = ?";
    sqlx::query(moved)
        .bind(7)
        .bind(u.as_str())
        .execute(store.pool())
        .await
        .expect("move the projection row");
    let err = append_on(&store, &u, &history[..2], &history[2..3])
        .await
        .expect_err("the projection row is not at version 2");
    assert!(matches!(err, StoreError::Conflict), "got {err:?}");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM event WHERE stream_id = ?")
        .bind(u.as_str())
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(count, 2, "the event of the failed append is not committed");
    let derived: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger WHERE stream_id = ?")
        .bind(u.as_str())
        .fetch_one(store.pool())
        .await
        .expect("count");
    let rows: i64 = sqlx::query_scalar("SELECT SUM(n) FROM event_count WHERE stream_id = ?")
        .bind(u.as_str())
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(rows, 2, "nor its derived rows ({derived} ledger rows)");
    sqlx::query(moved)
        .bind(2)
        .bind(u.as_str())
        .execute(store.pool())
        .await
        .expect("put the projection row back");
    append_on(&store, &u, &history[..2], &history[2..3])
        .await
        .expect("the writer goes on");
}

/// Group commit: an append dropped mid-way (its client gone) leaves nothing committed — not
/// its events, and not the writes of the batch it was part of, whose members are told to retry
/// — and the writer goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_dropped_mid_way_commits_nothing_and_the_writer_goes_on() {
    let store = Arc::new(open("abandoned").await);
    let (u, v) = (unique_user("abandoned"), unique_user("bystander"));
    let history = every_kind_history();
    append_on(store.as_ref(), &u, &[], &history[..2])
        .await
        .expect("append");
    store.inject_stall_after_event_insert();
    let stalled = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        append_on(store.as_ref(), &u, &history[..2], &history[2..4]),
    )
    .await;
    assert!(stalled.is_err(), "the stalled append was dropped");
    // The writer is free again: another stream's append commits, then this stream's.
    append_on(store.as_ref(), &v, &[], &history[..3])
        .await
        .expect("a later append commits");
    assert_eq!(
        store.read_stream(&u).await.expect("read").len(),
        2,
        "nothing of the dropped append"
    );
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger WHERE stream_id = ?")
        .bind(u.as_str())
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(count, 2, "nor of its history rows");
    append_on(store.as_ref(), &u, &history[..2], &history[2..4])
        .await
        .expect("the stream is writable at its real version");
    let report = luna_app::verify::verify(store.as_ref(), |_| {})
        .await
        .expect("verify");
    assert!(report.is_ok(), "{:?}", report.violations);
}

/// Group commit: an append dropped while its `BEGIN` waits for another process's write lock
/// leaves the writer usable — its connection is closed, not handed back mid-transaction — and
/// later appends commit for real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_dropped_while_beginning_leaves_the_writer_usable() {
    let path = fresh_path("begin-dropped");
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::connect(
        &url,
        Arc::new(FixedClock::default_start()),
        Durability::Full,
    )
    .await
    .expect("open");
    let u = unique_user("begin-dropped");
    let history = every_kind_history();
    // Another process holds the write lock.
    let other = sqlx::SqlitePool::connect(&url).await.expect("other");
    let mut lock = other.begin().await.expect("begin");
    sqlx::query("UPDATE history_backfill SET done = done")
        .execute(&mut *lock)
        .await
        .expect("take the write lock");
    let dropped = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        append_on(&store, &u, &[], &history[..2]),
    )
    .await;
    assert!(
        dropped.is_err(),
        "the append waited for the lock and was dropped"
    );
    lock.rollback().await.expect("release the lock");
    append_on(&store, &u, &[], &history[..2])
        .await
        .expect("the writer is usable");
    // Committed for real: another connection sees it.
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM event WHERE stream_id = ?")
        .bind(u.as_str())
        .fetch_one(&other)
        .await
        .expect("count");
    assert_eq!(count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_of_concurrent_consumes_never_overdraws_and_loses_nothing() {
    let clock = Arc::new(FixedClock::default_start());
    let url = format!("sqlite://{}", fresh_path("storm").display());
    let store = Arc::new(
        SqliteStore::connect(&url, clock.clone(), Durability::Full)
            .await
            .expect("open"),
    );
    let hub = Arc::new(Hub::new(
        ports(store.clone(), clock, Arc::new(SequentialIds::new(7))),
        Arc::new(Catalog::builtin()),
        Policy::default(),
    ));
    let report = storm(&[hub], store.as_ref(), StormPlan::FULL, "sqlite-storm").await;
    println!("{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_stay_correct_through_their_projection_caches() {
    // Each store caches the projection rows it writes; the other one's writes make those rows
    // stale, which the version check catches (conflict → row dropped → reread).
    let clock = Arc::new(FixedClock::default_start());
    let url = format!("sqlite://{}", fresh_path("two-stores").display());
    let a = Arc::new(
        SqliteStore::connect(&url, clock.clone(), Durability::Normal)
            .await
            .expect("open a"),
    );
    let b = Arc::new(
        SqliteStore::connect(&url, clock.clone(), Durability::Normal)
            .await
            .expect("open b"),
    );
    let hub = |store: Arc<SqliteStore>, n: u64| {
        Arc::new(Hub::new(
            ports(store, clock.clone(), Arc::new(SequentialIds::new(n))),
            Arc::new(Catalog::builtin()),
            Policy::default(),
        ))
    };
    let hubs = [hub(a.clone(), 1), hub(b, 2)];
    // Reads may lag the other store's writes by the cache TTL: settle before checking.
    let settle = luna_adapters_sqlite::PROJECTION_CACHE_TTL + std::time::Duration::from_millis(100);
    let plan = StormPlan {
        tasks: 8,
        ops_per_task: 60,
        users: 2,
        settle,
    };
    storm(&hubs, a.as_ref(), plan, "sqlite-two").await;
    assert!(
        hubs.iter().map(|h| h.stats().conflicts()).sum::<u64>() > 0,
        "the stores never contended"
    );
}

/// A database migrated to 0008 gets the span rollups of the daily rollups it kept (the
/// migration's statement, checked by `luna verify`'s history check; days before 1970 floored).
#[tokio::test]
async fn the_span_migration_sums_the_daily_rollups_kept_before_it() {
    let store = open("span-migration").await;
    let u = unique_user("span-migration");
    let history = months_of_history();
    append_on(&store, &u, &[], &history).await.expect("append");
    let migration = include_str!("../migrations/0008_usage_span.sql");
    let build = &migration[migration.find("INSERT INTO usage_span").expect("the build")..];
    sqlx::query("DELETE FROM usage_span")
        .execute(store.pool())
        .await
        .expect("delete");
    // Rollups of days before 1970 too: the migration's span is floored like `usage_span`.
    for day in DAYS_AROUND_SPAN_EDGES {
        sqlx::query(
            "INSERT INTO usage_daily (stream_id, day, kind, action, app, row_count, energy, \
             unlimited, notional, first_position, last_position) \
             VALUES ('old-days', ?, 'grant', '', '', 1, 1, 0, 0, 1, 1)",
        )
        .bind(day)
        .execute(store.pool())
        .await
        .expect("an old day's rollup");
    }
    sqlx::query(build).execute(store.pool()).await.expect(build);
    let spans: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT span, row_count FROM usage_span WHERE stream_id = 'old-days' ORDER BY span",
    )
    .fetch_all(store.pool())
    .await
    .expect("spans");
    assert_eq!(spans, span_counts(&DAYS_AROUND_SPAN_EDGES));
    let recorded = store.read_stream(&u).await.expect("read");
    let problems = luna_app::verify::check_history(&store, &u, &recorded)
        .await
        .expect("check");
    assert!(problems.is_empty(), "{problems:?}");
    let spans: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT span) FROM usage_span")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert!(spans >= 3, "the history covers {spans} spans");
}
