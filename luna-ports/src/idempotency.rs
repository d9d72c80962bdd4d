//! Idempotency records: the first final answer to a request carrying a key, replayed to every
//! repetition. Records of commands are written in the append's transaction (see
//! `AppendBatch::idempotency`); this port keeps the ones of answers that append nothing.

use async_trait::async_trait;
use luna_core::Timestamp;

use crate::error::StoreError;

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
    /// The principal's scope the record belongs to (its distribution key): a user's own
    /// stream for a user principal, the service key's id for a service.
    pub stream: String,
    /// The scoped key (principal, route, client key).
    pub key: String,
    /// A digest of the request, to refuse a reused key with another body.
    pub fingerprint: String,
    /// The first final response.
    pub response: StoredResponse,
    /// When it was stored.
    pub created_at: Timestamp,
}

/// Idempotency records kept on their own (for outcomes that append nothing). Records are
/// keyed by `(principal scope, key)`.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// The record under a key in a principal's scope.
    async fn get(&self, stream: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Stores a record; `Conflict` if the key is taken in that scope.
    async fn put(&self, record: IdempotencyRecord) -> Result<(), StoreError>;

    /// Deletes records created before `before`; returns how many.
    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError>;
}
