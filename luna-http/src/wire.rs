//! Explicit mappings between the wire (`luna-api`) and the domain: client JSON into domain
//! values (with the domain's own size rules), and domain events into the shapes `/luna/events`
//! shows. Stored formats never reach the wire: a change of `luna-codec` cannot change the API.

use std::sync::Arc;

use luna_api::hub_events::{
    AccountOpenedData, BonusGrantedData, EnergyConsumedData, EnergyGrantedData, EnergyRefundedData,
    EnergyReservedData, HubEventData, HubEventMetadata, LoginFailedData, LoginSucceededData,
    PackPurchasedData, ReservationReleasedData, RevokedData, SessionData, SubscriptionChangedData,
};
use luna_core::history::TxReason;
use luna_core::{
    AppEvent, AppSource, AuditEvent, Context, EventKind, EventType, JsonPart, RawJson,
    RevocationCause, RevocationOfSession, SubscriptionStatus, Timestamp,
};
use luna_ports::EventMetadata;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::ApiError;

/// 422 `type_error.dict` at `loc`.
fn not_an_object(loc: &str) -> ApiError {
    ApiError::validation(&["body", loc], "must be a JSON object", "type_error.dict")
}

/// A client JSON object kept verbatim: an object, within its part's size limit.
fn object<'a>(raw: &'a RawValue, part: JsonPart, loc: &str) -> Result<&'a str, ApiError> {
    let text = raw.get();
    if !text.trim_start().starts_with('{') {
        return Err(not_an_object(loc));
    }
    luna_core::input::json_size(part, text.len())?;
    Ok(text)
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

/// An action's `context` (a JSON object ≤ 8 KiB, or null), with the fields the domain reads.
pub fn context(raw: Option<&RawValue>) -> Result<Option<Context>, ApiError> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    let text = object(raw, JsonPart::Context, "context")?;
    let probe: ContextProbe = serde_json::from_str(text).map_err(|_| not_an_object("context"))?;
    Ok(Some(Context::new(
        RawJson::new(text),
        string_field(probe.app_source),
        string_field(probe.target_role),
        string_field(probe.industry),
    )))
}

#[derive(Deserialize)]
struct EventDataProbe<'a> {
    #[serde(default)]
    action: Option<serde_json::Value>,
    #[serde(default, borrow)]
    context: Option<&'a RawValue>,
}

/// An app event from a request's parts: the patterns of `event_type` and `app_source`, the
/// sizes of `event_data` and `metadata`, and the fields the narrative reads pulled out.
pub fn app_event(
    event_type: &str,
    app_source: &str,
    event_data: &RawValue,
    metadata: Option<&RawValue>,
) -> Result<AppEvent, ApiError> {
    let event_type = EventType::parse(event_type).map_err(|e| pattern(&["body"], &e))?;
    let app_source = AppSource::parse(app_source).map_err(|e| pattern(&["body"], &e))?;
    let data = object(event_data, JsonPart::EventData, "event_data")?;
    let metadata = metadata
        .filter(|m| m.get() != "null")
        .map(|m| object(m, JsonPart::Metadata, "metadata"))
        .transpose()?;
    let probe: EventDataProbe<'_> =
        serde_json::from_str(data).map_err(|_| not_an_object("event_data"))?;
    let action = match probe.action {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => None,
    };
    let context = probe
        .context
        .filter(|c| c.get().trim_start().starts_with('{'))
        .map(|c| {
            let probe: ContextProbe =
                serde_json::from_str(c.get()).map_err(|_| not_an_object("event_data"))?;
            Ok::<_, ApiError>(Context::new(
                RawJson::new(c.get()),
                string_field(probe.app_source),
                string_field(probe.target_role),
                string_field(probe.industry),
            ))
        })
        .transpose()?;
    Ok(AppEvent {
        event_type,
        app_source,
        data: RawJson::new(data),
        metadata: metadata.map(RawJson::new),
        action,
        context,
    })
}

/// 422 for a value failing its pattern, at `loc` + the value's name, with the domain's message.
pub fn pattern(loc: &[&str], e: &luna_core::InvalidValue) -> ApiError {
    let mut full: Vec<&str> = loc.to_vec();
    full.push(e.what);
    ApiError::validation(&full, e.why, "value_error.str.regex")
}

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: Timestamp) -> String {
    crate::render::rfc3339(t)
}

fn raw_json(text: &str) -> Box<RawValue> {
    // Domain `RawJson` holds JSON validated at the edge; fall back to null, never panic.
    RawValue::from_string(text.to_owned())
        .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("null is JSON"))
}

fn context_json(c: Option<&Context>) -> Option<Box<RawValue>> {
    c.map(|c| raw_json(c.raw().as_str()))
}

/// How a revocation cause reads on the wire (the payment provider's event names, as the first
/// hub showed them).
pub fn revocation_reason(c: RevocationCause) -> &'static str {
    match c {
        RevocationCause::Refunded => "charge.refunded",
        RevocationCause::Disputed => "charge.dispute.created",
    }
}

/// A subscription status on the wire.
pub fn subscription_status(s: SubscriptionStatus) -> &'static str {
    s.as_str()
}

/// A history row's `reason`.
pub fn tx_reason(r: &TxReason) -> String {
    match r {
        TxReason::Welcome => "welcome".to_owned(),
        TxReason::Action(a) => a.to_string(),
        TxReason::Text(t) => t.clone(),
        TxReason::Pack(p) => p.to_string(),
        TxReason::Bonus(p) => format!("first_purchase_bonus:{p}"),
        TxReason::Revocation(c) => revocation_reason(*c).to_owned(),
    }
}

/// The `event_data` of a hub event (`None` for an app event, whose data is the client's).
#[allow(
    clippy::too_many_lines,
    reason = "one arm per event type, each a plain field mapping"
)]
pub fn hub_event_data(kind: &EventKind) -> Option<HubEventData> {
    Some(match kind {
        EventKind::AccountOpened(e) => HubEventData::AccountOpened(AccountOpenedData {
            transaction_id: e.tx.to_string(),
            welcome: e.welcome.units(),
        }),
        EventKind::EnergyConsumed(e) => HubEventData::EnergyConsumed(EnergyConsumedData {
            transaction_id: e.tx.to_string(),
            action: e.action.to_string(),
            cost: e.cost.units(),
            notional_cost: e.notional.units(),
            unlimited: e.unlimited,
            grid_version: e.grid_version.to_string(),
            context: context_json(e.context.as_ref()),
            from_reservation: e.from_reservation,
        }),
        EventKind::EnergyReserved(e) => HubEventData::EnergyReserved(EnergyReservedData {
            reservation_id: e.tx.to_string(),
            action: e.action.to_string(),
            amount: e.amount.units(),
            notional_cost: e.notional.units(),
            unlimited: e.unlimited,
            grid_version: e.grid_version.to_string(),
            expires_at_ms: e.expires_at.millis(),
            context: context_json(e.context.as_ref()),
        }),
        EventKind::ReservationReleased(e) => {
            HubEventData::ReservationReleased(ReservationReleasedData {
                reservation_id: e.tx.to_string(),
                amount: e.amount.units(),
            })
        }
        EventKind::EnergyRefunded(e) => HubEventData::EnergyRefunded(EnergyRefundedData {
            transaction_id: e.tx.to_string(),
            refunded_transaction_id: e.refunded_tx.to_string(),
            amount: e.amount.units(),
            reason: e.reason.clone(),
        }),
        EventKind::PackPurchased(e) => HubEventData::PackPurchased(PackPurchasedData {
            transaction_id: e.tx.to_string(),
            pack: e.pack.to_string(),
            payment_ref: e.payment.to_string(),
            energy: e.energy.units(),
            amount_cents: e.price.amount.minor(),
            currency: e.price.currency.to_string(),
        }),
        EventKind::BonusGranted(e) => HubEventData::BonusGranted(BonusGrantedData {
            transaction_id: e.tx.to_string(),
            pack: e.pack.to_string(),
            payment_ref: e.payment.to_string(),
            energy: e.energy.units(),
        }),
        EventKind::EnergyGranted(e) => HubEventData::EnergyGranted(EnergyGrantedData {
            transaction_id: e.tx.to_string(),
            amount: e.amount.units(),
            reason: e.reason.clone(),
        }),
        EventKind::PackRevoked(e) | EventKind::BonusRevoked(e) => {
            HubEventData::Revoked(RevokedData {
                transaction_id: e.tx.to_string(),
                payment_ref: e.payment.to_string(),
                energy: e.energy.units(),
                reason: revocation_reason(e.cause).to_owned(),
            })
        }
        EventKind::SubscriptionChanged(e) => {
            HubEventData::SubscriptionChanged(SubscriptionChangedData {
                subscription_id: e.subscription.to_string(),
                status: subscription_status(e.status).to_owned(),
                current_period_end_ms: e.current_period_end.map(Timestamp::millis),
                cancel_at_period_end: e.cancel_at_period_end,
                unlimited_plan: e.unlimited_plan,
                provider_created_ms: e.provider_created.millis(),
            })
        }
        EventKind::Audit(a) => audit_data(a),
        EventKind::AppEvent(_) => return None,
    })
}

fn audit_data(a: &AuditEvent) -> HubEventData {
    match a {
        AuditEvent::LoginSucceeded { session, address } => {
            HubEventData::LoginSucceeded(LoginSucceededData {
                session_id: session.to_string(),
                address: address.clone(),
            })
        }
        AuditEvent::LoginFailed { address } => HubEventData::LoginFailed(LoginFailedData {
            address: address.clone(),
        }),
        AuditEvent::SessionRefreshReused { session } => HubEventData::Session(SessionData {
            session_id: session.to_string(),
            cause: None,
        }),
        AuditEvent::SessionRevoked { session, cause } => HubEventData::Session(SessionData {
            session_id: session.to_string(),
            cause: Some(
                match cause {
                    RevocationOfSession::Logout => "logout",
                    RevocationOfSession::LogoutAll => "logout_all",
                    RevocationOfSession::Deleted => "deleted",
                    RevocationOfSession::RefreshReused => "refresh_reused",
                }
                .to_owned(),
            ),
        }),
    }
}

/// The `metadata` of a hub event.
pub fn hub_event_metadata(m: &EventMetadata) -> HubEventMetadata {
    HubEventMetadata {
        actor: m.actor.clone(),
        correlation_id: m.correlation_id.clone(),
        idempotency_key: m.idempotency_key.clone(),
    }
}

/// A serialisable wire value as a raw JSON value (serialising these plain types cannot fail).
pub fn to_raw<T: serde::Serialize>(v: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).unwrap_or_else(|_| raw_json("null"))
}

/// The wire form of a balance (the check answer, and each live `balance` event).
pub fn check_dto(
    user: &luna_core::UserId,
    v: &luna_core::view::CheckView,
    stream_version: u64,
) -> luna_api::CheckResponse {
    luna_api::CheckResponse {
        success: true,
        user_id: user.to_string(),
        current_energy: v.current_energy,
        max_energy: v.max_energy,
        percentage: v.percentage,
        available_energy: v.available_energy,
        reserved_energy: v.reserved_energy,
        can_perform_basic_action: v.can_perform_basic_action,
        last_recharge: v.last_recharge.map(rfc3339),
        total_consumed: v.total_consumed,
        total_purchased: v.total_purchased,
        subscription_type: v.subscription_type.as_str().to_owned(),
        unlimited: v.unlimited(),
        unlimited_until: v.unlimited_until.map(rfc3339),
        stream_version,
    }
}
