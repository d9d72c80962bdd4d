//! The facts of a user's stream: energy, billing, subscription and app events.
//!
//! Events are past-tense and carry everything their effect needs (resolved costs, grid
//! version, prices), so replaying a stream never looks anything up.

use crate::json::{Context, RawJson};
use crate::units::{
    ActionName, AppSource, Energy, EventType, Id, Money, PackId, PaymentRef, SubscriptionRef,
    Timestamp, TransactionId,
};

/// One event of a user's stream, with the time it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When the event happened (the decision time).
    pub occurred_at: Timestamp,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The energy account opened with its welcome energy.
    AccountOpened(AccountOpened),
    /// An action consumed energy (or, while Unlimited, recorded its notional cost).
    EnergyConsumed(EnergyConsumed),
    /// An action's cost was put on hold until commit, release or expiry.
    EnergyReserved(EnergyReserved),
    /// A hold was released before expiry; its energy is available again.
    ReservationReleased(ReservationReleased),
    /// Part or all of a consume was given back.
    EnergyRefunded(EnergyRefunded),
    /// A one-off pack was paid and its energy credited.
    PackPurchased(PackPurchased),
    /// The first-purchase bonus of a pack was credited (promotional energy).
    BonusGranted(BonusGranted),
    /// An administrator granted energy.
    EnergyGranted(EnergyGranted),
    /// Energy of a refunded or disputed pack was taken back.
    PackRevoked(Revoked),
    /// The bonus of a refunded or disputed pack was taken back.
    BonusRevoked(Revoked),
    /// A subscription's state at the payment provider changed.
    SubscriptionChanged(SubscriptionChanged),
    /// An event posted by a satellite app (no effect on energy).
    AppEvent(AppEvent),
    /// Something happened to the user's account (no effect on energy): the audit trail.
    Audit(AuditEvent),
}

/// A fact of the account's audit trail. Never carries a password, a token or a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditEvent {
    /// A login succeeded and opened a session.
    LoginSucceeded {
        /// The new session.
        session: Id,
        /// The client address, as the hub saw it.
        address: String,
    },
    /// A login with a wrong password.
    LoginFailed {
        /// The client address, as the hub saw it.
        address: String,
    },
    /// A refresh token that was already rotated came back: the session is revoked.
    SessionRefreshReused {
        /// The session.
        session: Id,
    },
    /// A session was revoked.
    SessionRevoked {
        /// The session.
        session: Id,
        /// How.
        cause: RevocationOfSession,
    },
}

/// How a session was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationOfSession {
    /// The user logged out of it.
    Logout,
    /// The user logged out of every session.
    LogoutAll,
    /// The user deleted it from the sessions list.
    Deleted,
    /// Its refresh token was reused.
    RefreshReused,
}

impl AuditEvent {
    /// The event type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            AuditEvent::LoginSucceeded { .. } => "LoginSucceeded",
            AuditEvent::LoginFailed { .. } => "LoginFailed",
            AuditEvent::SessionRefreshReused { .. } => "SessionRefreshReused",
            AuditEvent::SessionRevoked { .. } => "SessionRevoked",
        }
    }
}

/// The account's first event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountOpened {
    /// The welcome row's id.
    pub tx: TransactionId,
    /// The welcome energy.
    pub welcome: Energy,
}

/// A consume, direct or by committing a hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnergyConsumed {
    /// The transaction id (a committed hold keeps its reservation id).
    pub tx: TransactionId,
    /// The action performed.
    pub action: ActionName,
    /// Energy taken from the balance (zero while Unlimited).
    pub cost: Energy,
    /// What the action costs under the grid, charged or not.
    pub notional: Energy,
    /// Whether the user was Unlimited.
    pub unlimited: bool,
    /// The grid version `notional` comes from.
    pub grid_version: std::sync::Arc<str>,
    /// The action's context, verbatim.
    pub context: Option<Context>,
    /// Whether this consume commits a hold of the same id.
    pub from_reservation: bool,
}

/// A hold on energy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnergyReserved {
    /// The reservation id (also the id of the consume that commits it).
    pub tx: TransactionId,
    /// The action the hold is for.
    pub action: ActionName,
    /// Energy held (zero while Unlimited).
    pub amount: Energy,
    /// The action's grid cost.
    pub notional: Energy,
    /// Whether the hold was taken while Unlimited (its commit is an Unlimited consume).
    pub unlimited: bool,
    /// The grid version `notional` comes from.
    pub grid_version: std::sync::Arc<str>,
    /// The first instant the hold no longer counts.
    pub expires_at: Timestamp,
    /// The action's context, verbatim.
    pub context: Option<Context>,
}

/// A hold released before expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationReleased {
    /// The reservation.
    pub tx: TransactionId,
    /// The energy it gave back.
    pub amount: Energy,
}

/// A refund of a consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnergyRefunded {
    /// The refund's own transaction id.
    pub tx: TransactionId,
    /// The consume it refunds.
    pub refunded_tx: TransactionId,
    /// Energy given back (1..=the consume's cost).
    pub amount: Energy,
    /// Why.
    pub reason: String,
    /// Whether the user refunded their own consume (counts against the refund quota).
    pub by_user: bool,
}

/// A paid one-off pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackPurchased {
    /// The transaction id.
    pub tx: TransactionId,
    /// The pack bought.
    pub pack: PackId,
    /// The payment at the provider.
    pub payment: PaymentRef,
    /// The paid energy credited.
    pub energy: Energy,
    /// The amount paid.
    pub price: Money,
}

/// The first-purchase bonus of a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BonusGranted {
    /// The bonus row's id.
    pub tx: TransactionId,
    /// The pack it came with.
    pub pack: PackId,
    /// The payment of that pack.
    pub payment: PaymentRef,
    /// Promotional energy credited.
    pub energy: Energy,
}

/// An administrative grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnergyGranted {
    /// The transaction id.
    pub tx: TransactionId,
    /// Energy granted.
    pub amount: Energy,
    /// Why.
    pub reason: String,
}

/// A clawback of a pack's energy or of its bonus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The transaction id.
    pub tx: TransactionId,
    /// The payment whose energy is revoked.
    pub payment: PaymentRef,
    /// Energy removed by this event (the difference to what was already revoked).
    pub energy: Energy,
    /// Why the payment's energy is taken back.
    pub cause: RevocationCause,
}

/// Why a purchase's energy is taken back (neutral: the payment adapter maps the provider's
/// events to these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationCause {
    /// The payment was refunded, wholly or in part.
    Refunded,
    /// The payment is disputed.
    Disputed,
}

/// A subscription's status at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    /// Paid and current.
    Active,
    /// In a free trial.
    Trialing,
    /// First payment not done yet.
    Incomplete,
    /// First payment never done.
    IncompleteExpired,
    /// Renewal payment failed.
    PastDue,
    /// Ended.
    Canceled,
    /// Unpaid after retries.
    Unpaid,
    /// Paused.
    Paused,
}

impl SubscriptionStatus {
    /// Whether the status grants the plan (`active` or `trialing`).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Active | SubscriptionStatus::Trialing
        )
    }

    /// Every status.
    pub const ALL: [SubscriptionStatus; 8] = [
        SubscriptionStatus::Active,
        SubscriptionStatus::Trialing,
        SubscriptionStatus::Incomplete,
        SubscriptionStatus::IncompleteExpired,
        SubscriptionStatus::PastDue,
        SubscriptionStatus::Canceled,
        SubscriptionStatus::Unpaid,
        SubscriptionStatus::Paused,
    ];

    /// Its name (`past_due`: the provider's, the store's and the wire's).
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Incomplete => "incomplete",
            SubscriptionStatus::IncompleteExpired => "incomplete_expired",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Canceled => "canceled",
            SubscriptionStatus::Unpaid => "unpaid",
            SubscriptionStatus::Paused => "paused",
        }
    }

    /// A status from its name.
    pub fn parse(name: &str) -> Option<SubscriptionStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A subscription's new state, as reported by the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionChanged {
    /// The subscription id.
    pub subscription: SubscriptionRef,
    /// Its status.
    pub status: SubscriptionStatus,
    /// End of the current period (the plan holds until then).
    pub current_period_end: Option<Timestamp>,
    /// Whether it ends at the period end.
    pub cancel_at_period_end: bool,
    /// Whether it includes the Unlimited price.
    pub unlimited_plan: bool,
    /// When the provider produced the state (orders concurrent updates).
    pub provider_created: Timestamp,
}

/// An event posted by a satellite app, with the fields the narrative reads pulled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppEvent {
    /// Its type (never one of the hub's reserved prefixes).
    pub event_type: EventType,
    /// The app that posted it.
    pub app_source: AppSource,
    /// `event_data`, verbatim.
    pub data: RawJson,
    /// `metadata`, verbatim.
    pub metadata: Option<RawJson>,
    /// `event_data.action`, when a string.
    pub action: Option<String>,
    /// `event_data.context`, when an object.
    pub context: Option<Context>,
}

/// The prefixes of the hub's own event types; no client may post an event type starting with
/// one of them (in any case), so nobody forges money events.
pub const RESERVED_EVENT_PREFIXES: [&str; 13] = [
    "Energy",
    "Pack",
    "Bonus",
    "Reservation",
    "Subscription",
    "Billing",
    "Payment",
    "Account",
    "User",
    "Login",
    "Session",
    "Auth",
    "Unlimited",
];

/// The type names of the hub's own events (every one starts with a reserved prefix).
pub const HUB_EVENT_TYPES: [&str; 15] = [
    "AccountOpened",
    "EnergyConsumed",
    "EnergyReserved",
    "ReservationReleased",
    "EnergyRefunded",
    "PackPurchased",
    "BonusGranted",
    "EnergyGranted",
    "PackRevoked",
    "BonusRevoked",
    "SubscriptionChanged",
    "LoginSucceeded",
    "LoginFailed",
    "SessionRefreshReused",
    "SessionRevoked",
];

/// Whether an event type is reserved for the hub.
pub fn is_reserved_event_type(event_type: &str) -> bool {
    RESERVED_EVENT_PREFIXES.iter().any(|p| {
        event_type.len() >= p.len()
            && event_type.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
    })
}

/// The entity an event belongs to, the key under which a store finds the few events a
/// decision about one transaction or one payment needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityRef {
    /// A consume, hold or refund target.
    Transaction(TransactionId),
    /// A purchase, by its payment reference.
    Payment(PaymentRef),
}

impl EntityRef {
    /// A stable text key for storage (`tx:<uuid>`, `pay:<ref>`).
    pub fn key(&self) -> String {
        match self {
            EntityRef::Transaction(id) => format!("tx:{id}"),
            EntityRef::Payment(p) => format!("pay:{p}"),
        }
    }
}

impl EventKind {
    /// The stable type name stored with the event and listed by the events API.
    pub fn type_name(&self) -> &str {
        match self {
            EventKind::AccountOpened(_) => "AccountOpened",
            EventKind::EnergyConsumed(_) => "EnergyConsumed",
            EventKind::EnergyReserved(_) => "EnergyReserved",
            EventKind::ReservationReleased(_) => "ReservationReleased",
            EventKind::EnergyRefunded(_) => "EnergyRefunded",
            EventKind::PackPurchased(_) => "PackPurchased",
            EventKind::BonusGranted(_) => "BonusGranted",
            EventKind::EnergyGranted(_) => "EnergyGranted",
            EventKind::PackRevoked(_) => "PackRevoked",
            EventKind::BonusRevoked(_) => "BonusRevoked",
            EventKind::SubscriptionChanged(_) => "SubscriptionChanged",
            EventKind::AppEvent(e) => e.event_type.as_str(),
            EventKind::Audit(a) => a.type_name(),
        }
    }

    /// The entity the event belongs to, if any.
    pub fn entity_ref(&self) -> Option<EntityRef> {
        match self {
            EventKind::EnergyConsumed(e) => Some(EntityRef::Transaction(e.tx)),
            EventKind::EnergyReserved(e) => Some(EntityRef::Transaction(e.tx)),
            EventKind::ReservationReleased(e) => Some(EntityRef::Transaction(e.tx)),
            EventKind::EnergyRefunded(e) => Some(EntityRef::Transaction(e.refunded_tx)),
            EventKind::PackPurchased(e) => Some(EntityRef::Payment(e.payment.clone())),
            EventKind::BonusGranted(e) => Some(EntityRef::Payment(e.payment.clone())),
            EventKind::PackRevoked(e) | EventKind::BonusRevoked(e) => {
                Some(EntityRef::Payment(e.payment.clone()))
            }
            EventKind::AccountOpened(_)
            | EventKind::EnergyGranted(_)
            | EventKind::SubscriptionChanged(_)
            | EventKind::AppEvent(_)
            | EventKind::Audit(_) => None,
        }
    }

    /// The entity a client may later name without naming its user (a reservation it commits
    /// or releases, a payment the provider reports on): stores keep a keyed lookup of its
    /// stream, so finding it never searches every stream.
    pub fn directory_entity(&self) -> Option<EntityRef> {
        match self {
            EventKind::EnergyReserved(e) => Some(EntityRef::Transaction(e.tx)),
            EventKind::PackPurchased(e) => Some(EntityRef::Payment(e.payment.clone())),
            _ => None,
        }
    }

    /// The transaction (history row) id of an energy event, if it is one.
    pub fn transaction_id(&self) -> Option<Id> {
        match self {
            EventKind::AccountOpened(e) => Some(e.tx),
            EventKind::EnergyConsumed(e) => Some(e.tx),
            EventKind::EnergyRefunded(e) => Some(e.tx),
            EventKind::PackPurchased(e) => Some(e.tx),
            EventKind::BonusGranted(e) => Some(e.tx),
            EventKind::EnergyGranted(e) => Some(e.tx),
            EventKind::PackRevoked(e) | EventKind::BonusRevoked(e) => Some(e.tx),
            EventKind::EnergyReserved(_)
            | EventKind::ReservationReleased(_)
            | EventKind::SubscriptionChanged(_)
            | EventKind::AppEvent(_)
            | EventKind::Audit(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_prefixes_match_in_any_case() {
        assert!(is_reserved_event_type("EnergyConsumed"));
        assert!(is_reserved_event_type("energy.hack"));
        assert!(is_reserved_event_type("PAYMENT_done"));
        assert!(is_reserved_event_type("unlimitedX"));
        assert!(!is_reserved_event_type("letter.generated"));
        assert!(!is_reserved_event_type("Ener"));
    }

    #[test]
    fn every_hub_event_type_is_reserved() {
        for name in HUB_EVENT_TYPES {
            assert!(is_reserved_event_type(name), "{name}");
        }
    }
}
