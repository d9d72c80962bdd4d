//! The command loop every write use case goes through:
//! idempotency check → load → decide → append with the expected version → retry on conflict.

use std::sync::Arc;
use std::time::Duration;

use luna_core::{Command, EntityRef, Env, EventKind, Timestamp, UserId, Wallet, decide};
use luna_ports::{
    AppendBatch, EnergyAfter, EventMetadata, IdempotencyRecord, NewEvent, PendingIdempotency,
    Receipt, RecordedEvent, StoreError, StoredResponse,
};

use crate::error::AppError;
use crate::hub::Hub;

/// How many times a decision is retried on a version conflict or a busy database.
pub const MAX_ATTEMPTS: u32 = 200;
/// The longest pause between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_millis(20);

/// Renders the response an idempotency key keeps (`None`: keep nothing, e.g. for a 5xx).
pub type Encoder<T> = Arc<dyn Fn(&Result<T, AppError>) -> Option<StoredResponse> + Send + Sync>;

/// An idempotency key on a command.
pub struct Idempotency<T> {
    /// The key, already scoped by principal and route.
    pub key: String,
    /// A digest of the request.
    pub fingerprint: String,
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
}

impl<T> Reply<T> {
    /// The fresh outcome, if any.
    pub fn fresh(self) -> Option<T> {
        match self {
            Reply::Fresh(t) => Some(t),
            Reply::Replayed(_) => None,
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
    /// The figures after the newest event, new or loaded, matching `pred` (`None` for an
    /// event stored before figures were kept).
    pub fn after(&self, pred: impl Fn(&luna_core::EventKind) -> bool) -> Option<EnergyAfter> {
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

    /// The id of the newest event, new or loaded, matching `pred`.
    pub fn event_id(&self, pred: impl Fn(&luna_core::EventKind) -> bool) -> Option<luna_core::Id> {
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
}

impl Hub {
    /// Checks an idempotency key before doing anything.
    pub(crate) async fn replay<T>(
        &self,
        idem: Option<&Idempotency<T>>,
    ) -> Result<Option<StoredResponse>, AppError> {
        let Some(i) = idem else { return Ok(None) };
        match self.store.get(&i.key).await? {
            Some(r) if r.fingerprint == i.fingerprint => Ok(Some(r.response)),
            Some(_) => Err(AppError::IdempotencyKeyReused),
            None => Ok(None),
        }
    }

    /// Keeps the response of an outcome that appended nothing; if another request with the
    /// same key won the race, answers with its response.
    pub(crate) async fn finish<T>(
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
        let record = IdempotencyRecord {
            key: i.key.clone(),
            fingerprint: i.fingerprint.clone(),
            response,
            created_at: self.clock.now(),
        };
        match self.store.put(record).await {
            Ok(()) => result.map(Reply::Fresh),
            Err(StoreError::Conflict) => match self.replay(Some(i)).await? {
                Some(r) => Ok(Reply::Replayed(r)),
                None => result.map(Reply::Fresh),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Keeps an answer given before any use case ran (the request itself was refused: a bad
    /// field, another user's id) under its idempotency key, like any other final answer.
    /// Returns the answer to send: this one, or the one a first request with the key got.
    pub async fn keep_answer<T>(
        &self,
        idem: &Idempotency<T>,
        response: StoredResponse,
    ) -> Result<StoredResponse, AppError> {
        if let Some(r) = self.replay(Some(idem)).await? {
            return Ok(r);
        }
        let record = IdempotencyRecord {
            key: idem.key.clone(),
            fingerprint: idem.fingerprint.clone(),
            response: response.clone(),
            created_at: self.clock.now(),
        };
        match self.store.put(record).await {
            Ok(()) => Ok(response),
            // Another request with the key won the race: answer as it did.
            Err(StoreError::Conflict) => self.replay(Some(idem)).await?.ok_or(AppError::Contended),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a decision that appends nothing was made on the stream's current version. A
    /// summary read from a cache is confirmed against the database; views (`Open`) may lag.
    async fn decided_on_current(
        &self,
        user: &UserId,
        loaded: (u64, bool),
        command: &Command,
    ) -> Result<bool, AppError> {
        let (version, cached) = loaded;
        if !cached || matches!(command, Command::Open) {
            return Ok(true);
        }
        Ok(self.store.current_version(user).await? == version)
    }

    /// Refuses before deciding (bad action, unknown reservation), keeping the refusal for the
    /// idempotency key like any other final answer.
    pub(crate) async fn refuse<T>(
        &self,
        idem: Option<&Idempotency<T>>,
        e: AppError,
    ) -> Result<Reply<T>, AppError> {
        if let Some(r) = self.replay(idem).await? {
            return Ok(Reply::Replayed(r));
        }
        self.finish(idem, Err(e)).await
    }

    /// Runs one command on one user's stream.
    pub(crate) async fn run<T>(
        &self,
        user: &UserId,
        entities: &[EntityRef],
        command: &Command,
        meta: &EventMetadata,
        idem: Option<&Idempotency<T>>,
        outcome: &(dyn Fn(&Decided<'_>) -> Result<T, AppError> + Send + Sync),
    ) -> Result<Reply<T>, AppError> {
        let _guard = self.locks.lock(user).await;
        for attempt in 0..MAX_ATTEMPTS {
            if let Some(r) = self.replay(idem).await? {
                return Ok(Reply::Replayed(r));
            }
            let loaded = self.store.load(user, entities).await?;
            let mut wallet = Wallet::restore(
                loaded.summary,
                loaded.entity_events.iter().map(|r| &r.event),
            );
            let now = self.clock.now();
            let env = Env {
                now,
                catalog: &self.catalog,
                policy: &self.policy,
                welcome_tx: self.ids.next_id(),
            };
            let events = match decide(&wallet, command, &env) {
                Ok(events) => events,
                Err(refusal) => {
                    if !self
                        .decided_on_current(user, (loaded.version, loaded.cached), command)
                        .await?
                    {
                        continue;
                    }
                    return self.finish(idem, Err(AppError::Domain(refusal))).await;
                }
            };
            if events.is_empty() {
                if !self
                    .decided_on_current(user, (loaded.version, loaded.cached), command)
                    .await?
                {
                    continue;
                }
                let d = Decided {
                    wallet: &wallet,
                    version: loaded.version,
                    now,
                    new_events: &[],
                    receipts: &[],
                    prior: &loaded.entity_events,
                };
                let result = outcome(&d);
                return self.finish(idem, result).await;
            }
            let new_events = self.stamp(&mut wallet, events, meta, now);
            let version = loaded.version + new_events.len() as u64;
            let pending = idem.map(|i| {
                let (wallet, new_events, prior) = (&wallet, &new_events, &loaded.entity_events);
                PendingIdempotency {
                    key: i.key.clone(),
                    fingerprint: i.fingerprint.clone(),
                    created_at: now,
                    render: Box::new(move |receipts: &[Receipt]| {
                        let d = Decided {
                            wallet,
                            version,
                            now,
                            new_events,
                            receipts,
                            prior,
                        };
                        (i.encode)(&outcome(&d))
                    }),
                }
            });
            let batch = AppendBatch {
                stream: user.clone(),
                expected_version: loaded.version,
                events: &new_events,
                summary: &wallet.summary,
                idempotency: pending,
            };
            match self.store.append(batch).await {
                Ok(appended) => {
                    let d = Decided {
                        wallet: &wallet,
                        version,
                        now,
                        new_events: &new_events,
                        receipts: &appended.receipts,
                        prior: &loaded.entity_events,
                    };
                    return outcome(&d).map(Reply::Fresh);
                }
                Err(e) if e.is_retryable() => {
                    self.metrics.conflict();
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Contended)
    }

    /// Applies the decided events to the wallet and gives each its id, metadata and the
    /// figures right after it.
    fn stamp(
        &self,
        wallet: &mut Wallet,
        events: Vec<luna_core::Event>,
        meta: &EventMetadata,
        now: Timestamp,
    ) -> Vec<NewEvent> {
        let mut new_events = Vec::with_capacity(events.len());
        for event in events {
            wallet.apply(&event);
            let after = (!matches!(event.kind, EventKind::AppEvent(_))).then(|| EnergyAfter {
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
