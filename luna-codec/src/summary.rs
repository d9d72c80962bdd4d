//! The stored summary projection (`wallet.summary`).

use luna_core::wallet::{OpenHold, SubscriptionState};
use luna_core::{Balance, Energy, Id, SubscriptionRef, Summary, Timestamp};
use serde::{Deserialize, Serialize};

use crate::CodecError;

#[derive(Serialize, Deserialize)]
struct HoldV1 {
    id: String,
    amount: u32,
    expires_at_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct SubscriptionV1 {
    id: String,
    status: String,
    current_period_end_ms: Option<i64>,
    cancel_at_period_end: bool,
    unlimited_plan: bool,
    provider_created_ms: i64,
    applied_at_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct SummaryV1 {
    v: u32,
    opened_at_ms: Option<i64>,
    balance: i64,
    holds: Vec<HoldV1>,
    has_purchased: bool,
    total_consumed: u64,
    total_purchased: u64,
    total_refunded: u64,
    last_recharge_ms: Option<i64>,
    subscriptions: Vec<SubscriptionV1>,
    /// Times of the user's own refunds (added with the refund quota; absent before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    user_refunds_ms: Vec<i64>,
}

/// Encodes a summary for the projection row.
pub fn encode_summary(s: &Summary) -> String {
    let dto = SummaryV1 {
        v: 1,
        opened_at_ms: s.opened_at.map(Timestamp::millis),
        balance: s.balance.units(),
        holds: s
            .holds
            .iter()
            .map(|(id, h)| HoldV1 {
                id: id.to_string(),
                amount: h.amount.units(),
                expires_at_ms: h.expires_at.millis(),
            })
            .collect(),
        has_purchased: s.has_purchased,
        total_consumed: s.total_consumed,
        total_purchased: s.total_purchased,
        total_refunded: s.total_refunded,
        last_recharge_ms: s.last_recharge.map(Timestamp::millis),
        subscriptions: s
            .subscriptions
            .iter()
            .map(|(id, x)| SubscriptionV1 {
                id: id.to_string(),
                status: crate::status_code(x.status).to_owned(),
                current_period_end_ms: x.current_period_end.map(Timestamp::millis),
                cancel_at_period_end: x.cancel_at_period_end,
                unlimited_plan: x.unlimited_plan,
                provider_created_ms: x.provider_created.millis(),
                applied_at_ms: x.applied_at.millis(),
            })
            .collect(),
        user_refunds_ms: s.user_refunds.iter().map(|t| t.millis()).collect(),
    };
    serde_json::to_string(&dto).unwrap_or_else(|_| "null".to_owned())
}

/// Decodes a projection row's summary.
pub fn decode_summary(text: &str) -> Result<Summary, CodecError> {
    let d: SummaryV1 = serde_json::from_str(text).map_err(|source| CodecError::Json {
        what: "summary".into(),
        source,
    })?;
    if d.v != 1 {
        return Err(CodecError::UnknownVersion {
            event_type: "summary".into(),
            version: i32::try_from(d.v).unwrap_or(-1),
        });
    }
    let mut s = Summary {
        opened_at: d.opened_at_ms.map(Timestamp::from_millis),
        balance: Balance::new(d.balance),
        has_purchased: d.has_purchased,
        total_consumed: d.total_consumed,
        total_purchased: d.total_purchased,
        total_refunded: d.total_refunded,
        last_recharge: d.last_recharge_ms.map(Timestamp::from_millis),
        user_refunds: d
            .user_refunds_ms
            .into_iter()
            .map(Timestamp::from_millis)
            .collect(),
        ..Summary::default()
    };
    for h in d.holds {
        let id = Id::parse(&h.id).map_err(|e| CodecError::Invalid(e.to_string()))?;
        s.holds.insert(
            id,
            OpenHold {
                amount: Energy::new(h.amount),
                expires_at: Timestamp::from_millis(h.expires_at_ms),
            },
        );
    }
    for x in d.subscriptions {
        let id = SubscriptionRef::parse(&x.id).map_err(|e| CodecError::Invalid(e.to_string()))?;
        let status = crate::parse_status(&x.status)?;
        s.subscriptions.insert(
            id,
            SubscriptionState {
                status,
                current_period_end: x.current_period_end_ms.map(Timestamp::from_millis),
                cancel_at_period_end: x.cancel_at_period_end,
                unlimited_plan: x.unlimited_plan,
                provider_created: Timestamp::from_millis(x.provider_created_ms),
                applied_at: Timestamp::from_millis(x.applied_at_ms),
            },
        );
    }
    Ok(s)
}
