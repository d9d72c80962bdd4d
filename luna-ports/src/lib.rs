//! The ports: traits at the edges of the hexagon.
//!
//! Use cases (`luna-app`) are written against these traits; adapters (in-memory in
//! `luna-testkit`, SQLite, PostgreSQL, Stripe) implement them. Errors carry one variant callers
//! act on (`Conflict`: retry) and keep everything else opaque.

mod payment;
mod store;

pub use payment::{
    CheckoutRequest, CheckoutSession, CreateIntent, GatewayError, PaymentGateway, PaymentIntentView,
};
pub use store::{
    AppendBatch, Appended, Clock, EnergyAfter, EventMetadata, EventStore, IdGenerator,
    IdempotencyRecord, IdempotencyStore, KeyStore, LoadedWallet, NewEvent, PageQuery,
    PendingIdempotency, Receipt, RecordedEvent, RenderResponse, Scope, ServiceKey, Store,
    StoreError, StoredResponse, StoredSummary, StreamPage,
};
