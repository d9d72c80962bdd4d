//! The append-only, per-user event store and the projections written with each append.
//!
//! An implementation MUST: append a batch (events, the stream's new summary, an idempotency
//! record) in one transaction only if the stream is still at the expected version, else answer
//! `Conflict` and change nothing; read a stream's summary and the named entities' events
//! consistently (one read); cost the same for `load` whatever the length of the history.

use async_trait::async_trait;
use luna_core::history::UsageCell;
use luna_core::{EntityRef, Event, Id, Summary, Timestamp, UserId};

use crate::error::StoreError;
use crate::idempotency::StoredResponse;

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

/// Renders the response to keep, from the receipts of the appended events (`None`: keep no
/// record, e.g. for a failure that must not be replayed).
pub type RenderResponse<'a> = Box<dyn FnOnce(&[Receipt]) -> Option<StoredResponse> + Send + 'a>;

/// An idempotency record to write in the same transaction as an append. Its response is
/// rendered once the events have their positions.
pub struct PendingIdempotency<'a> {
    /// The principal's scope (`IdempotencyRecord::stream`).
    pub scope: String,
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
    /// The provider event this append applies, marked processed in the same transaction (a
    /// taken mark is a `Conflict`).
    pub processed: Option<&'a str>,
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

/// One row of a stream's transaction history: an energy event with the balances around it,
/// kept at append time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The event.
    pub event: RecordedEvent,
    /// The balance before it.
    pub balance_before: i64,
    /// The balance after it.
    pub balance_after: i64,
    /// The row as stored for analytics (its day, kind, action, app, amount, Unlimited and
    /// notional figures), so `luna verify` can compare all of it with the events.
    pub cell: UsageCell,
}

/// A page of a stream's transaction history, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The rows.
    pub entries: Vec<HistoryEntry>,
    /// How many rows the whole history has (every page, ignoring `before_position`).
    pub total_count: u64,
    /// Whether older rows exist.
    pub has_more: bool,
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

    /// Every event of a stream, oldest first, without what folds do not read (metadata, ids,
    /// receipts): the narrative's input. The default reads whole rows; SQL stores read and
    /// decode only the type, version, payload and time.
    async fn read_events(&self, stream: &UserId) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .read_stream(stream)
            .await?
            .into_iter()
            .map(|r| r.event)
            .collect())
    }

    /// A page of a stream, newest first.
    async fn read_page(
        &self,
        stream: &UserId,
        query: PageQuery<'_>,
    ) -> Result<StreamPage, StoreError>;

    /// A page of the stream's transaction history (its energy events with the balances
    /// around them, see `luna_core::history`), newest first: `limit` rows before
    /// `before_position`. Costs O(page), never O(history).
    async fn history_page(
        &self,
        stream: &UserId,
        before_position: Option<u64>,
        limit: usize,
    ) -> Result<HistoryPage, StoreError>;

    /// The usage cells (`luna_core::history::UsageCell`) of the stream's history rows that
    /// occurred in `[from, to)`, summed per key in key order. Costs O(days in the range + the
    /// rows of at most two partial days), never O(history) (see [`UsageSplit`]).
    async fn usage(
        &self,
        stream: &UserId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<Vec<UsageCell>, StoreError>;

    /// The usage of `[from, to)` as analytics reads it: [`usage`](Self::usage) summed per
    /// (kind, action, app) and consumed energy per day. Stores with daily rollups sum them in
    /// the database (O(keys + days) rows read, not O(cells)); this default sums the cells.
    async fn usage_totals(
        &self,
        stream: &UserId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<luna_core::history::UsageTotals, StoreError> {
        Ok(luna_core::history::UsageTotals::of(
            &self.usage(stream, from, to).await?,
        ))
    }

    /// Up to `limit` events of every stream after `after_position`, by position.
    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The stream of an entity a client names without its user (see
    /// `EventKind::directory_entity`: reservations and payments), from a keyed lookup written
    /// with the event that created it, never a search across streams.
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
