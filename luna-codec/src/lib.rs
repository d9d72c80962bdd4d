//! Luna's persisted formats.
//!
//! Stored payloads are this crate's own versioned DTOs, converted by hand from domain events,
//! so refactoring the domain never silently changes stored data: a change of a stored shape
//! is a new `schema_version` here, with the old one still decoded.
//!
//! JSON the clients sent (contexts, app `event_data` and `metadata`) is embedded verbatim.

use std::sync::Arc;

use luna_core::{
    AccountOpened, ActionName, AppEvent, AppSource, AuditEvent, BonusGranted, Cents, Context,
    Currency, Energy, EnergyConsumed, EnergyGranted, EnergyRefunded, EnergyReserved, EventKind,
    EventType, Id, Money, PackId, PackPurchased, PaymentRef, RawJson, ReservationReleased,
    RevocationCause, RevocationOfSession, Revoked, SubscriptionChanged, SubscriptionRef,
    SubscriptionStatus, Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

mod ledger;
mod summary;

pub use ledger::{LedgerRow, cell_of, stream_rows};
pub use summary::{decode_summary, encode_summary};

/// The schema version every event is written with today.
///
/// - 1: the first format.
/// - 2: revocations store a neutral cause (`refunded`, `disputed`) instead of the payment
///   provider's event type (`charge.refunded`, `charge.dispute.created`). Version 1 rows are
///   still decoded.
pub const SCHEMA_VERSION: i32 = 2;

/// The oldest schema version this build decodes.
pub const OLDEST_SCHEMA_VERSION: i32 = 1;

/// A stored payload that cannot be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Not valid JSON, or not the shape of its type and version.
    #[error("malformed {what}: {source}")]
    Json {
        /// What was decoded.
        what: String,
        /// Why it failed.
        source: serde_json::Error,
    },
    /// A field failed domain validation.
    #[error("invalid {0}")]
    Invalid(String),
    /// A schema version this build does not know.
    #[error("unknown schema version {version} of {event_type}")]
    UnknownVersion {
        /// The event type.
        event_type: String,
        /// Its version.
        version: i32,
    },
}

fn json_err(what: &str) -> impl FnOnce(serde_json::Error) -> CodecError + '_ {
    move |source| CodecError::Json {
        what: what.to_owned(),
        source,
    }
}

/// An event ready to store: its type, schema version, entity key and JSON payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// `event_type` column.
    pub event_type: String,
    /// `schema_version` column.
    pub schema_version: i32,
    /// `entity` column (`tx:<uuid>` / `pay:<ref>`), for entity loads.
    pub entity: Option<String>,
    /// `payload` column.
    pub payload: String,
}

fn raw(json: &RawJson) -> Box<RawValue> {
    // RawJson is validated JSON by construction at the edges; fall back to null rather than
    // panic on a foreign value.
    RawValue::from_string(json.as_str().to_owned())
        .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("null is JSON"))
}

#[derive(Serialize, Deserialize)]
struct OpenedV1 {
    transaction_id: String,
    welcome: u32,
}

#[derive(Serialize, Deserialize)]
struct ConsumedV1 {
    transaction_id: String,
    action: String,
    cost: u32,
    notional_cost: u32,
    unlimited: bool,
    grid_version: String,
    context: Option<Box<RawValue>>,
    from_reservation: bool,
}

#[derive(Serialize, Deserialize)]
struct ReservedV1 {
    reservation_id: String,
    action: String,
    amount: u32,
    notional_cost: u32,
    unlimited: bool,
    grid_version: String,
    expires_at_ms: i64,
    context: Option<Box<RawValue>>,
}

#[derive(Serialize, Deserialize)]
struct ReleasedV1 {
    reservation_id: String,
    amount: u32,
}

#[derive(Serialize, Deserialize)]
struct RefundedV1 {
    transaction_id: String,
    refunded_transaction_id: String,
    amount: u32,
    reason: String,
    /// Added with the user refund quota (absent: a service's refund).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    by_user: bool,
}

#[derive(Serialize, Deserialize)]
struct AuditV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cause: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct PurchasedV1 {
    transaction_id: String,
    pack: String,
    payment_ref: String,
    energy: u32,
    amount_cents: u64,
    currency: String,
}

#[derive(Serialize, Deserialize)]
struct BonusV1 {
    transaction_id: String,
    pack: String,
    payment_ref: String,
    energy: u32,
}

#[derive(Serialize, Deserialize)]
struct GrantedV1 {
    transaction_id: String,
    amount: u32,
    reason: String,
}

#[derive(Serialize, Deserialize)]
struct RevokedV1 {
    transaction_id: String,
    payment_ref: String,
    energy: u32,
    reason: String,
}

#[derive(Serialize, Deserialize)]
struct SubscriptionV1 {
    subscription_id: String,
    status: String,
    current_period_end_ms: Option<i64>,
    cancel_at_period_end: bool,
    unlimited_plan: bool,
    provider_created_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct AppV1 {
    app_source: String,
    event_data: Box<RawValue>,
    metadata: Option<Box<RawValue>>,
}

fn to_json<T: Serialize>(v: &T) -> String {
    // Serialising these plain structs cannot fail (string keys, no maps with non-string keys).
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// Encodes a domain event as its stored payload.
#[allow(
    clippy::too_many_lines,
    reason = "one arm per stored type, each a plain field mapping"
)]
pub fn encode(kind: &EventKind) -> Encoded {
    let payload = match kind {
        EventKind::AccountOpened(e) => to_json(&OpenedV1 {
            transaction_id: e.tx.to_string(),
            welcome: e.welcome.units(),
        }),
        EventKind::EnergyConsumed(e) => to_json(&ConsumedV1 {
            transaction_id: e.tx.to_string(),
            action: e.action.to_string(),
            cost: e.cost.units(),
            notional_cost: e.notional.units(),
            unlimited: e.unlimited,
            grid_version: e.grid_version.to_string(),
            context: e.context.as_ref().map(|c| raw(c.raw())),
            from_reservation: e.from_reservation,
        }),
        EventKind::EnergyReserved(e) => to_json(&ReservedV1 {
            reservation_id: e.tx.to_string(),
            action: e.action.to_string(),
            amount: e.amount.units(),
            notional_cost: e.notional.units(),
            unlimited: e.unlimited,
            grid_version: e.grid_version.to_string(),
            expires_at_ms: e.expires_at.millis(),
            context: e.context.as_ref().map(|c| raw(c.raw())),
        }),
        EventKind::ReservationReleased(e) => to_json(&ReleasedV1 {
            reservation_id: e.tx.to_string(),
            amount: e.amount.units(),
        }),
        EventKind::EnergyRefunded(e) => to_json(&RefundedV1 {
            transaction_id: e.tx.to_string(),
            refunded_transaction_id: e.refunded_tx.to_string(),
            amount: e.amount.units(),
            reason: e.reason.clone(),
            by_user: e.by_user,
        }),
        EventKind::PackPurchased(e) => to_json(&PurchasedV1 {
            transaction_id: e.tx.to_string(),
            pack: e.pack.to_string(),
            payment_ref: e.payment.to_string(),
            energy: e.energy.units(),
            amount_cents: e.price.amount.minor(),
            currency: e.price.currency.to_string(),
        }),
        EventKind::BonusGranted(e) => to_json(&BonusV1 {
            transaction_id: e.tx.to_string(),
            pack: e.pack.to_string(),
            payment_ref: e.payment.to_string(),
            energy: e.energy.units(),
        }),
        EventKind::EnergyGranted(e) => to_json(&GrantedV1 {
            transaction_id: e.tx.to_string(),
            amount: e.amount.units(),
            reason: e.reason.clone(),
        }),
        EventKind::PackRevoked(e) | EventKind::BonusRevoked(e) => to_json(&RevokedV1 {
            transaction_id: e.tx.to_string(),
            payment_ref: e.payment.to_string(),
            energy: e.energy.units(),
            reason: cause_code(e.cause).to_owned(),
        }),
        EventKind::SubscriptionChanged(e) => to_json(&SubscriptionV1 {
            subscription_id: e.subscription.to_string(),
            status: status_code(e.status).to_owned(),
            current_period_end_ms: e.current_period_end.map(Timestamp::millis),
            cancel_at_period_end: e.cancel_at_period_end,
            unlimited_plan: e.unlimited_plan,
            provider_created_ms: e.provider_created.millis(),
        }),
        EventKind::Audit(a) => to_json(&audit_dto(a)),
        EventKind::AppEvent(e) => to_json(&AppV1 {
            app_source: e.app_source.to_string(),
            event_data: raw(&e.data),
            metadata: e.metadata.as_ref().map(raw),
        }),
    };
    Encoded {
        event_type: kind.type_name().to_owned(),
        schema_version: SCHEMA_VERSION,
        entity: kind.entity_ref().map(|r| r.key()),
        payload,
    }
}

fn parse<'a, T: Deserialize<'a>>(what: &str, payload: &'a str) -> Result<T, CodecError> {
    serde_json::from_str(payload).map_err(json_err(what))
}

fn id(s: &str) -> Result<Id, CodecError> {
    Id::parse(s).map_err(|e| CodecError::Invalid(e.to_string()))
}

fn valid<T>(r: Result<T, luna_core::InvalidValue>) -> Result<T, CodecError> {
    r.map_err(|e| CodecError::Invalid(e.to_string()))
}

fn context(raw: Option<Box<RawValue>>) -> Result<Option<Context>, CodecError> {
    raw.map(|r| context_from_raw(r.get())).transpose()
}

#[derive(Deserialize)]
struct ContextProbe {
    #[serde(default)]
    app_source: Option<serde_json::Value>,
    #[serde(default)]
    target_role: Option<serde_json::Value>,
    #[serde(default)]
    industry: Option<serde_json::Value>,
}

fn string_field(v: Option<serde_json::Value>) -> Option<Arc<str>> {
    match v {
        Some(serde_json::Value::String(s)) => Some(Arc::from(s)),
        _ => None,
    }
}

/// A context from the verbatim text of a JSON object, with the fields the domain reads.
pub fn context_from_raw(text: &str) -> Result<Context, CodecError> {
    let probe: ContextProbe = serde_json::from_str(text).map_err(json_err("context"))?;
    Ok(Context::new(
        RawJson::new(text),
        string_field(probe.app_source),
        string_field(probe.target_role),
        string_field(probe.industry),
    ))
}

#[derive(Deserialize)]
struct EventDataProbe<'a> {
    #[serde(default)]
    action: Option<serde_json::Value>,
    #[serde(default, borrow)]
    context: Option<&'a RawValue>,
}

/// An app event from its parts, with `event_data.action` (when a string) and
/// `event_data.context` (when an object) pulled out for the narrative.
pub fn app_event(
    event_type: EventType,
    app_source: AppSource,
    event_data: &str,
    metadata: Option<&str>,
) -> Result<AppEvent, CodecError> {
    let probe: EventDataProbe<'_> =
        serde_json::from_str(event_data).map_err(json_err("event_data"))?;
    let action = match probe.action {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => None,
    };
    let context = match probe.context {
        Some(c) if c.get().trim_start().starts_with('{') => Some(context_from_raw(c.get())?),
        _ => None,
    };
    Ok(AppEvent {
        event_type,
        app_source,
        data: RawJson::new(event_data),
        metadata: metadata.map(RawJson::new),
        action,
        context,
    })
}

fn audit_dto(a: &AuditEvent) -> AuditV1 {
    let (session, address, cause) = match a {
        AuditEvent::LoginSucceeded { session, address } => (Some(*session), Some(address), None),
        AuditEvent::LoginFailed { address } => (None, Some(address), None),
        AuditEvent::SessionRefreshReused { session } => (Some(*session), None, None),
        AuditEvent::SessionRevoked { session, cause } => {
            (Some(*session), None, Some(session_cause_code(*cause)))
        }
    };
    AuditV1 {
        session_id: session.map(|s| s.to_string()),
        address: address.cloned(),
        cause: cause.map(str::to_owned),
    }
}

fn session_cause_code(c: RevocationOfSession) -> &'static str {
    match c {
        RevocationOfSession::Logout => "logout",
        RevocationOfSession::LogoutAll => "logout_all",
        RevocationOfSession::Deleted => "deleted",
        RevocationOfSession::RefreshReused => "refresh_reused",
    }
}

fn audit(event_type: &str, d: &AuditV1) -> Result<AuditEvent, CodecError> {
    let missing = |f: &str| CodecError::Invalid(format!("{event_type} without {f}"));
    let session = || -> Result<Id, CodecError> {
        id(d.session_id
            .as_deref()
            .ok_or_else(|| missing("session_id"))?)
    };
    Ok(match event_type {
        "LoginSucceeded" => AuditEvent::LoginSucceeded {
            session: session()?,
            address: d.address.clone().ok_or_else(|| missing("address"))?,
        },
        "LoginFailed" => AuditEvent::LoginFailed {
            address: d.address.clone().ok_or_else(|| missing("address"))?,
        },
        "SessionRefreshReused" => AuditEvent::SessionRefreshReused {
            session: session()?,
        },
        _ => AuditEvent::SessionRevoked {
            session: session()?,
            cause: match d.cause.as_deref() {
                Some("logout") => RevocationOfSession::Logout,
                Some("logout_all") => RevocationOfSession::LogoutAll,
                Some("deleted") => RevocationOfSession::Deleted,
                Some("refresh_reused") => RevocationOfSession::RefreshReused,
                _ => return Err(missing("a known cause")),
            },
        },
    })
}

/// The stored code of a revocation cause (schema 2).
fn cause_code(c: RevocationCause) -> &'static str {
    match c {
        RevocationCause::Refunded => "refunded",
        RevocationCause::Disputed => "disputed",
    }
}

/// A stored revocation cause: schema 1 stored the provider's event type.
fn parse_cause(schema_version: i32, reason: &str) -> Result<RevocationCause, CodecError> {
    match (schema_version, reason) {
        (1, "charge.refunded") | (2.., "refunded") => Ok(RevocationCause::Refunded),
        (1, "charge.dispute.created") | (2.., "disputed") => Ok(RevocationCause::Disputed),
        _ => Err(CodecError::Invalid(format!("revocation cause {reason}"))),
    }
}

/// The stored name of a subscription status.
pub fn status_code(s: SubscriptionStatus) -> &'static str {
    s.as_str()
}

/// A stored subscription status.
pub fn parse_status(s: &str) -> Result<SubscriptionStatus, CodecError> {
    SubscriptionStatus::parse(s)
        .ok_or_else(|| CodecError::Invalid(format!("subscription status {s}")))
}

/// Decodes a stored payload.
#[allow(
    clippy::too_many_lines,
    reason = "one arm per stored type, each a plain field mapping"
)]
pub fn decode(
    event_type: &str,
    schema_version: i32,
    payload: &str,
) -> Result<EventKind, CodecError> {
    if !(OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&schema_version) {
        return Err(CodecError::UnknownVersion {
            event_type: event_type.to_owned(),
            version: schema_version,
        });
    }
    Ok(match event_type {
        "AccountOpened" => {
            let d: OpenedV1 = parse(event_type, payload)?;
            EventKind::AccountOpened(AccountOpened {
                tx: id(&d.transaction_id)?,
                welcome: Energy::new(d.welcome),
            })
        }
        "EnergyConsumed" => {
            let d: ConsumedV1 = parse(event_type, payload)?;
            EventKind::EnergyConsumed(EnergyConsumed {
                tx: id(&d.transaction_id)?,
                action: valid(ActionName::parse(&d.action))?,
                cost: Energy::new(d.cost),
                notional: Energy::new(d.notional_cost),
                unlimited: d.unlimited,
                grid_version: d.grid_version.into(),
                context: context(d.context)?,
                from_reservation: d.from_reservation,
            })
        }
        "EnergyReserved" => {
            let d: ReservedV1 = parse(event_type, payload)?;
            EventKind::EnergyReserved(EnergyReserved {
                tx: id(&d.reservation_id)?,
                action: valid(ActionName::parse(&d.action))?,
                amount: Energy::new(d.amount),
                notional: Energy::new(d.notional_cost),
                unlimited: d.unlimited,
                grid_version: d.grid_version.into(),
                expires_at: Timestamp::from_millis(d.expires_at_ms),
                context: context(d.context)?,
            })
        }
        "ReservationReleased" => {
            let d: ReleasedV1 = parse(event_type, payload)?;
            EventKind::ReservationReleased(ReservationReleased {
                tx: id(&d.reservation_id)?,
                amount: Energy::new(d.amount),
            })
        }
        "EnergyRefunded" => {
            let d: RefundedV1 = parse(event_type, payload)?;
            EventKind::EnergyRefunded(EnergyRefunded {
                tx: id(&d.transaction_id)?,
                refunded_tx: id(&d.refunded_transaction_id)?,
                amount: Energy::new(d.amount),
                reason: d.reason,
                by_user: d.by_user,
            })
        }
        "PackPurchased" => {
            let d: PurchasedV1 = parse(event_type, payload)?;
            EventKind::PackPurchased(PackPurchased {
                tx: id(&d.transaction_id)?,
                pack: valid(PackId::parse(&d.pack))?,
                payment: valid(PaymentRef::parse(&d.payment_ref))?,
                energy: Energy::new(d.energy),
                price: Money::new(
                    Cents::new(d.amount_cents),
                    valid(Currency::parse(&d.currency))?,
                ),
            })
        }
        "BonusGranted" => {
            let d: BonusV1 = parse(event_type, payload)?;
            EventKind::BonusGranted(BonusGranted {
                tx: id(&d.transaction_id)?,
                pack: valid(PackId::parse(&d.pack))?,
                payment: valid(PaymentRef::parse(&d.payment_ref))?,
                energy: Energy::new(d.energy),
            })
        }
        "EnergyGranted" => {
            let d: GrantedV1 = parse(event_type, payload)?;
            EventKind::EnergyGranted(EnergyGranted {
                tx: id(&d.transaction_id)?,
                amount: Energy::new(d.amount),
                reason: d.reason,
            })
        }
        "PackRevoked" | "BonusRevoked" => {
            let d: RevokedV1 = parse(event_type, payload)?;
            let r = Revoked {
                tx: id(&d.transaction_id)?,
                payment: valid(PaymentRef::parse(&d.payment_ref))?,
                energy: Energy::new(d.energy),
                cause: parse_cause(schema_version, &d.reason)?,
            };
            if event_type == "PackRevoked" {
                EventKind::PackRevoked(r)
            } else {
                EventKind::BonusRevoked(r)
            }
        }
        "SubscriptionChanged" => {
            let d: SubscriptionV1 = parse(event_type, payload)?;
            EventKind::SubscriptionChanged(SubscriptionChanged {
                subscription: valid(SubscriptionRef::parse(&d.subscription_id))?,
                status: parse_status(&d.status)?,
                current_period_end: d.current_period_end_ms.map(Timestamp::from_millis),
                cancel_at_period_end: d.cancel_at_period_end,
                unlimited_plan: d.unlimited_plan,
                provider_created: Timestamp::from_millis(d.provider_created_ms),
            })
        }
        "LoginSucceeded" | "LoginFailed" | "SessionRefreshReused" | "SessionRevoked" => {
            EventKind::Audit(audit(event_type, &parse(event_type, payload)?)?)
        }
        other => {
            let d: AppV1 = parse("app event", payload)?;
            EventKind::AppEvent(app_event(
                valid(EventType::parse(other))?,
                valid(AppSource::parse(&d.app_source))?,
                d.event_data.get(),
                d.metadata.as_deref().map(RawValue::get),
            )?)
        }
    })
}

mod rows;

pub use rows::{
    EventRow, KeyRow, MetadataDto, NewEventRow, decode_event, decode_key, decode_metadata,
    decode_row, encode_metadata, encode_new, encode_scopes,
};
