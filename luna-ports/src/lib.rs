//! The ports: traits at the edges of the hexagon, one module per concern.
//!
//! Use cases (`luna-app`) are written against these traits; adapters (in-memory in
//! `luna-testkit`, SQLite, PostgreSQL, Stripe) implement them. Errors carry the variants callers
//! act on (`Conflict`/`Busy`: retry; `Unavailable`: 503) and keep everything else opaque. A new
//! store (accounts, billing) is a port of its own, not a member of a growing supertrait.

mod accounts;
mod error;
mod events;
mod idempotency;
mod keys;
mod payment;
mod runtime;
mod usage;

pub use accounts::{Account, AccountStore, Rotation, Session, ThrottleStore};
pub use error::StoreError;
pub use events::{
    AppendBatch, Appended, EnergyAfter, EventMetadata, EventStore, HistoryEntry, HistoryPage,
    LoadedWallet, NewEvent, PageQuery, PendingIdempotency, Receipt, RecordedEvent, RenderResponse,
    StoredSummary, StreamPage,
};
pub use idempotency::{IdempotencyRecord, IdempotencyStore, StoredResponse};
pub use keys::{KeyStore, Scope, ServiceKey};
pub use payment::{
    BillingStore, ChargeView, CheckoutView, EventVerifier, GatewayError, NewCheckout, NewPayment,
    OpenCheckout, PaymentGateway, PaymentPage, PaymentView, PriceView, ProviderChange,
    ProviderEvent, Return, SubscriptionView, UnmatchedPayment, WebhookError,
};
pub use runtime::{Clock, IdGenerator, SecretSource};
pub use usage::{Bounds, USAGE_SPAN_DAYS, UsageEdge, UsageSplit, bounded, usage_span};

/// The event store and its idempotency records: one database, since records of commands are
/// written in the append's transaction. Other stores (service keys, accounts, billing) are
/// ports of their own.
pub trait Store: EventStore + IdempotencyStore {}

impl<T: EventStore + IdempotencyStore> Store for T {}
