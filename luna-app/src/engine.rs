//! The command loop every write goes through, and nothing else: idempotency check → load →
//! decide → append with the expected version → retry on conflict. It knows no use case: a use
//! case hands it a command, the entities the command names and a function that turns the
//! decided state into its outcome (esrs's `AggregateManager`).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use luna_core::{
    Catalog, Command, EntityRef, Env, Event, EventKind, Id, Policy, Timestamp, UserId, Wallet,
    decide,
};
use luna_ports::{
    AppendBatch, BillingStore, Clock, EnergyAfter, EventMetadata, IdGenerator, IdempotencyRecord,
    NewEvent, PendingIdempotency, Receipt, RecordedEvent, Store, StoreError, StoredResponse,
};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::AppError;

/// How many times a decision is retried on a version conflict or a busy database.
pub const MAX_ATTEMPTS: u32 = 200;
/// The longest pause between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_millis(20);
/// Lock stripes serialising one instance's commands per user.
const STRIPES: usize = 256;

/// Renders the response an idempotency key keeps (`None`: keep nothing, e.g. for a 5xx).
pub type Encoder<T> = Arc<dyn Fn(&Result<T, AppError>) -> Option<StoredResponse> + Send + Sync>;

/// An idempotency key on a command.
pub struct Idempotency<T> {
    /// The key, already scoped by principal and route.
    pub key: String,
    /// A digest of the request.
    pub fingerprint: String,
    /// The principal's scope, where its keys live: a user's own stream for a user, the key's
    /// id for a service (spec §6: a key is scoped by principal and route).
    pub principal: String,
    /// Renders the response to keep.
    pub encode: Encoder<T>,
}

/// A use case's answer: fresh, or the response kept for a repeated idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<T> {
    /// Computed by this request.
    Fresh(T),
    /// Kept from the first request with this key.
    Replayed(StoredResponse),
    /// The provider event was applied already: nothing done.
    Duplicate,
}

impl<T> Reply<T> {
    /// The fresh outcome, if any.
    pub fn fresh(self) -> Option<T> {
        match self {
            Reply::Fresh(t) => Some(t),
            Reply::Replayed(_) | Reply::Duplicate => None,
        }
    }
}

/// What an outcome is built from.
pub struct Decided<'a> {
    /// The state after the new events.
    pub wallet: &'a Wallet,
    /// The stream version after the new events.
    pub version: u64,
    /// The decision time.
    pub now: Timestamp,
    /// The events this request appended (empty if none).
    pub new_events: &'a [NewEvent],
    /// Their receipts (empty before the append or if none).
    pub receipts: &'a [Receipt],
    /// The entity events loaded for the decision.
    pub prior: &'a [RecordedEvent],
}

impl Decided<'_> {
    /// The id of the newest event, new or loaded, matching `pred`.
    pub fn event_id(&self, pred: impl Fn(&EventKind) -> bool) -> Option<Id> {
        self.new_events
            .iter()
            .rev()
            .find(|e| pred(&e.event.kind))
            .map(|e| e.event_id)
            .or_else(|| {
                self.prior
                    .iter()
                    .rev()
                    .find(|e| pred(&e.event.kind))
                    .map(|e| e.event_id)
            })
    }

    /// The figures after the newest event, new or loaded, matching `pred` (`None` for an
    /// event stored before figures were kept).
    pub fn after(&self, pred: impl Fn(&EventKind) -> bool) -> Option<EnergyAfter> {
        match self.new_events.iter().rev().find(|e| pred(&e.event.kind)) {
            Some(e) => e.after,
            None => self
                .prior
                .iter()
                .rev()
                .find(|e| pred(&e.event.kind))
                .and_then(|e| e.after),
        }
    }
}

/// Counters the engine exposes for metrics.
#[derive(Debug, Default)]
pub struct EngineStats {
    conflicts: AtomicU64,
}

impl EngineStats {
    fn conflict(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }

    /// Version conflicts (and busy errors) retried so far.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }
}

/// Per-user lock stripes. They only spare wasted work inside one instance: correctness across
/// instances comes from the store's expected-version check.
struct Locks(Vec<Mutex<()>>);

impl Locks {
    fn new() -> Self {
        Locks((0..STRIPES).map(|_| Mutex::new(())).collect())
    }

    async fn lock(&self, user: &UserId) -> MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        user.hash(&mut h);
        let i = usize::try_from(h.finish() % STRIPES as u64).unwrap_or(0);
        self.0[i].lock().await
    }
}

/// The outcome function of a use case.
pub type Outcome<'a, T> = &'a (dyn Fn(&Decided<'_>) -> Result<T, AppError> + Send + Sync);

/// One command on one stream.
pub struct Run<'a, T> {
    /// The stream.
    pub user: &'a UserId,
    /// The entities whose events the decision needs.
    pub entities: &'a [EntityRef],
    /// The command.
    pub command: &'a Command,
    /// What the events record.
    pub meta: &'a EventMetadata,
    /// The client's idempotency key, if any.
    pub idem: Option<&'a Idempotency<T>>,
    /// The provider event this command applies: marked processed with the append, and a
    /// command whose event was applied already answers `Reply::Duplicate`.
    pub processed: Option<&'a str>,
}

/// How one attempt ended.
enum Attempt<T> {
    /// Answered.
    Done(Reply<T>),
    /// A decision that appends nothing was made on a stale (cached) version: decide again.
    Stale,
}

/// The command loop, over the event store.
pub struct Engine {
    store: Arc<dyn Store>,
    billing: Arc<dyn BillingStore>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    catalog: Arc<Catalog>,
    policy: Policy,
    locks: Locks,
    stats: EngineStats,
}

impl Engine {
    /// An engine deciding with `catalog` and `policy`.
    pub fn new(
        store: Arc<dyn Store>,
        billing: Arc<dyn BillingStore>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        catalog: Arc<Catalog>,
        policy: Policy,
    ) -> Engine {
        Engine {
            store,
            billing,
            clock,
            ids,
            catalog,
            policy,
            locks: Locks::new(),
            stats: EngineStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The decision environment at `now` (no account is opened with it).
    pub fn env(&self, now: Timestamp) -> Env<'_> {
        Env {
            now,
            catalog: &self.catalog,
            policy: &self.policy,
            welcome_tx: Id::from_u128(0),
        }
    }

    /// The answer kept under a key, in the principal's scope (a key reused with another
    /// request → `IdempotencyKeyReused`).
    pub async fn replay<T>(
        &self,
        idem: Option<&Idempotency<T>>,
    ) -> Result<Option<StoredResponse>, AppError> {
        let Some(i) = idem else { return Ok(None) };
        match self.store.get(&i.principal, &i.key).await? {
            Some(r) if r.fingerprint == i.fingerprint => Ok(Some(r.response)),
            Some(_) => Err(AppError::IdempotencyKeyReused),
            None => Ok(None),
        }
    }

    /// Keeps `response` under the key; if another request with the key won the race, answers
    /// as it did.
    async fn keep(
        &self,
        idem: &Idempotency<impl Sized>,
        response: StoredResponse,
    ) -> Result<Option<StoredResponse>, AppError> {
        let record = IdempotencyRecord {
            stream: idem.principal.clone(),
            key: idem.key.clone(),
            fingerprint: idem.fingerprint.clone(),
            response,
            created_at: self.clock.now(),
        };
        match self.store.put(record).await {
            Ok(()) => Ok(None),
            Err(StoreError::Conflict) => self.replay(Some(idem)).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Keeps the answer of an outcome that appended nothing.
    async fn finish<T>(
        &self,
        idem: Option<&Idempotency<T>>,
        result: Result<T, AppError>,
    ) -> Result<Reply<T>, AppError> {
        let Some(i) = idem else {
            return result.map(Reply::Fresh);
        };
        let Some(response) = (i.encode)(&result) else {
            return result.map(Reply::Fresh);
        };
        match self.keep(i, response).await? {
            Some(winner) => Ok(Reply::Replayed(winner)),
            None => result.map(Reply::Fresh),
        }
    }

    /// Runs a use case that appends nothing (or whose effect is elsewhere, at the payment
    /// provider) under an idempotency key: the kept answer if there is one, else the effect
    /// and its answer kept (a concurrent duplicate gets the first one kept).
    pub async fn answered<T>(
        &self,
        idem: Option<&Idempotency<T>>,
        effect: impl std::future::Future<Output = Result<T, AppError>>,
    ) -> Result<Reply<T>, AppError> {
        if let Some(r) = self.replay(idem).await? {
            return Ok(Reply::Replayed(r));
        }
        self.finish(idem, effect.await).await
    }

    /// Keeps an answer given before the use case ran (the request itself was refused: a bad
    /// field, another user's id), like any other final answer. Returns the answer to send:
    /// this one, or the one a first request with the key got.
    pub async fn keep_answer<T>(
        &self,
        idem: &Idempotency<T>,
        response: StoredResponse,
    ) -> Result<StoredResponse, AppError> {
        if let Some(r) = self.replay(Some(idem)).await? {
            return Ok(r);
        }
        match self.keep(idem, response.clone()).await? {
            Some(winner) => Ok(winner),
            None => Ok(response),
        }
    }

    /// Refuses before deciding (an unknown action, an unknown reservation), keeping the
    /// refusal for the key like any other final answer.
    pub async fn refuse<T>(
        &self,
        idem: Option<&Idempotency<T>>,
        e: AppError,
    ) -> Result<Reply<T>, AppError> {
        if let Some(r) = self.replay(idem).await? {
            return Ok(Reply::Replayed(r));
        }
        self.finish(idem, Err(e)).await
    }

    /// A stream's summary as of its current version (a cached row is confirmed first).
    pub async fn current_summary(&self, user: &UserId) -> Result<luna_core::Summary, AppError> {
        let loaded = self.store.load(user, &[]).await?;
        if loaded.cached && self.store.current_version(user).await? != loaded.version {
            // `current_version` dropped the stale row: this read goes to the database.
            return Ok(self.store.load(user, &[]).await?.summary);
        }
        Ok(loaded.summary)
    }

    /// Whether a decision that appends nothing was made on the stream's current version. A
    /// summary read from a cache is confirmed against the database; views (`Open`) may lag.
    async fn decided_on_current(
        &self,
        user: &UserId,
        (version, cached): (u64, bool),
        command: &Command,
    ) -> Result<bool, AppError> {
        if !cached || matches!(command, Command::Open) {
            return Ok(true);
        }
        Ok(self.store.current_version(user).await? == version)
    }

    /// Runs one command on one user's stream until it is decided on the current version.
    pub async fn run<T>(
        &self,
        run: Run<'_, T>,
        outcome: Outcome<'_, T>,
    ) -> Result<Reply<T>, AppError> {
        let _guard = self.locks.lock(run.user).await;
        for attempt in 0..MAX_ATTEMPTS {
            if let Some(r) = self.replay(run.idem).await? {
                return Ok(Reply::Replayed(r));
            }
            if let Some(event_id) = run.processed {
                if self.billing.is_processed(run.user, event_id).await? {
                    return Ok(Reply::Duplicate);
                }
            }
            match self.attempt(&run, outcome).await {
                Ok(Attempt::Done(reply)) => return Ok(reply),
                Ok(Attempt::Stale) => {}
                Err(AppError::Infrastructure(e)) if e.is_retryable() => {
                    self.stats.conflict();
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(AppError::Contended)
    }

    /// One load → decide → append.
    async fn attempt<T>(
        &self,
        run: &Run<'_, T>,
        outcome: Outcome<'_, T>,
    ) -> Result<Attempt<T>, AppError> {
        let loaded = self.store.load(run.user, run.entities).await?;
        let freshness = (loaded.version, loaded.cached);
        let mut wallet = Wallet::restore(
            loaded.summary,
            loaded.entity_events.iter().map(|r| &r.event),
        );
        let now = self.clock.now();
        let env = Env {
            welcome_tx: self.ids.next_id(),
            ..self.env(now)
        };
        let events = match decide(&wallet, run.command, &env) {
            Ok(events) if !events.is_empty() => events,
            nothing_to_append => {
                if !self
                    .decided_on_current(run.user, freshness, run.command)
                    .await?
                {
                    return Ok(Attempt::Stale);
                }
                let result = nothing_to_append.map_err(AppError::Domain).and_then(|_| {
                    outcome(&Decided {
                        wallet: &wallet,
                        version: loaded.version,
                        now,
                        new_events: &[],
                        receipts: &[],
                        prior: &loaded.entity_events,
                    })
                });
                return self.finish(run.idem, result).await.map(Attempt::Done);
            }
        };
        let new_events = self.stamp(&mut wallet, events, run.meta, now);
        let version = loaded.version + new_events.len() as u64;
        let decided = |receipts: &[Receipt]| -> Result<T, AppError> {
            outcome(&Decided {
                wallet: &wallet,
                version,
                now,
                new_events: &new_events,
                receipts,
                prior: &loaded.entity_events,
            })
        };
        let pending = run.idem.map(|i| PendingIdempotency {
            scope: i.principal.clone(),
            key: i.key.clone(),
            fingerprint: i.fingerprint.clone(),
            created_at: now,
            render: Box::new(move |receipts: &[Receipt]| (i.encode)(&decided(receipts))),
        });
        let appended = self
            .store
            .append(AppendBatch {
                stream: run.user.clone(),
                expected_version: loaded.version,
                events: &new_events,
                summary: &wallet.summary,
                idempotency: pending,
                processed: run.processed,
            })
            .await?;
        decided(&appended.receipts).map(|t| Attempt::Done(Reply::Fresh(t)))
    }

    /// Applies the decided events to the wallet and gives each its id, metadata and the
    /// figures right after it.
    fn stamp(
        &self,
        wallet: &mut Wallet,
        events: Vec<Event>,
        meta: &EventMetadata,
        now: Timestamp,
    ) -> Vec<NewEvent> {
        let mut new_events = Vec::with_capacity(events.len());
        for event in events {
            wallet.apply(&event);
            let energy_event = !matches!(event.kind, EventKind::AppEvent(_) | EventKind::Audit(_));
            let after = energy_event.then(|| EnergyAfter {
                balance: wallet.summary.balance.units(),
                available: wallet.summary.available(now),
            });
            new_events.push(NewEvent {
                event_id: self.ids.next_id(),
                event,
                metadata: meta.clone(),
                after,
            });
        }
        new_events
    }

    fn backoff(&self, attempt: u32) -> Duration {
        // Exponential from 100 µs, capped, with jitter from the id generator so that
        // contending instances spread out.
        let base = 100u64.saturating_mul(1 << attempt.min(8));
        let cap = u64::try_from(MAX_BACKOFF.as_micros()).unwrap_or(20_000);
        let jitter = u64::try_from(self.ids.next_id().as_u128() % 1000).unwrap_or(0);
        Duration::from_micros(base.min(cap) / 2 + jitter * base.min(cap) / 2000)
    }
}
