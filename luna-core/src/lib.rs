//! Luna's pure domain core.
//!
//! Units, the cost grid and pack catalogue, the energy stream (`decide` / `evolve` / fold),
//! read views (check, can-perform, history, analytics) and the Capital Narratif fold.
//! No dependencies, no I/O, no clock, no randomness: time and ids are arguments.
//!
//! ```
//! use luna_core::{Catalog, Command, Env, Id, Policy, Timestamp, Wallet, decide};
//!
//! let catalog = Catalog::builtin();
//! let policy = Policy::default();
//! let env = Env { now: Timestamp::from_secs(1_700_000_000), catalog: &catalog, policy: &policy,
//!                 welcome_tx: Id::from_u128(1) };
//! let action = catalog.grid.price("lettre_motivation").unwrap();
//! let events = decide(&Wallet::default(), &Command::Consume { tx: Id::from_u128(2), action, context: None }, &env).unwrap();
//! let wallet = Wallet::fold(&events);
//! assert_eq!(wallet.summary.balance.units(), 85 - 15);
//! ```

pub mod catalog;
pub mod decide;
pub mod error;
pub mod event;
pub mod history;
pub mod input;
pub mod json;
pub mod narrative;
pub mod policy;
pub mod units;
pub mod view;
pub mod wallet;

pub use catalog::{
    ActionSpec, Catalog, CatalogError, Category, CostGrid, Interval, Pack, PackCatalog, PackKind,
    PricedAction, UnknownAction,
};
pub use decide::{
    ClawbackCause, Command, DomainError, Env, Reversal, Shortfall, decide, ensure_not_unlimited,
};
pub use event::{
    AccountOpened, AppEvent, AuditEvent, BonusGranted, EnergyConsumed, EnergyGranted,
    EnergyRefunded, EnergyReserved, EntityRef, Event, EventKind, HUB_EVENT_TYPES, PackPurchased,
    ReservationReleased, RevocationCause, RevocationOfSession, Revoked, SubscriptionChanged,
    SubscriptionStatus, is_reserved_event_type,
};
pub use input::JsonPart;
pub use json::{Context, RawJson};
pub use policy::Policy;
pub use units::{
    ActionName, AppSource, Balance, Cents, Currency, Date, Email, Energy, EventType, Id,
    InvalidValue, Money, PackId, PaymentRef, Span, SubscriptionRef, Timestamp, TransactionId,
    UserId,
};
pub use view::{CanPerformView, CheckView, SubscriptionType};
pub use wallet::{Summary, Wallet, evolve};
