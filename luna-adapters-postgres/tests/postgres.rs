//! The PostgreSQL store: the shared port contract suite, the database-enforced append-only
//! rule, atomicity of an append, and the concurrency storm through two pools standing in for
//! two hub instances. Skipped (with a message) without `LUNA_TEST_DATABASE_URL`; required
//! under CI.

use std::sync::Arc;

use luna_adapters_postgres::{POOL_SIZE, PgStore};
use luna_app::Hub;
use luna_core::{Catalog, Policy};
use luna_ports::{EventStore, StoreError};
use luna_testkit::contract::{
    DAYS_AROUND_SPAN_EDGES, append_on, every_kind_history, months_of_history, span_counts,
    unique_user,
};
use luna_testkit::pg::{database_url, fresh_schema};
use luna_testkit::storm::{StormPlan, storm};
use luna_testkit::{FixedClock, SequentialIds, ports};

async fn open(test: &str, schema: &str, clock: Arc<FixedClock>) -> Option<PgStore> {
    let url = database_url(test)?;
    Some(
        PgStore::connect(&url, Some(schema), POOL_SIZE, clock)
            .await
            .expect("connect to LUNA_TEST_DATABASE_URL"),
    )
}

async fn fresh_store() -> Option<PgStore> {
    open(
        "postgres contract",
        &fresh_schema("contract"),
        Arc::new(FixedClock::default_start()),
    )
    .await
}

mod contract {
    luna_testkit::store_contract_tests!(super::fresh_store);
}

/// A database whose history rows and rollups are missing (events stored before migration
/// 0007) gets them built from its events when it opens, once.
#[tokio::test]
async fn the_history_of_events_stored_before_it_was_kept_is_built_on_open() {
    let schema = fresh_schema("backfill");
    let clock = Arc::new(FixedClock::default_start());
    let Some(store) = open("postgres backfill", &schema, clock.clone()).await else {
        return;
    };
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
    let store = open("postgres backfill", &schema, clock.clone())
        .await
        .expect("reopen");
    luna_testkit::contract::assert_history_matches_the_fold(&store, &u, &history).await;
    drop(store);
    let store = open("postgres backfill", &schema, clock)
        .await
        .expect("reopen");
    luna_testkit::contract::assert_history_matches_the_fold(&store, &u, &history).await;
}

#[tokio::test]
async fn update_delete_and_truncate_on_event_are_refused_by_the_database() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let u = unique_user("ao");
    append_on(&store, &u, &[], &every_kind_history()[..2])
        .await
        .expect("append");
    let update = sqlx::query("UPDATE event SET event_type = 'x' WHERE stream_id = $1")
        .bind(u.as_str())
        .execute(store.pool())
        .await;
    assert!(update.is_err(), "UPDATE on event must fail");
    let delete = sqlx::query("DELETE FROM event WHERE stream_id = $1")
        .bind(u.as_str())
        .execute(store.pool())
        .await;
    assert!(delete.is_err(), "DELETE on event must fail");
    let truncate = sqlx::query("TRUNCATE event").execute(store.pool()).await;
    assert!(truncate.is_err(), "TRUNCATE on event must fail");
    assert_eq!(store.read_stream(&u).await.expect("read").len(), 2);
}

#[tokio::test]
async fn a_failure_between_the_event_insert_and_the_projection_write_leaves_neither() {
    let Some(store) = fresh_store().await else {
        return;
    };
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
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM event WHERE stream_id = $1")
        .bind(u.as_str())
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(count, 2, "no event of the failed append");
    let after = store.load(&u, &[]).await.expect("load");
    assert_eq!(
        (after.version, after.summary),
        (before.version, before.summary),
        "projection untouched"
    );
    append_on(&store, &u, &history[..2], &history[2..4])
        .await
        .expect("append after rollback");
}

/// Counts the rows an energy event writes: events, ledger rows, daily and span rollup row
/// counts, event counts.
async fn written_rows(store: &PgStore, u: &luna_core::UserId) -> [i64; 5] {
    let mut counts = [0; 5];
    for (i, sql) in [
        "SELECT COUNT(*) FROM event WHERE stream_id = $1",
        "SELECT COUNT(*) FROM ledger WHERE stream_id = $1",
        "SELECT COALESCE(SUM(row_count), 0)::bigint FROM usage_daily WHERE stream_id = $1",
        "SELECT COALESCE(SUM(row_count), 0)::bigint FROM usage_span WHERE stream_id = $1",
        "SELECT COALESCE(SUM(n), 0)::bigint FROM event_count WHERE stream_id = $1",
    ]
    .into_iter()
    .enumerate()
    {
        counts[i] = sqlx::query_scalar(sql)
            .bind(u.as_str())
            .fetch_one(store.pool())
            .await
            .expect(sql);
    }
    counts
}

/// A one-event append on an existing stream is one statement without a transaction: when the
/// projection row is no longer at the expected version it must write nothing at all (no event,
/// ledger row, rollup or count), not only answer `Conflict`.
#[tokio::test]
async fn a_single_statement_append_on_a_moved_projection_writes_nothing() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let u = unique_user("single");
    let history = every_kind_history();
    let consume = history
        .iter()
        .position(|e| matches!(e.kind, luna_core::EventKind::EnergyConsumed(_)))
        .expect("a consume in the history");
    append_on(&store, &u, &[], &history[..consume])
        .await
        .expect("append");
    let before = written_rows(&store, &u).await;
    let moved = "UPDATE wallet SET version = version + 1 WHERE stream_id = $1";
    sqlx::query(moved)
        .bind(u.as_str())
        .execute(store.pool())
        .await
        .expect(moved);
    let one = &history[consume..=consume];
    let err = append_on(&store, &u, &history[..consume], one)
        .await
        .expect_err("the projection moved on");
    assert!(matches!(err, StoreError::Conflict), "got {err:?}");
    assert_eq!(written_rows(&store, &u).await, before, "nothing written");
    let back = "UPDATE wallet SET version = version - 1 WHERE stream_id = $1";
    sqlx::query(back)
        .bind(u.as_str())
        .execute(store.pool())
        .await
        .expect(back);
    append_on(&store, &u, &history[..consume], one)
        .await
        .expect("append at the right version");
    let after = written_rows(&store, &u).await;
    assert_eq!(
        after,
        before.map(|n| n + 1),
        "the event, its ledger row, its daily and span rollups and its count"
    );
    luna_testkit::contract::assert_history_matches_the_fold(&store, &u, &history[..=consume]).await;
}

/// Two instances (pools) appending to one stream, one-event appends (the single autocommit
/// statement) beside two-event appends (a transaction): both lock the projection row before
/// any event, so they never deadlock. With the transaction path's projection write last (the
/// order before ADR 0010), PostgreSQL detects deadlocks here (40P01, `Busy`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_of_one_stream_on_both_append_paths_do_not_deadlock() {
    let schema = fresh_schema("lockorder");
    let clock = Arc::new(FixedClock::default_start());
    let Some(first) = open("postgres lock order", &schema, clock.clone()).await else {
        return;
    };
    let second = open("postgres lock order", &schema, clock)
        .await
        .expect("second pool");
    let (first, second) = (Arc::new(first), Arc::new(second));
    let u = unique_user("lockorder");
    let app = every_kind_history()
        .into_iter()
        .find(|e| matches!(e.kind, luna_core::EventKind::AppEvent(_)))
        .expect("an app event");
    append_on(&*first, &u, &[], std::slice::from_ref(&app))
        .await
        .expect("seed");
    let (tasks, each) = (8, 20);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = if t % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let (u, app) = (u.clone(), app.clone());
        handles.push(tokio::spawn(async move {
            let batch = vec![app.clone(); if t < tasks / 2 { 1 } else { 2 }];
            let (mut done, mut busy) = (0, 0);
            while done < each {
                let v = store.current_version(&u).await.expect("version");
                let prior = vec![app.clone(); usize::try_from(v).expect("small")];
                match append_on(&*store, &u, &prior, &batch).await {
                    Ok(_) => done += 1,
                    Err(StoreError::Conflict) => {}
                    Err(StoreError::Busy) => busy += 1,
                    Err(e) => panic!("append: {e:?}"),
                }
            }
            busy
        }));
    }
    let mut busy = 0;
    for h in handles {
        busy += h.await.expect("join");
    }
    assert_eq!(busy, 0, "deadlocks between the two append paths");
    let expected = 1 + (tasks / 2) * each + (tasks / 2) * each * 2;
    assert_eq!(first.current_version(&u).await.expect("version"), expected);
}

/// Reads at once go through the coalescers in shared batches: each answer must be its own
/// row — projection and session — as read alone (a dispatch mixing up rows fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_through_the_coalescers_each_get_their_own_row() {
    use luna_core::{Id, Timestamp};
    use luna_ports::{AccountStore, Session};
    let Some(store) = fresh_store().await else {
        return;
    };
    let store = Arc::new(store);
    let history = every_kind_history();
    let mut users = Vec::new();
    for i in 0..40_usize {
        let u = unique_user(&format!("coalesce{i}"));
        if i % 8 != 7 {
            append_on(&*store, &u, &[], &history[..=i % 10])
                .await
                .expect("append");
            let session = Session {
                user: u.clone(),
                id: Id::from_u128(1000 + i as u128),
                refresh_hash: format!("hash{i}"),
                created_at: Timestamp::from_millis(1),
                last_seen: Timestamp::from_millis(1),
                expires_at: Timestamp::from_millis(i64::try_from(i).expect("small") + 10),
                revoked_at: None,
                user_agent: None,
                address: "127.0.0.1".into(),
            };
            store.create_session(&session).await.expect("session");
        }
        let alone = store.load(&u, &[]).await.expect("load");
        let session = store
            .session(&u, Id::from_u128(1000 + i as u128))
            .await
            .expect("session");
        assert_eq!(session.is_some(), i % 8 != 7);
        users.push((u, i, alone, session));
    }
    let users = Arc::new(users);
    let mut handles = Vec::new();
    for n in 0..400_usize {
        let (store, users) = (store.clone(), users.clone());
        handles.push(tokio::spawn(async move {
            let (u, i, alone, session) = &users[(n * 7) % users.len()];
            let loaded = store.load(u, &[]).await.expect("load");
            assert_eq!(
                (loaded.version, &loaded.summary),
                (alone.version, &alone.summary)
            );
            let read = store
                .session(u, Id::from_u128(1000 + *i as u128))
                .await
                .expect("session");
            assert_eq!(&read, session);
        }));
    }
    for h in handles {
        h.await.expect("each read answered its own row");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_through_two_pools_never_overdraws_and_loses_nothing() {
    let schema = fresh_schema("storm");
    let clock = Arc::new(FixedClock::default_start());
    let Some(a) = open("postgres storm", &schema, clock.clone()).await else {
        return;
    };
    let Some(b) = open("postgres storm", &schema, clock.clone()).await else {
        return;
    };
    let hub = |store: Arc<PgStore>, instance: u64| {
        Arc::new(Hub::new(
            ports(store, clock.clone(), Arc::new(SequentialIds::new(instance))),
            Arc::new(Catalog::builtin()),
            Policy::default(),
        ))
    };
    let a = Arc::new(a);
    let hubs = [hub(a.clone(), 1), hub(Arc::new(b), 2)];
    let report = storm(&hubs, a.as_ref(), StormPlan::FULL, "pg-storm").await;
    assert!(
        hubs.iter().map(|h| h.stats().conflicts()).sum::<u64>() > 0,
        "two instances never conflicted"
    );
    println!("{report:?}");
}

/// A database migrated to 0008 gets the span rollups of the daily rollups it kept (the
/// migration's statement, checked by `luna verify`'s history check; days before 1970 floored).
#[tokio::test]
async fn the_span_migration_sums_the_daily_rollups_kept_before_it() {
    let schema = fresh_schema("spans");
    let Some(store) = open(
        "postgres span migration",
        &schema,
        Arc::new(FixedClock::default_start()),
    )
    .await
    else {
        return;
    };
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
             VALUES ('old-days', $1, 'grant', '', '', 1, 1, 0, 0, 1, 1)",
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
