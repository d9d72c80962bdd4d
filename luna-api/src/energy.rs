//! `/luna/energy/*`: balances, consumes, holds, refunds, grants, history, analytics, costs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

// ---- requests ---------------------------------------------------------------------------

/// Balance check.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"user_id": "user_42"})))]
pub struct CheckBody {
    /// The user (required for service keys; users act for themselves).
    pub user_id: Option<String>,
}

/// Whether an action can be performed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"user_id": "user_42", "action_name": "lettre_motivation"})))]
pub struct CanPerformBody {
    /// The user.
    pub user_id: Option<String>,
    /// An action of the cost grid.
    pub action_name: String,
}

/// Consume an action's cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"user_id": "user_42", "action_name": "lettre_motivation", "context": {"app_source": "letters", "target_role": "Data Analyst"}})))]
pub struct ConsumeBody {
    /// The user.
    pub user_id: Option<String>,
    /// An action of the cost grid.
    pub action_name: String,
    /// A JSON object ≤ 8 KiB kept verbatim; `context.app_source` names the app.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub context: Option<Box<RawValue>>,
}

/// Put an action's cost on hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"user_id": "user_42", "action_name": "mirror_match", "ttl_seconds": 300})))]
pub struct ReserveBody {
    /// The user.
    pub user_id: Option<String>,
    /// An action of the cost grid.
    pub action_name: String,
    /// 1..=3600, default 300.
    pub ttl_seconds: Option<i64>,
    /// A JSON object ≤ 8 KiB kept verbatim.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub context: Option<Box<RawValue>>,
}

/// Commit a hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"context": {"app_source": "cv"}})))]
pub struct CommitBody {
    /// Context to record instead of the reservation's.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub context: Option<Box<RawValue>>,
}

/// Release a hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({})))]
pub struct ReleaseBody {}

/// Refund a consume.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"user_id": "user_42", "transaction_id": "0190c7a2-0000-7000-8000-000000000001", "amount": 15, "reason": "generation failed"})))]
pub struct RefundBody {
    /// The user.
    pub user_id: Option<String>,
    /// The consume's transaction id.
    pub transaction_id: String,
    /// 1..=the consume's cost (default all of it).
    pub amount: Option<i64>,
    /// Why.
    pub reason: String,
}

/// Grant energy (admin).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"user_id": "user_42", "amount": 50, "reason": "support gesture"})))]
pub struct GrantBody {
    /// The user.
    pub user_id: String,
    /// 1..=1 000 000.
    pub amount: i64,
    /// Why.
    pub reason: String,
}

// ---- responses --------------------------------------------------------------------------

/// The balance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "user_id": "user_42", "current_energy": 85, "max_energy": 100, "percentage": 85, "available_energy": 85, "reserved_energy": 0, "can_perform_basic_action": true, "last_recharge": null, "total_consumed": 0, "total_purchased": 0, "subscription_type": "free", "unlimited": false, "unlimited_until": null, "stream_version": 1})))]
pub struct CheckResponse {
    pub success: bool,
    pub user_id: String,
    pub current_energy: i64,
    pub max_energy: i64,
    pub percentage: i64,
    pub available_energy: i64,
    pub reserved_energy: u64,
    pub can_perform_basic_action: bool,
    pub last_recharge: Option<String>,
    pub total_consumed: u64,
    pub total_purchased: u64,
    pub subscription_type: String,
    pub unlimited: bool,
    pub unlimited_until: Option<String>,
    pub stream_version: u64,
}

/// Whether an action can be performed ("cannot" is a 200).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "user_id": "user_42", "action": "mirror_match", "action_cost": 30, "energy_required": 30, "current_energy": 15, "available_energy": 15, "can_perform": false, "deficit": 15, "unlimited": false, "subscription_type": "free", "required_pack": "cafe_luna"})))]
pub struct CanPerformResponse {
    pub success: bool,
    pub user_id: String,
    pub action: String,
    pub action_cost: u32,
    pub energy_required: u32,
    pub current_energy: i64,
    pub available_energy: i64,
    pub can_perform: bool,
    pub deficit: u64,
    pub unlimited: bool,
    pub subscription_type: String,
    pub required_pack: Option<String>,
}

/// A consume (direct, or by committing a hold).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "transaction_id": "0190c7a2-0000-7000-8000-000000000001", "event_id": "0190c7a2-0000-7000-8000-000000000002", "action": "lettre_motivation", "energy_consumed": 15, "notional_cost": 15, "energy_remaining": 70, "unlimited": false, "subscription_type": "free", "timestamp": "2026-11-25T10:00:00.000Z", "message": "15 énergie consommée pour lettre_motivation"})))]
pub struct ConsumeResponse {
    pub success: bool,
    pub user_id: String,
    pub transaction_id: String,
    pub event_id: String,
    pub action: String,
    pub energy_consumed: u32,
    pub notional_cost: u32,
    pub energy_remaining: i64,
    pub unlimited: bool,
    pub subscription_type: String,
    pub timestamp: String,
    pub message: String,
}

/// A hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "reservation_id": "0190c7a2-0000-7000-8000-000000000003", "action": "mirror_match", "energy_reserved": 30, "available_energy": 55, "expires_at": "2026-11-25T10:05:00.000Z"})))]
pub struct ReserveResponse {
    pub success: bool,
    pub user_id: String,
    pub reservation_id: String,
    pub action: String,
    pub energy_reserved: u32,
    pub available_energy: i64,
    pub expires_at: String,
}

/// A released hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "reservation_id": "0190c7a2-0000-7000-8000-000000000003", "energy_released": 30, "available_energy": 85})))]
pub struct ReleaseResponse {
    pub success: bool,
    pub reservation_id: String,
    pub energy_released: u32,
    pub available_energy: i64,
}

/// A refund.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "transaction_id": "0190c7a2-0000-7000-8000-000000000004", "refunded_transaction_id": "0190c7a2-0000-7000-8000-000000000001", "energy_refunded": 15, "new_energy_balance": 85, "reason": "generation failed"})))]
pub struct RefundResponse {
    pub success: bool,
    pub transaction_id: String,
    pub refunded_transaction_id: String,
    pub energy_refunded: u32,
    pub new_energy_balance: i64,
    pub reason: String,
}

/// A grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "transaction_id": "0190c7a2-0000-7000-8000-000000000005", "energy_granted": 50, "new_energy_balance": 135})))]
pub struct GrantResponse {
    pub success: bool,
    pub transaction_id: String,
    pub energy_granted: u32,
    pub new_energy_balance: i64,
}

/// The refund policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "policy": {"window_days": 7, "ineligible_actions": ["conseil_rapide", "correction_ponctuelle"], "max_refunds_per_transaction": 1}})))]
pub struct RefundPolicyResponse {
    pub success: bool,
    pub policy: RefundPolicy,
}

/// Refund rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefundPolicy {
    pub window_days: u32,
    pub ineligible_actions: Vec<String>,
    pub max_refunds_per_transaction: u32,
}

/// One history row.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransactionRow {
    pub transaction_id: String,
    /// welcome | consume | refund | purchase | bonus | grant | revoke
    pub action_type: String,
    pub amount: u32,
    pub reason: String,
    pub app_source: Option<String>,
    pub feature_used: Option<String>,
    pub energy_before: i64,
    pub energy_after: i64,
    pub created_at: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub context: Option<Box<RawValue>>,
}

/// The history, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "user_id": "user_42", "transactions": [{"transaction_id": "0190c7a2-0000-7000-8000-000000000001", "action_type": "consume", "amount": 15, "reason": "lettre_motivation", "app_source": "letters", "feature_used": "lettre_motivation", "energy_before": 85, "energy_after": 70, "created_at": "2026-11-25T10:00:00.000Z", "context": {"app_source": "letters"}}], "total_count": 2, "next_cursor": "p1"})))]
pub struct TransactionsResponse {
    pub success: bool,
    pub user_id: String,
    pub transactions: Vec<TransactionRow>,
    pub total_count: u64,
    pub next_cursor: Option<String>,
}

/// Count and energy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageDto {
    pub count: u64,
    pub energy: u64,
}

/// One of the top actions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopAction {
    pub action: String,
    pub count: u64,
    pub energy: u64,
}

/// Energy consumed on one UTC day.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DailyUsage {
    pub date: String,
    pub consumed: u64,
}

/// Analytics figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnalyticsBody {
    pub current_energy: i64,
    pub total_consumed: u64,
    pub total_purchased: u64,
    pub total_refunded: u64,
    pub total_transactions: u64,
    pub top_actions: Vec<TopAction>,
    pub by_app: BTreeMap<String, UsageDto>,
    pub daily: Vec<DailyUsage>,
    pub unlimited_actions: u64,
    pub notional_energy_unlimited: u64,
    pub subscription_type: String,
    pub member_since: Option<String>,
}

/// Analytics of a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "user_id": "user_42", "analytics": {"current_energy": 70, "total_consumed": 15, "total_purchased": 0, "total_refunded": 0, "total_transactions": 2, "top_actions": [{"action": "lettre_motivation", "count": 1, "energy": 15}], "by_app": {"letters": {"count": 1, "energy": 15}}, "daily": [{"date": "2026-11-25", "consumed": 15}], "unlimited_actions": 0, "notional_energy_unlimited": 0, "subscription_type": "free", "member_since": "2026-11-25T09:00:00.000Z"}})))]
pub struct AnalyticsResponse {
    pub success: bool,
    pub user_id: String,
    pub analytics: AnalyticsBody,
}

/// One pack in the costs listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CostPack {
    pub name: String,
    pub price_cents: u64,
    pub price_euro: String,
    pub energy_amount: Option<u32>,
    pub bonus_first_purchase: u32,
    pub subscription: bool,
    pub interval: Option<String>,
}

/// The cost grid and packs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "grid_version": "2024-01", "energy_costs": {"conseil_rapide": 5, "lettre_motivation": 15}, "energy_packs": {"cafe_luna": {"name": "Café Luna", "price_cents": 299, "price_euro": "2.99", "energy_amount": 100, "bonus_first_purchase": 10, "subscription": false, "interval": null}}, "currency": "EUR"})))]
pub struct CostsResponse {
    pub success: bool,
    pub grid_version: String,
    pub energy_costs: BTreeMap<String, u32>,
    pub energy_packs: BTreeMap<String, CostPack>,
    pub currency: String,
}

/// Paging parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct PageParams {
    /// Page size (default 50, at most 200).
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub before: Option<String>,
}

/// Range of analytics.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct RangeParams {
    /// Inclusive start (RFC 3339 or YYYY-MM-DD).
    pub from: Option<String>,
    /// Exclusive end (RFC 3339 or YYYY-MM-DD).
    pub to: Option<String>,
}
