//! The `event_data` and `metadata` of the hub's own events as `/luna/events` shows them. These
//! are wire shapes, mapped by hand from domain events by the server: a change of the stored
//! format never changes them.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `AccountOpened`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountOpenedData {
    pub transaction_id: String,
    pub welcome: u32,
}

/// `EnergyConsumed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnergyConsumedData {
    pub transaction_id: String,
    pub action: String,
    pub cost: u32,
    pub notional_cost: u32,
    pub unlimited: bool,
    pub grid_version: String,
    pub context: Option<Box<RawValue>>,
    pub from_reservation: bool,
}

/// `EnergyReserved`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnergyReservedData {
    pub reservation_id: String,
    pub action: String,
    pub amount: u32,
    pub notional_cost: u32,
    pub unlimited: bool,
    pub grid_version: String,
    pub expires_at_ms: i64,
    pub context: Option<Box<RawValue>>,
}

/// `ReservationReleased`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReservationReleasedData {
    pub reservation_id: String,
    pub amount: u32,
}

/// `EnergyRefunded`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnergyRefundedData {
    pub transaction_id: String,
    pub refunded_transaction_id: String,
    pub amount: u32,
    pub reason: String,
}

/// `PackPurchased`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackPurchasedData {
    pub transaction_id: String,
    pub pack: String,
    pub payment_ref: String,
    pub energy: u32,
    pub amount_cents: u64,
    pub currency: String,
}

/// `BonusGranted`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BonusGrantedData {
    pub transaction_id: String,
    pub pack: String,
    pub payment_ref: String,
    pub energy: u32,
}

/// `EnergyGranted`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnergyGrantedData {
    pub transaction_id: String,
    pub amount: u32,
    pub reason: String,
}

/// `PackRevoked` and `BonusRevoked`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokedData {
    pub transaction_id: String,
    pub payment_ref: String,
    pub energy: u32,
    /// `charge.refunded` or `charge.dispute.created`.
    pub reason: String,
}

/// `SubscriptionChanged`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriptionChangedData {
    pub subscription_id: String,
    pub status: String,
    pub current_period_end_ms: Option<i64>,
    pub cancel_at_period_end: bool,
    pub unlimited_plan: bool,
    pub provider_created_ms: i64,
}

/// `LoginSucceeded`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginSucceededData {
    pub session_id: String,
    pub address: String,
}

/// `LoginFailed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginFailedData {
    pub address: String,
}

/// `SessionRefreshReused` and `SessionRevoked`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub session_id: String,
    /// For a revocation: `logout`, `logout_all`, `deleted` or `refresh_reused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// The `metadata` of a hub event.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HubEventMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// The `event_data` of a hub event, by type.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HubEventData {
    AccountOpened(AccountOpenedData),
    EnergyConsumed(EnergyConsumedData),
    EnergyReserved(EnergyReservedData),
    ReservationReleased(ReservationReleasedData),
    EnergyRefunded(EnergyRefundedData),
    PackPurchased(PackPurchasedData),
    BonusGranted(BonusGrantedData),
    EnergyGranted(EnergyGrantedData),
    Revoked(RevokedData),
    SubscriptionChanged(SubscriptionChangedData),
    LoginSucceeded(LoginSucceededData),
    LoginFailed(LoginFailedData),
    Session(SessionData),
}
