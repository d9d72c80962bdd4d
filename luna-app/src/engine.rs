//! The command loop every write use case goes through:
//! idempotency check → load → decide → append with the expected version → retry on conflict.

use std::time::Duration;

use luna_core::{Command, EntityRef, Env, Timestamp, UserId, Wallet, decide};
use luna_ports::{
    AppendBatch, EventMetadata, IdempotencyRecord, NewEvent, PendingIdempotency, Receipt,
    RecordedEvent, StoreError, StoredResponse,
};

use crate::error::AppError;
use crate::hub::Hub;

/// How many times a decision is retried on a version conflict or a busy database.
pub const MAX_ATTEMPTS: u32 = 200;
/// The longest pause between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_millis(20);

/// Renders the response an idempotency key keeps (`None`: keep nothing, e.g. for a 5xx).
pub type Encoder<'a, T> =
    &'a (dyn Fn(&Result<T, AppError>) -> Option<StoredResponse> + Send + Sync);

/// An idempotency key on a command.
pub struct Idempotency<'a, T> {
    /// The key, already scoped by principal and route.
    pub key: String,
    /// A digest of the request.
    pub fingerprint: String,
    /// Renders the response to keep.
    pub encode: Encoder<'a, T>,
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
        idem: Option<&Idempotency<'_, T>>,
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
        idem: Option<&Idempotency<'_, T>>,
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

    /// Refuses before deciding (bad action, unknown reservation), keeping the refusal for the
    /// idempotency key like any other final answer.
    pub(crate) async fn refuse<T>(
        &self,
        idem: Option<&Idempotency<'_, T>>,
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
        idem: Option<&Idempotency<'_, T>>,
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
                Err(refusal) => return self.finish(idem, Err(AppError::Domain(refusal))).await,
            };
            if events.is_empty() {
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
            for e in &events {
                wallet.apply(e);
            }
            let new_events: Vec<NewEvent> = events
                .into_iter()
                .map(|event| NewEvent {
                    event_id: self.ids.next_id(),
                    event,
                    metadata: meta.clone(),
                })
                .collect();
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

    fn backoff(&self, attempt: u32) -> Duration {
        // Exponential from 100 µs, capped, with jitter from the id generator so that
        // contending instances spread out.
        let base = 100u64.saturating_mul(1 << attempt.min(8));
        let cap = u64::try_from(MAX_BACKOFF.as_micros()).unwrap_or(20_000);
        let jitter = u64::try_from(self.ids.next_id().as_u128() % 1000).unwrap_or(0);
        Duration::from_micros(base.min(cap) / 2 + jitter * base.min(cap) / 2000)
    }
}
