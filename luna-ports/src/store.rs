//! Event store, idempotency records, clock and ids.

use async_trait::async_trait;
use luna_core::{EntityRef, Event, Id, Summary, Timestamp, UserId};

/// Who did what, recorded beside each event (never inside the domain payload).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventMetadata {
    /// The principal (`service:<key id>`, `user:<id>`, `system`).
    pub actor: Option<String>,
    /// The request id the event was produced under.
    pub correlation_id: Option<String>,
    /// The client's idempotency key, if any.
    pub idempotency_key: Option<String>,
}

/// The energy figures right after an event, kept with it so that an answer repeated later
/// ("commit again") and a history row report the figures of that moment without a fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnergyAfter {
    /// The balance after the event.
    pub balance: i64,
    /// The balance minus the holds active at the event's time.
    pub available: i64,
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Its id.
    pub event_id: Id,
    /// The event.
    pub event: Event,
    /// Who and why.
    pub metadata: EventMetadata,
    /// The figures after it (every hub event; `None` for app events).
    pub after: Option<EnergyAfter>,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Its id.
    pub event_id: Id,
    /// The user's stream.
    pub stream: UserId,
    /// Version within the stream, from 1.
    pub version: u64,
    /// Global position, increasing in append order within a stream.
    pub position: u64,
    /// The event.
    pub event: Event,
    /// Who and why.
    pub metadata: EventMetadata,
    /// When the store committed it.
    pub recorded_at: Timestamp,
    /// The figures after it, as appended (`None` for app events and events stored before
    /// the figures were kept).
    pub after: Option<EnergyAfter>,
}

/// Where an appended event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Its id.
    pub event_id: Id,
    /// Its stream version.
    pub version: u64,
    /// Its global position.
    pub position: u64,
    /// When it was recorded.
    pub recorded_at: Timestamp,
}

/// A response kept for an idempotency key: replayed verbatim for a repeated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP-like status.
    pub status: u16,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// A stored idempotency record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The scoped key (principal, route, client key).
    pub key: String,
    /// A digest of the request, to refuse a reused key with another body.
    pub fingerprint: String,
    /// The first final response.
    pub response: StoredResponse,
    /// When it was stored.
    pub created_at: Timestamp,
}

/// Renders the response to keep, from the receipts of the appended events (`None`: keep no
/// record, e.g. for a failure that must not be replayed).
pub type RenderResponse<'a> = Box<dyn FnOnce(&[Receipt]) -> Option<StoredResponse> + Send + 'a>;

/// An idempotency record to write in the same transaction as an append. Its response is
/// rendered once the events have their positions.
pub struct PendingIdempotency<'a> {
    /// The scoped key.
    pub key: String,
    /// The request digest.
    pub fingerprint: String,
    /// When.
    pub created_at: Timestamp,
    /// The response, from the receipts.
    pub render: RenderResponse<'a>,
}

impl std::fmt::Debug for PendingIdempotency<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingIdempotency")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// One atomic append: events, the stream's new summary and maybe an idempotency record,
/// all or nothing, only if the stream is still at `expected_version`.
#[derive(Debug)]
pub struct AppendBatch<'a> {
    /// The user's stream.
    pub stream: UserId,
    /// The version the decision was made on (0: new stream).
    pub expected_version: u64,
    /// The events, in order (at least one).
    pub events: &'a [NewEvent],
    /// The summary after the events (the projection row).
    pub summary: &'a Summary,
    /// A record to keep with the effect.
    pub idempotency: Option<PendingIdempotency<'a>>,
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// One receipt per event, in order.
    pub receipts: Vec<Receipt>,
}

/// What a decision needs from a stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadedWallet {
    /// The stream's version (0: no event yet).
    pub version: u64,
    /// The stored summary.
    pub summary: Summary,
    /// Every event of the entities asked for, oldest first.
    pub entity_events: Vec<RecordedEvent>,
    /// Whether the version and summary came from a cache of this process and may be older
    /// than the database (then a decision that appends nothing is confirmed with
    /// [`EventStore::current_version`] before it is answered).
    pub cached: bool,
}

/// A stream's stored summary (for `luna verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSummary {
    /// The stream.
    pub stream: UserId,
    /// Its version.
    pub version: u64,
    /// The stored projection.
    pub summary: Summary,
}

/// A page of a stream, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery<'a> {
    /// Only events before this position.
    pub before_position: Option<u64>,
    /// Page size.
    pub limit: usize,
    /// Only this event type.
    pub event_type: Option<&'a str>,
}

/// A page of events, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPage {
    /// The events.
    pub events: Vec<RecordedEvent>,
    /// How many events match the filter (all pages).
    pub total_count: u64,
    /// Whether older matching events exist.
    pub has_more: bool,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream moved past the expected version, or an idempotency key was taken meanwhile:
    /// reload and decide again.
    #[error("concurrent modification of the stream")]
    Conflict,
    /// The database is busy (locked): retry shortly.
    #[error("the database is busy")]
    Busy,
    /// The database cannot be reached.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Anything else (opaque; details for the log).
    #[error("storage failure: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Whether retrying the whole decision may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict | StoreError::Busy)
    }

    /// Wraps any error as an opaque backend failure.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Backend(Box::new(e))
    }
}

/// The append-only, per-user event store and the projections it keeps with each append.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends a batch atomically if the stream is at `expected_version`, else `Conflict`
    /// and nothing changes. A taken idempotency key is also a `Conflict`.
    async fn append(&self, batch: AppendBatch<'_>) -> Result<Appended, StoreError>;

    /// The stream's version and summary, and the events of the named entities, consistent
    /// with each other (one read). Costs the same whatever the length of the stream. The
    /// summary may come from a cache (`cached: true`) only when no entity is asked for.
    async fn load(
        &self,
        stream: &UserId,
        entities: &[EntityRef],
    ) -> Result<LoadedWallet, StoreError>;

    /// The stream's version (0: no event yet), read from the database itself, never from a
    /// cache. An implementation that caches projection rows MUST drop its cached row when it
    /// differs from the version returned.
    async fn current_version(&self, stream: &UserId) -> Result<u64, StoreError>;

    /// Every event of a stream, oldest first.
    async fn read_stream(&self, stream: &UserId) -> Result<Vec<RecordedEvent>, StoreError>;

    /// A page of a stream, newest first.
    async fn read_page(
        &self,
        stream: &UserId,
        query: PageQuery<'_>,
    ) -> Result<StreamPage, StoreError>;

    /// Up to `limit` events of every stream after `after_position`, by position.
    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The stream holding an entity's events, if any.
    async fn find_stream(&self, entity: &EntityRef) -> Result<Option<UserId>, StoreError>;

    /// Stored summaries, by stream id, after `after` (for verification).
    async fn summaries(
        &self,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<StoredSummary>, StoreError>;

    /// Whether the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Idempotency records kept on their own (for outcomes that append nothing).
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// The record under a key.
    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Stores a record; `Conflict` if the key is taken.
    async fn put(&self, record: IdempotencyRecord) -> Result<(), StoreError>;

    /// Deletes records created before `before`; returns how many.
    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError>;
}

/// A store is all three.
pub trait Store: EventStore + IdempotencyStore + KeyStore {}

impl<T: EventStore + IdempotencyStore + KeyStore> Store for T {}

/// The time, from outside (core never reads a clock).
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// Fresh ids.
pub trait IdGenerator: Send + Sync {
    /// A new unique id.
    fn next_id(&self) -> Id;
}

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// check, can-perform, transactions, analytics.
    EnergyRead,
    /// consume, reserve, commit, release, refund.
    EnergyWrite,
    /// read events and the narrative.
    EventsRead,
    /// post app events.
    EventsWrite,
    /// billing routes and purchase.
    BillingWrite,
    /// everything, including grants and metrics.
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 6] = [
        Scope::EnergyRead,
        Scope::EnergyWrite,
        Scope::EventsRead,
        Scope::EventsWrite,
        Scope::BillingWrite,
        Scope::Admin,
    ];

    /// The wire name (`energy:read`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::EnergyRead => "energy:read",
            Scope::EnergyWrite => "energy:write",
            Scope::EventsRead => "events:read",
            Scope::EventsWrite => "events:write",
            Scope::BillingWrite => "billing:write",
            Scope::Admin => "admin",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A service key as stored (the secret itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceKey {
    /// Its id.
    pub id: Id,
    /// A label.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When created.
    pub created_at: Timestamp,
    /// When revoked, if revoked.
    pub revoked_at: Option<Timestamp>,
}

impl ServiceKey {
    /// Whether the key grants `scope` (`admin` grants every scope).
    pub fn grants(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|s| *s == scope || *s == Scope::Admin)
    }
}

/// Service keys, found by the hash of their secret.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a new key under the hash of its secret.
    async fn create_key(&self, key: &ServiceKey, secret_hash: &str) -> Result<(), StoreError>;

    /// The active (not revoked) key with this secret hash.
    async fn find_key(&self, secret_hash: &str) -> Result<Option<ServiceKey>, StoreError>;

    /// Every key, revoked ones included, oldest first.
    async fn list_keys(&self) -> Result<Vec<ServiceKey>, StoreError>;

    /// Revokes a key; false if no such active key.
    async fn revoke_key(&self, id: Id, at: Timestamp) -> Result<bool, StoreError>;
}
