//! `/billing/*` and `/luna/energy/purchase`: packs, payments, the Unlimited subscription,
//! purchase history (spec §3.6).

use serde::{Deserialize, Serialize};

// ---- requests ---------------------------------------------------------------------------

/// Create a PaymentIntent for a one-off pack.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"user_id": "user_42", "pack": "cafe_luna", "currency": "eur"})))]
pub struct CreateIntentBody {
    /// The buyer (required for service keys; users buy for themselves).
    pub user_id: Option<String>,
    /// A one-off pack of the catalogue.
    pub pack: String,
    /// The catalogue's currency (any case); another one → 422.
    pub currency: Option<String>,
}

/// Credit a succeeded PaymentIntent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"user_id": "user_42", "intent_id": "pi_3Q0abc"})))]
pub struct ConfirmPaymentBody {
    /// The buyer.
    pub user_id: Option<String>,
    /// The PaymentIntent.
    pub intent_id: String,
}

/// Open a hosted checkout for Luna Unlimited.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"user_id": "user_42", "plan": "luna_unlimited"})))]
pub struct CreateSubscriptionBody {
    /// The subscriber.
    pub user_id: Option<String>,
    /// `luna_unlimited`.
    pub plan: String,
    /// After paying (under the hub's public URL or a CORS origin).
    pub success_url: Option<String>,
    /// After giving up (same rule).
    pub cancel_url: Option<String>,
}

/// Cancel the Unlimited subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"user_id": "user_42", "at_period_end": true})))]
pub struct CancelSubscriptionBody {
    /// The subscriber.
    pub user_id: Option<String>,
    /// true (default): at the end of the paid period; false: now.
    pub at_period_end: Option<bool>,
}

/// Credit a pack paid with a PaymentIntent (the old clients' route).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"user_id": "user_42", "pack_type": "cafe_luna", "stripe_payment_intent_id": "pi_3Q0abc"})))]
pub struct PurchaseBody {
    /// The buyer.
    pub user_id: Option<String>,
    /// The pack paid for.
    pub pack_type: String,
    /// The PaymentIntent.
    pub stripe_payment_intent_id: String,
}

// ---- responses --------------------------------------------------------------------------

/// One pack on sale.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackDto {
    pub code: String,
    pub name: String,
    pub description: String,
    pub price_cents: u64,
    pub price_euro: String,
    pub currency: String,
    pub energy_units: Option<u32>,
    pub bonus_first_purchase: u32,
    pub savings_vs_cafe: Option<u32>,
    pub popular: bool,
    pub subscription: bool,
    pub interval: Option<String>,
}

/// The packs on sale.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "packs": [{"code": "cafe_luna", "name": "Café Luna", "description": "100 unités d'énergie", "price_cents": 299, "price_euro": "2.99", "currency": "eur", "energy_units": 100, "bonus_first_purchase": 10, "savings_vs_cafe": null, "popular": false, "subscription": false, "interval": null}], "currency": "eur", "unlimited_available": true})))]
pub struct PacksResponse {
    pub success: bool,
    pub packs: Vec<PackDto>,
    pub currency: String,
    pub unlimited_available: bool,
}

/// A PaymentIntent created.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "intent_id": "pi_3Q0abc", "client_secret": "pi_3Q0abc_secret_xyz", "amount": 299, "currency": "eur", "pack": "cafe_luna", "energy_units": 100})))]
pub struct CreateIntentResponse {
    pub success: bool,
    pub intent_id: String,
    pub client_secret: Option<String>,
    pub amount: u64,
    pub currency: String,
    pub pack: String,
    pub energy_units: u32,
}

/// A payment credited (now or before).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "status": "credited", "energy_added": 110, "bonus_applied": true, "bonus_units": 10, "new_energy_balance": 195, "event_id": "0b6c…", "transaction_id": "5f2e…"})))]
pub struct ConfirmPaymentResponse {
    pub success: bool,
    /// `credited` or `already_credited`.
    pub status: String,
    /// Pack and bonus.
    pub energy_added: u32,
    pub bonus_applied: bool,
    pub bonus_units: u32,
    pub new_energy_balance: i64,
    pub event_id: String,
    pub transaction_id: String,
}

/// A pack credited through `/luna/energy/purchase`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "status": "credited", "purchase_id": "5f2e…", "pack_type": "cafe_luna", "energy_added": 100, "bonus_energy": 10, "current_energy": 195, "amount_paid_cents": 299, "currency": "eur"})))]
pub struct PurchaseResponse {
    pub success: bool,
    pub status: String,
    pub purchase_id: String,
    pub pack_type: String,
    /// The paid part.
    pub energy_added: u32,
    pub bonus_energy: u32,
    pub current_energy: i64,
    pub amount_paid_cents: u64,
    pub currency: String,
}

/// A hosted checkout to send the user to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "checkout_session_id": "cs_test_a1", "url": "https://checkout.stripe.com/c/pay/cs_test_a1"})))]
pub struct CreateSubscriptionResponse {
    pub success: bool,
    pub checkout_session_id: String,
    pub url: Option<String>,
}

/// A subscription after cancellation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "status": "active", "current_period_end": "2026-12-26T10:00:00Z"})))]
pub struct CancelSubscriptionResponse {
    pub success: bool,
    pub status: String,
    pub current_period_end: Option<String>,
}

/// The webhook's acknowledgement.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"received": true})))]
pub struct WebhookResponse {
    pub received: bool,
}

/// One purchase.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurchaseDto {
    pub purchase_id: String,
    pub event_id: String,
    pub date: String,
    pub pack: String,
    /// Pack and bonus.
    pub energy_added: u32,
    pub amount_cents: u64,
    pub currency: String,
    pub bonus_applied: bool,
    pub bonus_units: u32,
    pub payment_intent_id: String,
    /// `credited` or `revoked`.
    pub status: String,
}

/// The subscription's state in the history.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubscriptionDto {
    pub status: String,
    pub current_period_end: Option<String>,
    pub cancel_at_period_end: bool,
}

/// A user's purchases, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "user_id": "user_42", "total_purchases": 1, "total_spent_cents": 299, "total_energy_purchased": 110, "purchases": [{"purchase_id": "5f2e…", "event_id": "0b6c…", "date": "2026-11-26T10:00:00Z", "pack": "cafe_luna", "energy_added": 110, "amount_cents": 299, "currency": "eur", "bonus_applied": true, "bonus_units": 10, "payment_intent_id": "pi_3Q0abc", "status": "credited"}], "next_cursor": null, "subscription": null})))]
pub struct BillingHistoryResponse {
    pub success: bool,
    pub user_id: String,
    pub total_purchases: u64,
    pub total_spent_cents: u64,
    pub total_energy_purchased: u64,
    pub purchases: Vec<PurchaseDto>,
    pub next_cursor: Option<String>,
    pub subscription: Option<SubscriptionDto>,
}
