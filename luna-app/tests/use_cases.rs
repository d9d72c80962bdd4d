//! The use cases against the in-memory store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use luna_app::{
    AppError, ConsumeOutcome, ConsumeRequest, CreditRequest, CreditStatus, Hub, Idempotency,
    RefundRequest, Reply, ReserveRequest,
};
use luna_core::{
    AppEvent, AppSource, Catalog, ClawbackCause, Context, DomainError, Energy, EntityRef,
    EventType, PaymentRef, Policy, RawJson, Span, SubscriptionChanged, SubscriptionRef,
    SubscriptionStatus, Timestamp, UserId,
};
use luna_ports::{
    AppendBatch, Appended, Clock, EventMetadata, EventStore, IdempotencyRecord, IdempotencyStore,
    LoadedWallet, PageQuery, RecordedEvent, StoreError, StoredResponse, StoredSummary, StreamPage,
};
use luna_testkit::strategies::{eur, pack_id};
use luna_testkit::{FixedClock, MemoryStore, SequentialIds};

struct TestHub {
    hub: Arc<Hub>,
    clock: Arc<FixedClock>,
    store: Arc<MemoryStore>,
}

fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn meta() -> EventMetadata {
    EventMetadata {
        actor: Some("service:test".into()),
        ..EventMetadata::default()
    }
}

fn encode_debug<T: std::fmt::Debug>(r: &Result<T, AppError>) -> Option<StoredResponse> {
    match r {
        Err(AppError::Infrastructure(_)) => None,
        Ok(v) => Some(StoredResponse {
            status: 200,
            body: format!("{v:?}").into_bytes(),
        }),
        Err(e) => Some(StoredResponse {
            status: 400,
            body: format!("{e:?}").into_bytes(),
        }),
    }
}

impl TestHub {
    fn new() -> TestHub {
        let clock = Arc::new(FixedClock::default_start());
        let store = Arc::new(MemoryStore::new(clock.clone()));
        let hub = Arc::new(Self::hub_on(store.clone(), clock.clone(), 1));
        TestHub { hub, clock, store }
    }

    fn hub_on<S>(store: Arc<S>, clock: Arc<FixedClock>, instance: u64) -> Hub
    where
        S: luna_ports::Store + 'static,
    {
        let others = Arc::new(MemoryStore::new(clock.clone()));
        let mut ports = luna_testkit::ports(others, clock, Arc::new(SequentialIds::new(instance)));
        ports.store = store;
        Hub::new(ports, Arc::new(Catalog::builtin()), Policy::default())
    }

    async fn consume(&self, u: &str, action: &str) -> Result<ConsumeOutcome, AppError> {
        self.hub
            .consume(
                ConsumeRequest {
                    user: user(u),
                    action: action.into(),
                    context: None,
                },
                &meta(),
                None,
            )
            .await
            .map(|r| r.fresh().unwrap())
    }

    async fn balance(&self, u: &str) -> i64 {
        self.hub
            .check(&user(u), &meta())
            .await
            .unwrap()
            .view
            .current_energy
    }

    async fn event_count(&self, u: &str) -> usize {
        self.store.read_stream(&user(u)).await.unwrap().len()
    }
}

fn idem<T>(key: &str, fp: &str, encode: &luna_app::Encoder<T>) -> Idempotency<T> {
    Idempotency {
        principal: "service:test".into(),
        key: key.into(),
        fingerprint: fp.into(),
        encode: encode.clone(),
    }
}

#[tokio::test]
async fn a_first_consume_opens_the_account_and_debits_the_cost() {
    let t = TestHub::new();
    let out = t.consume("alice", "lettre_motivation").await.unwrap();
    assert_eq!(out.energy_consumed, Energy::new(15));
    assert_eq!(out.energy_remaining, 70);
    assert!(!out.unlimited);
    assert_eq!(t.event_count("alice").await, 2);
    assert_eq!(t.balance("alice").await, 70);
}

#[tokio::test]
async fn a_check_opens_an_unknown_account_once() {
    let t = TestHub::new();
    let first = t.hub.check(&user("bob"), &meta()).await.unwrap();
    assert_eq!((first.view.current_energy, first.stream_version), (85, 1));
    let again = t.hub.check(&user("bob"), &meta()).await.unwrap();
    assert_eq!(again.stream_version, 1);
}

#[tokio::test]
async fn reads_of_an_unknown_user_open_nothing() {
    let t = TestHub::new();
    let u = user("ghost");
    assert!(
        t.hub
            .transactions(&u, None, 50)
            .await
            .unwrap()
            .lines
            .is_empty()
    );
    assert_eq!(
        t.hub
            .analytics(&u, None, None)
            .await
            .unwrap()
            .analytics
            .total_transactions,
        0
    );
    assert!(
        t.hub
            .events(&u, None, 50, None)
            .await
            .unwrap()
            .events
            .is_empty()
    );
    assert!(t.hub.narrative(&u).await.unwrap().events.is_empty());
    assert_eq!(t.event_count("ghost").await, 0);
}

#[tokio::test]
async fn an_unknown_action_is_refused_without_an_effect() {
    let t = TestHub::new();
    let err = t.consume("alice", "teleport").await.unwrap_err();
    assert!(matches!(err, AppError::UnknownAction(a) if a.0 == "teleport"));
    assert_eq!(t.event_count("alice").await, 0);
}

#[tokio::test]
async fn a_consume_beyond_the_balance_is_refused_with_the_shortfall() {
    let t = TestHub::new();
    t.consume("alice", "plan_reconversion").await.unwrap();
    t.consume("alice", "mirror_match").await.unwrap();
    let err = t.consume("alice", "mirror_match").await.unwrap_err();
    let AppError::Domain(DomainError::InsufficientEnergy(s)) = err else {
        panic!("{err:?}")
    };
    assert_eq!((s.current, s.available, s.deficit), (5, 5, 25));
    assert_eq!(s.required_pack.unwrap().as_str(), "cafe_luna");
    assert_eq!(t.balance("alice").await, 5);
}

#[tokio::test]
async fn a_repeated_idempotency_key_replays_the_first_outcome_without_a_second_effect() {
    let t = TestHub::new();
    let enc: luna_app::Encoder<ConsumeOutcome> = Arc::new(encode_debug::<ConsumeOutcome>);
    let key = idem("svc|consume|k1", "fp-a", &enc);
    let req = || ConsumeRequest {
        user: user("alice"),
        action: "lettre_motivation".into(),
        context: None,
    };
    let first = t.hub.consume(req(), &meta(), Some(&key)).await.unwrap();
    let Reply::Fresh(first) = first else {
        panic!("first is fresh")
    };
    let second = t.hub.consume(req(), &meta(), Some(&key)).await.unwrap();
    let Reply::Replayed(stored) = second else {
        panic!("second is replayed")
    };
    assert_eq!(stored.body, format!("{first:?}").into_bytes());
    assert_eq!(t.balance("alice").await, 70);
    let other = idem("svc|consume|k1", "fp-b", &enc);
    let err = t
        .hub
        .consume(req(), &meta(), Some(&other))
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::IdempotencyKeyReused));
}

#[tokio::test]
async fn a_refusal_is_kept_for_its_idempotency_key_too() {
    let t = TestHub::new();
    let enc: luna_app::Encoder<ConsumeOutcome> = Arc::new(encode_debug::<ConsumeOutcome>);
    t.consume("alice", "plan_reconversion").await.unwrap();
    t.consume("alice", "mirror_match").await.unwrap();
    let key = idem("k402", "fp", &enc);
    let req = || ConsumeRequest {
        user: user("alice"),
        action: "mirror_match".into(),
        context: None,
    };
    assert!(t.hub.consume(req(), &meta(), Some(&key)).await.is_err());
    t.hub
        .grant(&user("alice"), Energy::new(100), "support", &meta(), None)
        .await
        .unwrap();
    // topped up since, but the key keeps its first answer
    let replay = t.hub.consume(req(), &meta(), Some(&key)).await.unwrap();
    assert!(matches!(replay, Reply::Replayed(r) if r.status == 400));
    assert_eq!(t.balance("alice").await, 105);
}

#[tokio::test]
async fn a_hold_reserves_then_commits_once_into_a_consume_of_the_same_id() {
    let t = TestHub::new();
    let r = t
        .hub
        .reserve(
            ReserveRequest {
                user: user("alice"),
                action: "mirror_match".into(),
                ttl_seconds: Some(60),
                context: None,
            },
            &meta(),
            None,
        )
        .await
        .unwrap()
        .fresh()
        .unwrap();
    assert_eq!(
        (r.energy_reserved, r.available_energy),
        (Energy::new(30), 55)
    );
    assert_eq!(
        t.hub
            .check(&user("alice"), &meta())
            .await
            .unwrap()
            .view
            .reserved_energy,
        30
    );
    let c1 = t
        .hub
        .commit(r.reservation_id, None, None, &meta(), None)
        .await
        .unwrap()
        .fresh()
        .unwrap();
    let c2 = t
        .hub
        .commit(r.reservation_id, None, None, &meta(), None)
        .await
        .unwrap()
        .fresh()
        .unwrap();
    assert_eq!(c1.transaction_id, r.reservation_id);
    assert_eq!(
        (c1.transaction_id, c1.event_id, c1.energy_consumed),
        (c2.transaction_id, c2.event_id, c2.energy_consumed)
    );
    assert_eq!(t.balance("alice").await, 55);
    let err = t
        .hub
        .release(r.reservation_id, None, &meta(), None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AppError::Domain(DomainError::ReservationCommitted)
    ));
}

#[tokio::test]
async fn only_the_owner_may_commit_or_release_a_hold() {
    let t = TestHub::new();
    let r = t
        .hub
        .reserve(
            ReserveRequest {
                user: user("alice"),
                action: "mirror_match".into(),
                ttl_seconds: None,
                context: None,
            },
            &meta(),
            None,
        )
        .await
        .unwrap()
        .fresh()
        .unwrap();
    let mallory = user("mallory");
    let err = t
        .hub
        .commit(r.reservation_id, Some(&mallory), None, &meta(), None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AppError::Domain(DomainError::ReservationNotFound)
    ));
    let err = t
        .hub
        .release(r.reservation_id, Some(&mallory), &meta(), None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AppError::Domain(DomainError::ReservationNotFound)
    ));
    let released = t
        .hub
        .release(r.reservation_id, Some(&user("alice")), &meta(), None)
        .await
        .unwrap()
        .fresh()
        .unwrap();
    assert_eq!(released.energy_released, Energy::new(30));
    let again = t
        .hub
        .release(r.reservation_id, None, &meta(), None)
        .await
        .unwrap()
        .fresh()
        .unwrap();
    assert_eq!(again.energy_released, Energy::new(30));
    assert_eq!(t.balance("alice").await, 85);
}

#[tokio::test]
async fn an_expired_hold_cannot_be_committed_and_releases_nothing() {
    let t = TestHub::new();
    let r = t
        .hub
        .reserve(
            ReserveRequest {
                user: user("alice"),
                action: "mirror_match".into(),
                ttl_seconds: Some(10),
                context: None,
            },
            &meta(),
            None,
        )
        .await
        .unwrap()
        .fresh()
        .unwrap();
    t.clock.advance(Span::seconds(10));
    let err = t
        .hub
        .commit(r.reservation_id, None, None, &meta(), None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AppError::Domain(DomainError::ReservationExpired)
    ));
    let released = t
        .hub
        .release(r.reservation_id, None, &meta(), None)
        .await
        .unwrap()
        .fresh()
        .unwrap();
    assert_eq!(released.energy_released, Energy::ZERO);
    assert_eq!(released.available_energy, 85);
}

#[tokio::test]
async fn a_refund_gives_energy_back_once() {
    let t = TestHub::new();
    let c = t.consume("alice", "lettre_motivation").await.unwrap();
    let req = || RefundRequest {
        user: user("alice"),
        transaction_id: c.transaction_id,
        amount: Some(Energy::new(5)),
        reason: "ai failed".into(),
        by_user: false,
    };
    let r = t
        .hub
        .refund(req(), &meta(), None)
        .await
        .unwrap()
        .fresh()
        .unwrap();
    assert_eq!(
        (
            r.energy_refunded,
            r.new_energy_balance,
            r.refunded_transaction_id
        ),
        (Energy::new(5), 75, c.transaction_id)
    );
    let err = t.hub.refund(req(), &meta(), None).await.unwrap_err();
    assert!(matches!(
        err,
        AppError::Domain(DomainError::AlreadyRefunded)
    ));
    // another user's consume is not found
    let other = RefundRequest {
        user: user("bob"),
        ..req()
    };
    let err = t.hub.refund(other, &meta(), None).await.unwrap_err();
    assert!(matches!(
        err,
        AppError::Domain(DomainError::TransactionNotFound)
    ));
}

#[tokio::test]
async fn a_payment_is_credited_exactly_once_with_the_first_purchase_bonus() {
    let t = TestHub::new();
    let req = || CreditRequest {
        user: user("alice"),
        pack: pack_id("cafe_luna"),
        payment: PaymentRef::parse("pi_1").unwrap(),
        paid: eur(299),
        reversal: None,
        processed: None,
    };
    let first = t
        .hub
        .credit_purchase(req(), &meta(), None)
        .await
        .unwrap()
        .fresh()
        .unwrap();
    assert_eq!(
        (
            first.status,
            first.energy_added,
            first.bonus_energy,
            first.current_energy
        ),
        (
            CreditStatus::Credited,
            Energy::new(100),
            Energy::new(10),
            195
        )
    );
    let again = t
        .hub
        .credit_purchase(req(), &meta(), None)
        .await
        .unwrap()
        .fresh()
        .unwrap();
    assert_eq!(again.status, CreditStatus::AlreadyCredited);
    assert_eq!(
        (again.purchase_id, again.event_id, again.bonus_energy),
        (first.purchase_id, first.event_id, first.bonus_energy)
    );
    assert_eq!(t.balance("alice").await, 195);
}

#[tokio::test]
async fn a_dispute_claws_the_pack_back_found_by_its_payment() {
    let t = TestHub::new();
    let pi = PaymentRef::parse("pi_9").unwrap();
    t.hub
        .credit_purchase(
            CreditRequest {
                user: user("alice"),
                pack: pack_id("cafe_luna"),
                payment: pi.clone(),
                paid: eur(299),
                reversal: None,
                processed: None,
            },
            &meta(),
            None,
        )
        .await
        .unwrap();
    let out = t
        .hub
        .clawback(&pi, ClawbackCause::Disputed, &meta(), None)
        .await
        .unwrap()
        .fresh()
        .unwrap();
    assert_eq!(
        (out.user, out.energy_revoked, out.new_energy_balance),
        (user("alice"), Energy::new(110), 85)
    );
    let again = t
        .hub
        .clawback(&pi, ClawbackCause::Disputed, &meta(), None)
        .await
        .unwrap()
        .fresh()
        .unwrap();
    assert_eq!(again.energy_revoked, Energy::ZERO);
    let unknown = t
        .hub
        .clawback(
            &PaymentRef::parse("pi_x").unwrap(),
            ClawbackCause::Disputed,
            &meta(),
            None,
        )
        .await;
    assert!(matches!(
        unknown,
        Err(AppError::Domain(DomainError::PurchaseNotFound))
    ));
}

#[tokio::test]
async fn an_unlimited_user_consumes_without_decrement_and_cannot_buy_a_pack() {
    let t = TestHub::new();
    let now = t.clock.now();
    let change = SubscriptionChanged {
        subscription: SubscriptionRef::parse("sub_1").unwrap(),
        status: SubscriptionStatus::Active,
        current_period_end: Some(now.plus(Span::days(30))),
        cancel_at_period_end: false,
        unlimited_plan: true,
        provider_created: now,
    };
    assert!(
        t.hub
            .change_subscription(&user("alice"), change.clone(), &meta(), None)
            .await
            .unwrap()
    );
    let older = SubscriptionChanged {
        status: SubscriptionStatus::Canceled,
        provider_created: now.minus(Span::seconds(5)),
        ..change
    };
    assert!(
        !t.hub
            .change_subscription(&user("alice"), older, &meta(), None)
            .await
            .unwrap()
    );
    let c = t.consume("alice", "plan_reconversion").await.unwrap();
    assert!(c.unlimited);
    assert_eq!(
        (c.energy_consumed, c.notional_cost, c.energy_remaining),
        (Energy::ZERO, Energy::new(50), 85)
    );
    assert!(matches!(
        t.hub.ensure_can_buy(&user("alice")).await,
        Err(AppError::Domain(DomainError::AlreadyUnlimited))
    ));
}

#[tokio::test]
async fn app_events_feed_the_event_list_and_the_narrative() {
    let t = TestHub::new();
    t.consume("alice", "lettre_motivation").await.unwrap();
    let app = AppEvent {
        event_type: EventType::parse("cv.optimized").unwrap(),
        app_source: AppSource::parse("cv").unwrap(),
        data: RawJson::new(r#"{"action":"optimisation_cv"}"#),
        metadata: None,
        action: Some("optimisation_cv".into()),
        context: Some(Context::new(
            RawJson::new("{}"),
            None,
            Some("Data Analyst".into()),
            None,
        )),
    };
    let out = t
        .hub
        .record_app_event(&user("alice"), app, &meta(), None)
        .await
        .unwrap()
        .fresh()
        .unwrap();
    assert_eq!(out.stream_version, 3);
    let page = t.hub.events(&user("alice"), None, 2, None).await.unwrap();
    assert_eq!(page.total_count, 3);
    assert_eq!(page.events[0].event_id, out.event_id);
    assert!(page.has_more);
    let input = t.hub.narrative(&user("alice")).await.unwrap();
    let n = input.narrative();
    assert_eq!(n.total_events, 3);
    assert_eq!(n.apps_mastered, ["cv", "luna_hub"]);
    assert_eq!(n.career_progression, ["Data Analyst"]);
    assert_eq!(input.last_position, Some(out.position));
    let reserved = AppEvent {
        event_type: EventType::parse("EnergyGranted").unwrap(),
        app_source: AppSource::parse("cv").unwrap(),
        data: RawJson::new("{}"),
        metadata: None,
        action: None,
        context: None,
    };
    let err = t
        .hub
        .record_app_event(&user("alice"), reserved, &meta(), None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AppError::Domain(DomainError::ReservedEventType)
    ));
}

#[tokio::test]
async fn the_history_pages_newest_first() {
    let t = TestHub::new();
    for _ in 0..4 {
        t.consume("alice", "conseil_rapide").await.unwrap();
    }
    let p1 = t.hub.transactions(&user("alice"), None, 3).await.unwrap();
    assert_eq!(p1.total_count, 5);
    assert_eq!(p1.lines.len(), 3);
    assert_eq!(
        (
            p1.lines[0].energy_before.units(),
            p1.lines[0].energy_after.units()
        ),
        (70, 65)
    );
    let p2 = t
        .hub
        .transactions(&user("alice"), p1.next_before, 3)
        .await
        .unwrap();
    assert_eq!(p2.lines.len(), 2);
    assert_eq!(p2.lines[1].kind.as_str(), "welcome");
    assert_eq!(p2.next_before, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consumes_on_one_account_never_overdraw() {
    // Two hub instances on one store: in-process locks do not serialise them, the store's
    // version check does.
    let t = TestHub::new();
    let other = Arc::new(TestHub::hub_on(t.store.clone(), t.clock.clone(), 2));
    t.hub.check(&user("alice"), &meta()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let hub = if i % 2 == 0 {
            t.hub.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            hub.consume(
                ConsumeRequest {
                    user: user("alice"),
                    action: "conseil_rapide".into(),
                    context: None,
                },
                &meta(),
                None,
            )
            .await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(AppError::Domain(DomainError::InsufficientEnergy(_))) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 17, "85 / 5 consumes fit");
    assert_eq!(t.balance("alice").await, 0);
    assert_eq!(t.event_count("alice").await, 1 + 17);
}

/// A store whose first appends fail with a conflict, and whose loads can answer from a stale
/// snapshot marked `cached` (as a projection cache of another process's writes may) until the
/// version is read from the database.
struct Flaky {
    inner: MemoryStore,
    conflicts_left: AtomicU32,
    stale: std::sync::Mutex<Option<LoadedWallet>>,
}

#[async_trait]
impl EventStore for Flaky {
    async fn append(&self, batch: AppendBatch<'_>) -> Result<Appended, StoreError> {
        if self.conflicts_left.load(Ordering::SeqCst) > 0 {
            self.conflicts_left.fetch_sub(1, Ordering::SeqCst);
            return Err(StoreError::Conflict);
        }
        self.inner.append(batch).await
    }
    async fn load(&self, s: &UserId, e: &[EntityRef]) -> Result<LoadedWallet, StoreError> {
        if let Some(stale) = self.stale.lock().unwrap().clone().filter(|_| e.is_empty()) {
            return Ok(stale);
        }
        self.inner.load(s, e).await
    }
    async fn current_version(&self, s: &UserId) -> Result<u64, StoreError> {
        self.stale.lock().unwrap().take();
        self.inner.current_version(s).await
    }
    async fn read_stream(&self, s: &UserId) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(s).await
    }
    async fn read_page(&self, s: &UserId, q: PageQuery<'_>) -> Result<StreamPage, StoreError> {
        self.inner.read_page(s, q).await
    }
    async fn history_page(
        &self,
        s: &UserId,
        b: Option<u64>,
        l: usize,
    ) -> Result<luna_ports::HistoryPage, StoreError> {
        self.inner.history_page(s, b, l).await
    }
    async fn usage(
        &self,
        s: &UserId,
        f: Option<Timestamp>,
        t: Option<Timestamp>,
    ) -> Result<Vec<luna_core::history::UsageCell>, StoreError> {
        self.inner.usage(s, f, t).await
    }
    async fn read_all(&self, a: u64, l: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(a, l).await
    }
    async fn find_stream(&self, e: &EntityRef) -> Result<Option<UserId>, StoreError> {
        self.inner.find_stream(e).await
    }
    async fn summaries(
        &self,
        a: Option<&UserId>,
        l: usize,
    ) -> Result<Vec<StoredSummary>, StoreError> {
        self.inner.summaries(a, l).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

#[async_trait]
impl IdempotencyStore for Flaky {
    async fn get(&self, s: &str, k: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.inner.get(s, k).await
    }
    async fn put(&self, r: IdempotencyRecord) -> Result<(), StoreError> {
        self.inner.put(r).await
    }
    async fn purge(&self, b: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge(b).await
    }
}

#[async_trait]
impl luna_ports::KeyStore for Flaky {
    async fn create_key(&self, k: &luna_ports::ServiceKey, h: &str) -> Result<(), StoreError> {
        self.inner.create_key(k, h).await
    }
    async fn find_key(&self, h: &str) -> Result<Option<luna_ports::ServiceKey>, StoreError> {
        self.inner.find_key(h).await
    }
    async fn list_keys(&self) -> Result<Vec<luna_ports::ServiceKey>, StoreError> {
        self.inner.list_keys().await
    }
    async fn revoke_key(&self, id: luna_core::Id, at: Timestamp) -> Result<bool, StoreError> {
        self.inner.revoke_key(id, at).await
    }
}

#[tokio::test]
async fn a_conflict_is_retried_and_the_command_applied_once() {
    let clock = Arc::new(FixedClock::default_start());
    let store = Arc::new(Flaky {
        inner: MemoryStore::new(clock.clone()),
        conflicts_left: AtomicU32::new(3),
        stale: std::sync::Mutex::new(None),
    });
    let hub = TestHub::hub_on(store.clone(), clock, 1);
    let out = hub
        .consume(
            ConsumeRequest {
                user: user("alice"),
                action: "conseil_rapide".into(),
                context: None,
            },
            &meta(),
            None,
        )
        .await
        .unwrap()
        .fresh()
        .unwrap();
    assert_eq!(out.energy_remaining, 80);
    assert_eq!(hub.stats().conflicts(), 3);
    assert_eq!(store.read_stream(&user("alice")).await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_unreachable_store_is_an_infrastructure_error_not_a_domain_answer() {
    let t = TestHub::new();
    t.store.set_down(true);
    let err = t.consume("alice", "conseil_rapide").await.unwrap_err();
    assert!(err.is_unavailable());
    t.store.set_down(false);
    assert_eq!(t.event_count("alice").await, 0);
}

#[tokio::test]
async fn verify_passes_on_a_healthy_store_and_flags_a_tampered_projection() {
    let t = TestHub::new();
    t.consume("alice", "lettre_motivation").await.unwrap();
    t.consume("bob", "mirror_match").await.unwrap();
    t.hub
        .grant(&user("bob"), Energy::new(5), "x", &meta(), None)
        .await
        .unwrap();
    let mut seen = 0;
    let ok = luna_app::verify::verify(t.store.as_ref(), |n| seen = n)
        .await
        .unwrap();
    assert!(ok.is_ok(), "{:?}", ok.violations);
    assert_eq!((ok.streams, ok.events, seen), (2, 5, 2));
    let mut summary = t.store.load(&user("bob"), &[]).await.unwrap().summary;
    summary.balance = luna_core::Balance::new(1_000);
    t.store.tamper_summary(&user("bob"), summary);
    let bad = luna_app::verify::verify(t.store.as_ref(), |_| {})
        .await
        .unwrap();
    assert_eq!(bad.violations.len(), 1);
    assert_eq!(bad.violations[0].stream, user("bob"));
}

#[test]
fn check_stream_flags_an_overdraft_a_double_refund_and_a_double_resolution() {
    use luna_core::{
        AccountOpened, ActionName, EnergyConsumed, EnergyRefunded, Event, EventKind,
        ReservationReleased,
    };
    let at = Timestamp::from_secs(1);
    let consume = |tx: u128, cost: u32, from_reservation: bool| Event {
        occurred_at: at,
        kind: EventKind::EnergyConsumed(EnergyConsumed {
            tx: luna_core::Id::from_u128(tx),
            action: ActionName::parse("mirror_match").unwrap(),
            cost: Energy::new(cost),
            notional: Energy::new(cost),
            unlimited: false,
            grid_version: "v".into(),
            context: None,
            from_reservation,
        }),
    };
    let refund = |n: u128| Event {
        occurred_at: at,
        kind: EventKind::EnergyRefunded(EnergyRefunded {
            tx: luna_core::Id::from_u128(n),
            refunded_tx: luna_core::Id::from_u128(2),
            amount: Energy::new(5),
            reason: "r".into(),
            by_user: false,
        }),
    };
    let events = vec![
        Event {
            occurred_at: at,
            kind: EventKind::AccountOpened(AccountOpened {
                tx: luna_core::Id::from_u128(1),
                welcome: Energy::new(10),
            }),
        },
        consume(2, 30, false),
        refund(3),
        refund(4),
        consume(5, 1, true),
        Event {
            occurred_at: at,
            kind: EventKind::ReservationReleased(ReservationReleased {
                tx: luna_core::Id::from_u128(5),
                amount: Energy::new(1),
            }),
        },
    ];
    let problems = luna_app::verify::check_stream(&events);
    assert!(
        problems.iter().any(|p| p.contains("took the balance")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("refunded twice")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("resolved 2 times")),
        "{problems:?}"
    );
    assert!(
        luna_app::verify::check_stream(&events[..2])
            .iter()
            .any(|p| p.contains("took the balance"))
    );
    assert!(luna_app::verify::check_stream(&events[..1]).is_empty());
}

#[tokio::test]
async fn a_refusal_read_from_a_stale_cache_is_decided_again_on_the_current_version() {
    let clock = Arc::new(FixedClock::default_start());
    let store = Arc::new(Flaky {
        inner: MemoryStore::new(clock.clone()),
        conflicts_left: AtomicU32::new(0),
        stale: std::sync::Mutex::new(None),
    });
    let hub = TestHub::hub_on(store.clone(), clock.clone(), 1);
    let consume = |action: &str| ConsumeRequest {
        user: user("cached"),
        action: action.into(),
        context: None,
    };
    hub.consume(consume("plan_reconversion"), &meta(), None)
        .await
        .unwrap();
    // Another process grants 100 while this one keeps the row at 35 (version 2).
    let other = TestHub::hub_on(store.clone(), clock, 2);
    other
        .grant(&user("cached"), Energy::new(100), "support", &meta(), None)
        .await
        .unwrap();
    *store.stale.lock().unwrap() = Some({
        let mut s = store.inner.load(&user("cached"), &[]).await.unwrap();
        s.version = 2;
        s.summary.balance = luna_core::Balance::new(35);
        s.cached = true;
        s
    });
    let out = hub
        .consume(consume("plan_reconversion"), &meta(), None)
        .await
        .expect("decided on the grant, not on the stale row")
        .fresh()
        .unwrap();
    assert_eq!(out.energy_remaining, 85);
}

#[tokio::test]
async fn the_figures_kept_with_each_event_match_the_fold_and_verify_sees_a_wrong_one() {
    let t = TestHub::new();
    t.consume("figures", "lettre_motivation").await.unwrap();
    t.hub
        .reserve(
            ReserveRequest {
                user: user("figures"),
                action: "conseil_rapide".into(),
                ttl_seconds: Some(60),
                context: None,
            },
            &meta(),
            None,
        )
        .await
        .unwrap();
    let mut recorded = t.store.read_stream(&user("figures")).await.unwrap();
    let kept: Vec<_> = recorded
        .iter()
        .map(|r| r.after.map(|a| (a.balance, a.available)))
        .collect();
    assert_eq!(kept, vec![Some((85, 85)), Some((70, 70)), Some((70, 65))]);
    assert!(luna_app::verify::check_figures(&recorded).is_empty());
    recorded[1].after = Some(luna_ports::EnergyAfter {
        balance: 71,
        available: 70,
    });
    assert_eq!(luna_app::verify::check_figures(&recorded).len(), 1);
}
