//! Luna's use cases.
//!
//! Every write goes through one loop, the [`Engine`]: check the idempotency key, load the
//! stream's summary and the entities the command names, `decide` with `luna-core`, append with
//! the expected version (events, new summary and idempotency record in one transaction), and on
//! a conflict reload and decide again, a bounded number of times. The [`Hub`] holds the use
//! cases, grouped by area. No HTTP, no SQL.

pub mod auth;
mod engine;
mod error;
mod hub;
mod keycache;
mod outcome;
pub mod verify;

pub use auth::{AuthError, address_key};
pub use engine::{Decided, Encoder, Engine, EngineStats, Idempotency, MAX_ATTEMPTS, Reply};
pub use error::AppError;
pub use hub::{
    BillingError, BillingSettings, CheckoutStatus, Client, ConsumeRequest, CreditRequest,
    CreditResult, DEFAULT_PAGE, Hub, IntentOutcome, MAX_PAGE, Ports, Profile, PurchaseHistory,
    PurchaseLine, ReconcileReport, RefundRequest, ReserveRequest, ReturnUrls, SERVICE_KEY_PREFIX,
    TokenPair, WebhookOutcome, allowed_return, hash_secret,
};
pub use keycache::{KEY_CACHE_MAX, KEY_CACHE_TTL};
pub use outcome::{
    AnalyticsOutcome, AppEventOutcome, CanPerformOutcome, CheckOutcome, ClawbackOutcome,
    ConsumeOutcome, CreditStatus, GrantOutcome, NarrativeInput, PurchaseOutcome, RefundOutcome,
    ReleaseOutcome, ReserveOutcome, TransactionsPage, TxLine,
};
