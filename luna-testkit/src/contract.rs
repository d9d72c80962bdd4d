//! The port contract suite: what every store must do, as generic functions, expanded into
//! `#[tokio::test]`s for a store by [`store_contract_tests!`](crate::store_contract_tests).
//!
//! In-memory, SQLite and PostgreSQL run these same functions.

use std::collections::BTreeSet;
use std::sync::Arc;

use luna_core::{
    AppEvent, AppSource, Context, EntityRef, Event, EventKind, EventType, Id, RawJson, Summary,
    Timestamp, UserId, Wallet,
};
use luna_ports::{
    AppendBatch, EnergyAfter, EventMetadata, IdempotencyRecord, KeyStore, NewEvent, PageQuery,
    PendingIdempotency, Receipt, Store, StoreError, StoredResponse,
};

use crate::strategies::{Op, Sim};

mod history;

pub use history::{
    DAYS_AROUND_SPAN_EDGES, assert_history_matches_the_fold,
    history_pages_give_every_row_with_its_balances, months_of_history, span_counts,
    usage_of_any_range_equals_the_fold, usage_totals_over_spans_equal_the_fold,
};

/// A user id for tests.
pub fn user(s: &str) -> UserId {
    UserId::parse(s).expect("valid user id")
}

fn meta() -> EventMetadata {
    EventMetadata {
        actor: Some("service:test".into()),
        correlation_id: Some("req-1".into()),
        idempotency_key: Some("k-1".into()),
    }
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn fresh_id() -> Id {
    // Unique across tests sharing one database: high bits from the process id and time.
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    Id::from_u128((t << 32) ^ u128::from(std::process::id()) << 96 ^ u128::from(n))
}

/// A user id no other test uses (tests may share a database).
pub fn unique_user(prefix: &str) -> UserId {
    user(&format!(
        "{prefix}-{}",
        fresh_id().as_u128() % 1_000_000_000_000_000
    ))
}

/// A history with every kind of event the hub writes, produced by `decide`, plus an app event.
pub fn every_kind_history() -> Vec<Event> {
    let ops = [
        Op::Consume(3),
        Op::Reserve(0, 60),
        Op::Release(0),
        Op::Reserve(1, 60),
        Op::Commit(1),
        Op::Refund(0, None, false),
        Op::Purchase(0, 0),
        Op::Grant(10),
        Op::Clawback(0, Some(150)),
        Op::Subscription(true, 1000, 1),
        Op::Audit(0),
        Op::Audit(1),
        Op::Audit(2),
        Op::Audit(3),
    ];
    let mut sim = Sim::run(&ops);
    let ctx = Context::new(
        RawJson::new(r#"{"target_role":"Data Analyst","nested":{"a":[1,2.5,"x",null,true]}}"#),
        None,
        Some("Data Analyst".into()),
        None,
    );
    sim.events.push(Event {
        occurred_at: sim.events.last().map_or(Timestamp::EPOCH, |e| e.occurred_at),
        kind: EventKind::AppEvent(AppEvent {
            event_type: EventType::parse("letter.generated").expect("valid"),
            app_source: AppSource::parse("letters").expect("valid"),
            data: RawJson::new(r#"{"action":"lettre_motivation","context":{"target_role":"Data Analyst","nested":{"a":[1,2.5,"x",null,true]}}}"#),
            metadata: Some(RawJson::new(r#"{"client":"letters-web","v":2}"#)),
            action: Some("lettre_motivation".into()),
            context: Some(ctx),
        }),
    });
    sim.events
}

/// The figures after each of `events` appended on `prior`, as the engine computes them.
pub fn figures(prior: &[Event], events: &[Event]) -> Vec<Option<EnergyAfter>> {
    let mut wallet = Wallet::fold(prior);
    events
        .iter()
        .map(|e| {
            wallet.apply(e);
            (!matches!(e.kind, EventKind::AppEvent(_) | EventKind::Audit(_))).then(|| EnergyAfter {
                balance: wallet.summary.balance.units(),
                available: wallet.summary.available(e.occurred_at),
            })
        })
        .collect()
}

fn new_events(prior: &[Event], events: &[Event]) -> Vec<NewEvent> {
    events
        .iter()
        .zip(figures(prior, events))
        .map(|(e, after)| NewEvent {
            event_id: fresh_id(),
            event: e.clone(),
            metadata: meta(),
            after,
        })
        .collect()
}

/// Appends `events` on top of `prior` (already stored), with the summary they fold to.
pub async fn append_on<S: Store + ?Sized>(
    store: &S,
    stream: &UserId,
    prior: &[Event],
    events: &[Event],
) -> Result<Vec<Receipt>, StoreError> {
    let summary = Wallet::fold(prior.iter().chain(events)).summary;
    let new = new_events(prior, events);
    store
        .append(AppendBatch {
            stream: stream.clone(),
            expected_version: prior.len() as u64,
            events: &new,
            summary: &summary,
            idempotency: None,
            processed: None,
        })
        .await
        .map(|a| a.receipts)
}

/// An unknown stream loads at version 0 with an empty summary.
pub async fn a_new_stream_loads_empty<S: Store + ?Sized>(store: &S) {
    let u = unique_user("empty");
    let loaded = store
        .load(&u, &[EntityRef::Transaction(Id::from_u128(1))])
        .await
        .expect("load");
    assert_eq!(loaded.version, 0);
    assert_eq!(loaded.summary, Summary::default());
    assert!(loaded.entity_events.is_empty());
    assert!(store.read_stream(&u).await.expect("read").is_empty());
}

/// Appended events read back equal, in order, with versions from 1 and increasing positions;
/// the stored summary reads back equal.
pub async fn appended_events_read_back_equal_and_in_order<S: Store + ?Sized>(store: &S) {
    let u = unique_user("roundtrip");
    let history = every_kind_history();
    let kinds: BTreeSet<&str> = history.iter().map(|e| e.kind.type_name()).collect();
    for k in luna_core::HUB_EVENT_TYPES
        .iter()
        .chain(&["letter.generated"])
    {
        assert!(kinds.contains(k), "the sample history lacks {k}");
    }
    let (first, rest) = history.split_at(3);
    let r1 = append_on(store, &u, &[], first)
        .await
        .expect("first append");
    let r2 = append_on(store, &u, first, rest)
        .await
        .expect("second append");
    let receipts: Vec<Receipt> = r1.into_iter().chain(r2).collect();
    assert_eq!(
        receipts.iter().map(|r| r.version).collect::<Vec<_>>(),
        (1..=history.len() as u64).collect::<Vec<_>>()
    );
    assert!(
        receipts.windows(2).all(|w| w[0].position < w[1].position),
        "positions increase"
    );

    let read = store.read_stream(&u).await.expect("read");
    assert_eq!(read.len(), history.len());
    let after = figures(&[], &history);
    assert!(after.iter().any(Option::is_none) && after.iter().any(Option::is_some));
    for (((rec, original), receipt), after) in read.iter().zip(&history).zip(&receipts).zip(&after)
    {
        assert_eq!(&rec.event, original);
        assert_eq!(
            &rec.after, after,
            "the figures after the event are kept with it"
        );
        assert_eq!(rec.stream, u);
        assert_eq!(rec.event_id, receipt.event_id);
        assert_eq!(rec.version, receipt.version);
        assert_eq!(rec.position, receipt.position);
        assert_eq!(rec.metadata, meta());
    }
    let loaded = store.load(&u, &[]).await.expect("load");
    assert_eq!(loaded.version, history.len() as u64);
    assert_eq!(loaded.summary, Wallet::fold(&history).summary);
    assert_eq!(
        store.current_version(&u).await.expect("version"),
        history.len() as u64
    );
    assert_eq!(
        store
            .current_version(&unique_user("nobody"))
            .await
            .expect("version"),
        0,
        "a stream without events is at version 0"
    );
}

/// An append at a stale version is a `Conflict` and writes nothing.
pub async fn an_append_at_a_stale_version_is_a_conflict_and_writes_nothing<S: Store + ?Sized>(
    store: &S,
) {
    let u = unique_user("stale");
    let history = every_kind_history();
    append_on(store, &u, &[], &history[..2])
        .await
        .expect("append");
    let err = append_on(store, &u, &history[..1], &history[1..3])
        .await
        .expect_err("stale");
    assert!(matches!(err, StoreError::Conflict), "got {err:?}");
    let err = append_on(store, &u, &history[..3], &history[3..4])
        .await
        .expect_err("ahead");
    assert!(matches!(err, StoreError::Conflict), "got {err:?}");
    assert_eq!(store.read_stream(&u).await.expect("read").len(), 2);
    assert_eq!(
        store.load(&u, &[]).await.expect("load").summary,
        Wallet::fold(&history[..2]).summary
    );
}

/// Of many concurrent appends at the same version, exactly one wins.
pub async fn concurrent_appends_at_one_version_let_exactly_one_win<S: Store + 'static>(
    store: Arc<S>,
) {
    let u = unique_user("race");
    let history = every_kind_history();
    append_on(store.as_ref(), &u, &[], &history[..1])
        .await
        .expect("open");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, u, h) = (store.clone(), u.clone(), history.clone());
        tasks.push(tokio::spawn(async move {
            append_on(store.as_ref(), &u, &h[..1], &h[1..2]).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict | StoreError::Busy) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.read_stream(&u).await.expect("read").len(), 2);
}

/// `load` returns the events of the named entities only, oldest first.
pub async fn load_returns_the_named_entities_events<S: Store + ?Sized>(store: &S) {
    let u = unique_user("entities");
    let history = every_kind_history();
    append_on(store, &u, &[], &history).await.expect("append");
    let full = Wallet::fold(&history);
    let (tx, entity) = full
        .transactions
        .iter()
        .find(|(_, t)| t.hold.is_some() && t.consume.is_some())
        .expect("a commit");
    assert!(entity.hold.is_some());
    let payment = full.purchases.keys().next().expect("a purchase").clone();
    let refs = [
        EntityRef::Transaction(*tx),
        EntityRef::Payment(payment.clone()),
    ];
    let loaded = store.load(&u, &refs).await.expect("load");
    let expected: Vec<&Event> = history
        .iter()
        .filter(|e| e.kind.entity_ref().is_some_and(|r| refs.contains(&r)))
        .collect();
    assert_eq!(
        loaded
            .entity_events
            .iter()
            .map(|r| &r.event)
            .collect::<Vec<_>>(),
        expected
    );
    let restored = Wallet::restore(
        loaded.summary,
        loaded.entity_events.iter().map(|r| &r.event),
    );
    assert_eq!(restored.transactions.get(tx), full.transactions.get(tx));
    assert_eq!(
        restored.purchases.get(&payment),
        full.purchases.get(&payment)
    );
}

/// `find_stream` finds the stream of an entity, and nothing for an unknown one.
pub async fn find_stream_locates_an_entity<S: Store + ?Sized>(store: &S) {
    let u = unique_user("owner");
    let history = every_kind_history();
    append_on(store, &u, &[], &history).await.expect("append");
    let tx = history.iter().find_map(|e| match &e.kind {
        EventKind::EnergyReserved(r) => Some(r.tx),
        _ => None,
    });
    let tx = tx.expect("a reservation");
    assert_eq!(
        store
            .find_stream(&EntityRef::Transaction(tx))
            .await
            .expect("find"),
        Some(u.clone())
    );
    assert_eq!(
        store
            .find_stream(&EntityRef::Transaction(fresh_id()))
            .await
            .expect("find"),
        None
    );
}

/// `read_all` returns every stream's events by increasing position.
pub async fn read_all_orders_every_stream_by_position<S: Store + ?Sized>(store: &S) {
    let (a, b) = (unique_user("all-a"), unique_user("all-b"));
    let history = every_kind_history();
    let ra = append_on(store, &a, &[], &history[..2]).await.expect("a");
    let rb = append_on(store, &b, &[], &history[..3]).await.expect("b");
    let after = ra[0].position - 1;
    let mut seen = Vec::new();
    let mut cursor = after;
    loop {
        let batch = store.read_all(cursor, 2).await.expect("read_all");
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 2);
        cursor = batch.last().expect("non-empty").position;
        seen.extend(batch);
    }
    assert!(seen.windows(2).all(|w| w[0].position < w[1].position));
    let ids: BTreeSet<Id> = seen.iter().map(|r| r.event_id).collect();
    for r in ra.iter().chain(&rb) {
        assert!(ids.contains(&r.event_id), "read_all misses an event");
    }
}

/// Pages are newest first, continue with a cursor, filter by type and count every match.
pub async fn read_page_is_newest_first_with_cursor_filter_and_total<S: Store + ?Sized>(store: &S) {
    let u = unique_user("page");
    let history = every_kind_history();
    append_on(store, &u, &[], &history).await.expect("append");
    let n = history.len();
    let first = store
        .read_page(
            &u,
            PageQuery {
                before_position: None,
                limit: 4,
                event_type: None,
            },
        )
        .await
        .expect("page");
    assert_eq!(first.total_count, n as u64);
    assert_eq!(first.events.len(), 4);
    assert!(first.has_more);
    assert!(
        first
            .events
            .windows(2)
            .all(|w| w[0].position > w[1].position)
    );
    assert_eq!(first.events[0].event, history[n - 1]);
    let before = first.events.last().expect("page").position;
    let second = store
        .read_page(
            &u,
            PageQuery {
                before_position: Some(before),
                limit: 100,
                event_type: None,
            },
        )
        .await
        .expect("page");
    assert_eq!(second.events.len(), n - 4);
    assert!(!second.has_more);
    assert_eq!(second.events.last().expect("page").event, history[0]);
    let consumes = history
        .iter()
        .filter(|e| e.kind.type_name() == "EnergyConsumed")
        .count();
    let filtered = store
        .read_page(
            &u,
            PageQuery {
                before_position: None,
                limit: 1,
                event_type: Some("EnergyConsumed"),
            },
        )
        .await
        .expect("page");
    assert_eq!(filtered.total_count, consumes as u64);
    assert!(
        filtered
            .events
            .iter()
            .all(|e| e.event.kind.type_name() == "EnergyConsumed")
    );
}

/// A page of up to 100 events.
async fn page_of<S: Store + ?Sized>(
    store: &S,
    u: &UserId,
    before_position: Option<u64>,
    event_type: Option<&str>,
) -> luna_ports::StreamPage {
    store
        .read_page(
            u,
            PageQuery {
                before_position,
                limit: 100,
                event_type,
            },
        )
        .await
        .expect("page")
}

/// A cursor from another stream, and a cursor with a type filter, page like any other.
pub async fn read_page_takes_foreign_and_filtered_cursors<S: Store + ?Sized>(store: &S) {
    let u = unique_user("page-cursor");
    let other = unique_user("page-other");
    let history = every_kind_history();
    // Another stream's event falls between this stream's two halves.
    let half = history.len() / 2;
    append_on(store, &u, &[], &history[..half])
        .await
        .expect("append");
    let between = append_on(store, &other, &[], &history[..1])
        .await
        .expect("append");
    append_on(store, &u, &history[..half], &history[half..])
        .await
        .expect("append");
    let n = history.len();
    let consumes = history
        .iter()
        .filter(|e| e.kind.type_name() == "EnergyConsumed")
        .count();
    let all = page_of(store, &u, None, None).await;
    let before = all.events[n / 2].position;
    // A cursor that is not one of this stream's events (another stream's, in the middle):
    // this stream's first half is older.
    let foreign = page_of(store, &u, Some(between[0].position), None).await;
    assert_eq!(foreign.events, all.events[n - half..].to_vec());
    // A cursor with a type filter.
    let older_consumes = page_of(store, &u, Some(before), Some("EnergyConsumed")).await;
    let expected: Vec<_> = all
        .events
        .iter()
        .filter(|e| e.position < before && e.event.kind.type_name() == "EnergyConsumed")
        .cloned()
        .collect();
    assert_eq!(older_consumes.events, expected);
    assert_eq!(older_consumes.total_count, consumes as u64);
    // A cursor in the middle of this stream, unfiltered.
    let older = page_of(store, &u, Some(before), None).await;
    assert_eq!(older.events, all.events[n / 2 + 1..].to_vec());
    assert_eq!(older.total_count, n as u64);
}

/// An idempotency record rendered from the receipts is stored with the append.
pub async fn an_idempotency_record_is_written_with_its_append<S: Store + ?Sized>(store: &S) {
    let u = unique_user("idem");
    let key = format!("idem-{}", fresh_id());
    let history = every_kind_history();
    let new = new_events(&[], &history[..2]);
    let summary = Wallet::fold(&history[..2]).summary;
    let appended = store
        .append(AppendBatch {
            stream: u.clone(),
            expected_version: 0,
            events: &new,
            summary: &summary,
            idempotency: Some(PendingIdempotency {
                scope: "service:contract".into(),
                key: key.clone(),
                fingerprint: "fp".into(),
                created_at: Timestamp::from_secs(1000),
                render: Box::new(|receipts: &[Receipt]| {
                    Some(StoredResponse {
                        status: 200,
                        body: format!("pos={}", receipts[1].position).into_bytes(),
                    })
                }),
            }),
            processed: None,
        })
        .await
        .expect("append");
    let record = store
        .get("service:contract", &key)
        .await
        .expect("get")
        .expect("record stored in its principal's scope");
    assert_eq!(record.stream, "service:contract");
    assert_eq!(record.fingerprint, "fp");
    assert_eq!(
        store.get(u.as_str(), &key).await.expect("get"),
        None,
        "records are keyed by scope"
    );
    assert_eq!(record.response.status, 200);
    assert_eq!(
        record.response.body,
        format!("pos={}", appended.receipts[1].position).into_bytes()
    );
}

/// An append whose idempotency key is taken is a `Conflict` and writes nothing.
pub async fn a_taken_idempotency_key_fails_the_whole_append<S: Store + ?Sized>(store: &S) {
    let u = unique_user("idem-taken");
    let key = format!("taken-{}", fresh_id());
    let record = IdempotencyRecord {
        stream: u.to_string(),
        key: key.clone(),
        fingerprint: "first".into(),
        response: StoredResponse {
            status: 402,
            body: b"{}".to_vec(),
        },
        created_at: Timestamp::from_secs(1000),
    };
    store.put(record.clone()).await.expect("put");
    let history = every_kind_history();
    let new = new_events(&[], &history[..1]);
    let summary = Wallet::fold(&history[..1]).summary;
    let err = store
        .append(AppendBatch {
            stream: u.clone(),
            expected_version: 0,
            events: &new,
            summary: &summary,
            idempotency: Some(PendingIdempotency {
                scope: u.to_string(),
                key: key.clone(),
                fingerprint: "second".into(),
                created_at: Timestamp::from_secs(1001),
                render: Box::new(|_: &[Receipt]| {
                    Some(StoredResponse {
                        status: 200,
                        body: vec![],
                    })
                }),
            }),
            processed: None,
        })
        .await
        .expect_err("taken key");
    assert!(matches!(err, StoreError::Conflict), "got {err:?}");
    assert!(store.read_stream(&u).await.expect("read").is_empty());
    assert_eq!(store.load(&u, &[]).await.expect("load").version, 0);
    assert_eq!(
        store.get(u.as_str(), &key).await.expect("get"),
        Some(record)
    );
}

/// `put` refuses a taken key; `purge` removes records older than a time.
pub async fn put_refuses_a_taken_key_and_purge_removes_old_records<S: Store + ?Sized>(store: &S) {
    let key = format!("put-{}", fresh_id());
    let old = IdempotencyRecord {
        stream: "service:put".into(),
        key: key.clone(),
        fingerprint: "f".into(),
        response: StoredResponse {
            status: 201,
            body: b"{\"a\":1}".to_vec(),
        },
        created_at: Timestamp::from_secs(10),
    };
    store.put(old.clone()).await.expect("put");
    assert!(matches!(
        store.put(old.clone()).await,
        Err(StoreError::Conflict)
    ));
    let elsewhere = IdempotencyRecord {
        stream: "service:other".into(),
        ..old.clone()
    };
    store
        .put(elsewhere)
        .await
        .expect("the same key in another stream is another record");
    let newer_key = format!("put-new-{}", fresh_id());
    let newer = IdempotencyRecord {
        key: newer_key.clone(),
        created_at: Timestamp::from_secs(4_000_000_000),
        ..old
    };
    store.put(newer).await.expect("put newer");
    assert!(store.purge(Timestamp::from_secs(20)).await.expect("purge") >= 1);
    assert_eq!(store.get("service:put", &key).await.expect("get"), None);
    assert!(
        store
            .get("service:put", &newer_key)
            .await
            .expect("get")
            .is_some()
    );
}

/// `summaries` lists streams in id order with their versions, page by page.
pub async fn summaries_list_streams_in_order<S: Store + ?Sized>(store: &S) {
    let prefix = unique_user("sum");
    let users: Vec<UserId> = (0..3).map(|i| user(&format!("{prefix}-{i}"))).collect();
    let history = every_kind_history();
    for (i, u) in users.iter().enumerate() {
        append_on(store, u, &[], &history[..=i])
            .await
            .expect("append");
    }
    let before = user(&format!("{prefix}-"));
    let page = store.summaries(Some(&before), 2).await.expect("summaries");
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].stream, users[0]);
    assert_eq!(page[1].stream, users[1]);
    assert_eq!(page[1].version, 2);
    assert_eq!(page[1].summary, Wallet::fold(&history[..2]).summary);
    let rest = store
        .summaries(Some(&users[1]), 1)
        .await
        .expect("summaries");
    assert_eq!(rest[0].stream, users[2]);
}

/// Keys are found by the hash of their secret until revoked; revocation is listed.
pub async fn service_keys_are_found_by_hash_until_revoked<S: KeyStore + ?Sized>(store: &S) {
    use luna_ports::{Scope, ServiceKey};
    let key = ServiceKey {
        id: fresh_id(),
        name: "letters backend".into(),
        scopes: vec![Scope::EnergyRead, Scope::EnergyWrite],
        created_at: Timestamp::from_secs(1000),
        revoked_at: None,
    };
    let hash = format!("hash-{}", fresh_id());
    store.create_key(&key, &hash).await.expect("create");
    assert_eq!(
        store.find_key(&hash).await.expect("find"),
        Some(key.clone())
    );
    assert_eq!(store.find_key("nope").await.expect("find"), None);
    assert!(matches!(
        store.create_key(&key, &hash).await,
        Err(StoreError::Conflict)
    ));
    assert!(store.list_keys().await.expect("list").contains(&key));
    assert!(
        store
            .revoke_key(key.id, Timestamp::from_secs(2000))
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .revoke_key(key.id, Timestamp::from_secs(2001))
            .await
            .expect("revoke again")
    );
    assert_eq!(store.find_key(&hash).await.expect("find"), None);
    let listed = store.list_keys().await.expect("list");
    let revoked = listed.iter().find(|k| k.id == key.id).expect("listed");
    assert_eq!(revoked.revoked_at, Some(Timestamp::from_secs(2000)));
}

/// Expands the contract suite into `#[tokio::test]`s for a store. `$factory` is an async fn
/// returning `Option<S>` (`None`: the backend is not configured, the test says it is skipped).
#[macro_export]
macro_rules! store_contract_tests {
    ($factory:path) => {
        $crate::store_contract_tests!(@ref $factory;
            a_new_stream_loads_empty,
            appended_events_read_back_equal_and_in_order,
            an_append_at_a_stale_version_is_a_conflict_and_writes_nothing,
            load_returns_the_named_entities_events,
            find_stream_locates_an_entity,
            read_all_orders_every_stream_by_position,
            read_page_is_newest_first_with_cursor_filter_and_total,
            read_page_takes_foreign_and_filtered_cursors,
            history_pages_give_every_row_with_its_balances,
            usage_of_any_range_equals_the_fold,
            usage_totals_over_spans_equal_the_fold,
            an_idempotency_record_is_written_with_its_append,
            a_taken_idempotency_key_fails_the_whole_append,
            put_refuses_a_taken_key_and_purge_removes_old_records,
            summaries_list_streams_in_order,
            service_keys_are_found_by_hash_until_revoked,
            accounts_are_unique_by_email,
            refresh_rotation_is_atomic_and_detects_reuse,
            sessions_list_and_revoke_all,
            attempt_counters_count_to_their_limit,
            a_processed_mark_is_written_with_its_append_and_refuses_a_second,
            customers_link_both_ways,
            the_open_checkout_is_kept_by_compare_and_set,
            unmatched_payments_are_recorded_once,
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_appends_at_one_version_let_exactly_one_win() {
            if let Some(store) = $factory().await {
                $crate::contract::concurrent_appends_at_one_version_let_exactly_one_win(::std::sync::Arc::new(store)).await;
            }
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_registrations_of_one_email_let_exactly_one_win() {
            if let Some(store) = $factory().await {
                $crate::contract::concurrent_registrations_of_one_email_let_exactly_one_win(::std::sync::Arc::new(store)).await;
            }
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_attempts_never_pass_the_limit() {
            if let Some(store) = $factory().await {
                $crate::contract::concurrent_attempts_never_pass_the_limit(::std::sync::Arc::new(store)).await;
            }
        }
    };
    (@ref $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(store) = $factory().await {
                    $crate::contract::$case(&store).await;
                }
            }
        )*
    };
}

// ---- accounts, sessions and counters ---------------------------------------------------

fn account(user: &UserId, email: &str) -> luna_ports::Account {
    luna_ports::Account {
        user: user.clone(),
        email: luna_core::Email::parse(email).expect("valid email"),
        name: Some("Marie".into()),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: Timestamp::from_secs(1000),
    }
}

fn session(user: &UserId, id: Id, hash: &str) -> luna_ports::Session {
    luna_ports::Session {
        user: user.clone(),
        id,
        refresh_hash: hash.into(),
        created_at: Timestamp::from_secs(1000),
        last_seen: Timestamp::from_secs(1000),
        expires_at: Timestamp::from_secs(100_000),
        revoked_at: None,
        user_agent: Some("Firefox".into()),
        address: "203.0.113.1".into(),
    }
}

/// Accounts are found by user and by email; an email (normalised) is taken once.
pub async fn accounts_are_unique_by_email<S: luna_ports::AccountStore + ?Sized>(store: &S) {
    let u = unique_user("acct");
    let email = format!("{u}@example.com");
    let a = account(&u, &email);
    store.create_account(&a).await.expect("create");
    assert_eq!(store.account(&u).await.expect("get"), Some(a.clone()));
    assert_eq!(
        store
            .account_by_email(&luna_core::Email::parse(&email.to_uppercase()).expect("valid"))
            .await
            .expect("by email"),
        Some(a)
    );
    let twin = account(&unique_user("acct-twin"), &email);
    assert!(matches!(
        store.create_account(&twin).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.account(&twin.user).await.expect("get"),
        None,
        "nothing half-written"
    );
}

/// Concurrent registrations of one email: exactly one succeeds.
pub async fn concurrent_registrations_of_one_email_let_exactly_one_win<S>(store: Arc<S>)
where
    S: luna_ports::AccountStore + 'static,
{
    let email = format!("{}@example.com", unique_user("race"));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (store, email) = (store.clone(), email.clone());
        tasks.push(tokio::spawn(async move {
            store
                .create_account(&account(&unique_user(&format!("race{i}")), &email))
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(()) => won += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("a registration failed with {e:?}, not Conflict"),
        }
    }
    assert_eq!(won, 1);
}

/// A refresh hash rotates once; a rotated one comes back as `Reused`; a revoked session
/// rotates no more.
pub async fn refresh_rotation_is_atomic_and_detects_reuse<S: luna_ports::AccountStore + ?Sized>(
    store: &S,
) {
    use luna_ports::Rotation;
    let u = unique_user("rot");
    let id = fresh_id();
    store
        .create_session(&session(&u, id, "h0"))
        .await
        .expect("create");
    let now = Timestamp::from_secs(2000);
    let later = Timestamp::from_secs(200_000);
    assert_eq!(
        store
            .rotate_refresh(&u, id, ("h0", "h1"), now, later)
            .await
            .expect("rotate"),
        Rotation::Rotated
    );
    assert_eq!(
        store
            .rotate_refresh(&u, id, ("h0", "h2"), now, later)
            .await
            .expect("again"),
        Rotation::Reused
    );
    assert_eq!(
        store
            .rotate_refresh(&u, id, ("nope", "h3"), now, later)
            .await
            .expect("unknown"),
        Rotation::Invalid
    );
    let s = store
        .session(&u, id)
        .await
        .expect("get")
        .expect("the session");
    assert_eq!((s.refresh_hash.as_str(), s.expires_at), ("h1", later));
    assert!(store.revoke_session(&u, id, now).await.expect("revoke"));
    assert!(!store.revoke_session(&u, id, now).await.expect("twice"));
    assert_eq!(
        store
            .rotate_refresh(&u, id, ("h1", "h4"), now, later)
            .await
            .expect("revoked"),
        Rotation::Invalid
    );
    assert!(
        !store
            .session(&u, id)
            .await
            .expect("get")
            .expect("kept")
            .is_live(now)
    );
    assert_eq!(
        store
            .rotate_refresh(&u, id, ("h1", "h5"), Timestamp::from_secs(300_000), later)
            .await
            .expect("expired"),
        Rotation::Invalid
    );
}

/// Sessions are listed newest first and revoked all at once; the signing secret is the first
/// one stored.
pub async fn sessions_list_and_revoke_all<S: luna_ports::AccountStore + ?Sized>(store: &S) {
    let u = unique_user("sessions");
    for n in 0..3i64 {
        let mut s = session(&u, fresh_id(), &format!("s{n}"));
        s.created_at = Timestamp::from_secs(1000 + n);
        store.create_session(&s).await.expect("create");
    }
    let listed = store.sessions(&u).await.expect("list");
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .windows(2)
            .all(|w| w[0].created_at >= w[1].created_at)
    );
    assert_eq!(
        store
            .revoke_all_sessions(&u, Timestamp::from_secs(5000))
            .await
            .expect("all"),
        3
    );
    assert_eq!(
        store
            .revoke_all_sessions(&u, Timestamp::from_secs(5000))
            .await
            .expect("again"),
        0
    );
    let first = store
        .signing_secret("first-candidate")
        .await
        .expect("secret");
    assert_eq!(
        store
            .signing_secret("second-candidate")
            .await
            .expect("secret"),
        first
    );
}

/// A bucket counts to its limit, then refuses without counting; an undo gives one back;
/// buckets are cleared by prefix and purged when expired.
pub async fn attempt_counters_count_to_their_limit<S: luna_ports::ThrottleStore + ?Sized>(
    store: &S,
) {
    let prefix = format!("test:{}:", fresh_id());
    let bucket = format!("{prefix}1");
    let end = Timestamp::from_secs(10_000);
    for _ in 0..3 {
        assert!(store.hit(&bucket, end, 3).await.expect("hit"));
    }
    assert!(!store.hit(&bucket, end, 3).await.expect("over"));
    assert!(
        !store
            .hit(&bucket, end, 3)
            .await
            .expect("still over, uncounted")
    );
    store.undo(&bucket).await.expect("undo");
    assert!(store.hit(&bucket, end, 3).await.expect("one back"));
    assert!(
        store
            .hit(&format!("{prefix}2"), end, 3)
            .await
            .expect("other")
    );
    assert_eq!(store.clear(&prefix).await.expect("clear"), 2);
    assert!(store.hit(&bucket, end, 1).await.expect("fresh"));
    assert!(
        store
            .purge(Timestamp::from_secs(10_001))
            .await
            .expect("purge")
            >= 1
    );
    assert!(
        store
            .hit(&bucket, end, 1)
            .await
            .expect("purged, fresh again")
    );
}

/// Concurrent hits on one bucket never count past the limit.
pub async fn concurrent_attempts_never_pass_the_limit<S>(store: Arc<S>)
where
    S: luna_ports::ThrottleStore + 'static,
{
    let bucket = format!("race:{}", fresh_id());
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, bucket) = (store.clone(), bucket.clone());
        tasks.push(tokio::spawn(async move {
            store
                .hit(&bucket, Timestamp::from_secs(10_000), 5)
                .await
                .expect("hit")
        }));
    }
    let mut counted = 0;
    for t in tasks {
        counted += usize::from(t.await.expect("task"));
    }
    assert_eq!(counted, 5);
}

// ---- billing records ---------------------------------------------------------------------

/// A provider event's "processed" mark is written with its append, per stream; an append
/// carrying a mark already written fails whole (the event was applied).
pub async fn a_processed_mark_is_written_with_its_append_and_refuses_a_second<S>(store: &S)
where
    S: Store + luna_ports::BillingStore + ?Sized,
{
    let u = unique_user("billing");
    let other = unique_user("billing-other");
    let history = every_kind_history();
    let mark = |prior: &[Event], events: &[Event]| {
        let summary = Wallet::fold(prior.iter().chain(events)).summary;
        (new_events(prior, events), summary)
    };
    let (new, summary) = mark(&[], &history[..1]);
    store
        .append(AppendBatch {
            stream: u.clone(),
            expected_version: 0,
            events: &new,
            summary: &summary,
            idempotency: None,
            processed: Some("evt_contract_1"),
        })
        .await
        .expect("first append");
    assert!(store.is_processed(&u, "evt_contract_1").await.unwrap());
    assert!(!store.is_processed(&other, "evt_contract_1").await.unwrap());
    assert!(!store.is_processed(&u, "evt_contract_2").await.unwrap());
    let (new, summary) = mark(&history[..1], &history[1..2]);
    let err = store
        .append(AppendBatch {
            stream: u.clone(),
            expected_version: 1,
            events: &new,
            summary: &summary,
            idempotency: None,
            processed: Some("evt_contract_1"),
        })
        .await
        .expect_err("the mark is taken");
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    assert_eq!(
        store.current_version(&u).await.unwrap(),
        1,
        "nothing written"
    );
}

/// A customer links to one user, both ways; a repeated link changes nothing.
pub async fn customers_link_both_ways<S: luna_ports::BillingStore + ?Sized>(store: &S) {
    let u = unique_user("customer");
    let customer = format!("cus_{:032x}", fresh_id().as_u128());
    assert_eq!(store.customer_of(&u).await.unwrap(), None);
    store.link_customer(&u, &customer).await.unwrap();
    store.link_customer(&u, &customer).await.unwrap();
    assert_eq!(store.customer_of(&u).await.unwrap(), Some(customer.clone()));
    assert_eq!(store.user_of_customer(&customer).await.unwrap(), Some(u));
    assert_eq!(store.user_of_customer("cus_unknown").await.unwrap(), None);
}

/// The open checkout is kept by compare-and-set: of two openings at once, one is kept.
pub async fn the_open_checkout_is_kept_by_compare_and_set<S: luna_ports::BillingStore + ?Sized>(
    store: &S,
) {
    let u = unique_user("checkout");
    let checkout = |id: &str| luna_ports::OpenCheckout {
        id: id.into(),
        url: format!("https://pay.example/{id}"),
        expires_at: Timestamp::from_secs(2_000_000_000),
    };
    assert!(
        store
            .keep_checkout(&u, None, &checkout("cs_a"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .keep_checkout(&u, None, &checkout("cs_b"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .keep_checkout(&u, Some("cs_x"), &checkout("cs_b"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.open_checkout(&u).await.unwrap(),
        Some(checkout("cs_a"))
    );
    assert!(
        store
            .keep_checkout(&u, Some("cs_a"), &checkout("cs_b"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.open_checkout(&u).await.unwrap(),
        Some(checkout("cs_b"))
    );
}

/// An unmatched payment is recorded once and listed since a time.
pub async fn unmatched_payments_are_recorded_once<S: luna_ports::BillingStore + ?Sized>(store: &S) {
    let payment =
        luna_core::PaymentRef::parse(&format!("pi_{:032x}", fresh_id().as_u128())).unwrap();
    let seen = Timestamp::from_secs(1_900_000_000);
    let u = luna_ports::UnmatchedPayment {
        payment: payment.clone(),
        reason: "amount_mismatch".into(),
        amount: luna_core::Cents::new(100),
        currency: luna_core::Currency::EUR,
        user_id: Some("usr_1".into()),
        pack: Some("cafe_luna".into()),
        seen_at: seen,
    };
    store.record_unmatched(&u).await.unwrap();
    store
        .record_unmatched(&luna_ports::UnmatchedPayment {
            reason: "another reason".into(),
            ..u.clone()
        })
        .await
        .unwrap();
    let listed: Vec<_> = store
        .unmatched_since(seen)
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.payment == payment)
        .collect();
    assert_eq!(listed, vec![u]);
}
