//! The payment gateway the billing use cases need (Stripe implements it).

use async_trait::async_trait;
use luna_core::{Cents, Currency, PackId, PaymentRef, Timestamp, UserId};

/// A PaymentIntent as the hub needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIntentView {
    /// Its id.
    pub id: PaymentRef,
    /// Provider status (`succeeded`, `requires_payment_method`…).
    pub status: String,
    /// Amount in minor units.
    pub amount: Cents,
    /// Currency.
    pub currency: Currency,
    /// `metadata.user_id`.
    pub user_id: Option<String>,
    /// `metadata.pack`.
    pub pack: Option<String>,
    /// Client secret (only on creation).
    pub client_secret: Option<String>,
}

/// A PaymentIntent to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateIntent {
    /// The user paying.
    pub user: UserId,
    /// The pack bought.
    pub pack: PackId,
    /// The catalogue price.
    pub amount: Cents,
    /// Its currency.
    pub currency: Currency,
}

/// A subscription Checkout Session to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// The subscriber.
    pub user: UserId,
    /// The provider price id.
    pub price: String,
    /// Redirect on success.
    pub success_url: String,
    /// Redirect on cancel.
    pub cancel_url: String,
    /// Known provider customer id, if any.
    pub customer: Option<String>,
}

/// A created Checkout Session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    /// Its id.
    pub id: String,
    /// Where to send the user.
    pub url: String,
}

/// A gateway failure.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The provider could not be reached or answered 5xx (→ 502).
    #[error("payment provider unreachable: {0}")]
    Unreachable(String),
    /// The provider refused the request.
    #[error("payment provider refused the request: {0}")]
    Refused(String),
}

/// The payment provider.
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// Creates a PaymentIntent; `idempotency_key` is sent with the request.
    async fn create_intent(
        &self,
        req: &CreateIntent,
        idempotency_key: &str,
    ) -> Result<PaymentIntentView, GatewayError>;

    /// Retrieves a PaymentIntent (`None` if unknown).
    async fn retrieve_intent(
        &self,
        id: &PaymentRef,
    ) -> Result<Option<PaymentIntentView>, GatewayError>;

    /// Creates a subscription Checkout Session.
    async fn create_checkout(
        &self,
        req: &CheckoutRequest,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, GatewayError>;

    /// Cancels a subscription now or at period end; returns its status and period end.
    async fn cancel_subscription(
        &self,
        subscription: &str,
        at_period_end: bool,
        idempotency_key: &str,
    ) -> Result<(String, Option<Timestamp>), GatewayError>;
}
