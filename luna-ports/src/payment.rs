//! The payment provider (Stripe implements it) and the billing records the hub keeps beside the
//! streams. Values here are neutral: an adapter maps the provider's objects and event types to
//! them, so no provider name reaches the use cases' decisions.

use async_trait::async_trait;
use luna_core::{Cents, Currency, PackId, PaymentRef, SubscriptionStatus, Timestamp, UserId};

use crate::error::StoreError;

/// A payment as the hub needs to see it (a Stripe PaymentIntent). Its `Debug` hides the
/// client secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PaymentView {
    /// Its id.
    pub id: PaymentRef,
    /// Provider status (`succeeded`, `requires_payment_method`…), shown in refusals.
    pub status: String,
    /// Whether it succeeded.
    pub succeeded: bool,
    /// Amount in minor units.
    pub amount: Cents,
    /// Currency.
    pub currency: Currency,
    /// `metadata.user_id`, as sent.
    pub user_id: Option<String>,
    /// `metadata.pack`, as sent.
    pub pack: Option<String>,
    /// Client secret (creation only; never logged).
    pub client_secret: Option<String>,
    /// The charge it made, if any.
    pub charge: Option<String>,
    /// When created at the provider.
    pub created: Timestamp,
}

impl std::fmt::Debug for PaymentView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentView")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("amount", &self.amount)
            .field("currency", &self.currency)
            .field("user_id", &self.user_id)
            .field("pack", &self.pack)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("charge", &self.charge)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// What the provider reversed of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeView {
    /// Its id.
    pub id: String,
    /// The payment it belongs to.
    pub payment: Option<PaymentRef>,
    /// Amount charged.
    pub amount: Cents,
    /// Amount refunded so far (cumulative).
    pub amount_refunded: Cents,
    /// Whether it is disputed.
    pub disputed: bool,
}

/// A subscription as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionView {
    /// Its id.
    pub id: String,
    /// Status.
    pub status: SubscriptionStatus,
    /// The provider's customer.
    pub customer: Option<String>,
    /// `metadata.user_id`, as sent.
    pub user_id: Option<String>,
    /// End of the current period.
    pub current_period_end: Option<Timestamp>,
    /// Whether it ends at the period end.
    pub cancel_at_period_end: bool,
    /// The prices it includes.
    pub prices: Vec<String>,
}

/// A hosted checkout page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutView {
    /// Its id.
    pub id: String,
    /// Where to send the user (while open).
    pub url: Option<String>,
    /// Whether it can still be paid.
    pub open: bool,
    /// Whether it completed.
    pub complete: bool,
    /// A subscription checkout (else a one-off payment).
    pub subscription_mode: bool,
    /// The payment (one-off mode, once paid).
    pub payment: Option<PaymentRef>,
    /// The subscription (subscription mode, once paid).
    pub subscription: Option<String>,
    /// The provider's customer.
    pub customer: Option<String>,
    /// The user it was opened for (`client_reference_id`, else `metadata.user_id`).
    pub user_id: Option<String>,
    /// When it expires.
    pub expires_at: Option<Timestamp>,
}

/// A price (for `luna billing check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceView {
    /// Its id.
    pub id: String,
    /// Whether it can be used.
    pub active: bool,
    /// Its currency.
    pub currency: Currency,
    /// Amount per period.
    pub unit_amount: Option<Cents>,
    /// `month`, `year`… (None: one-off).
    pub interval: Option<String>,
    /// Intervals per period.
    pub interval_count: u32,
}

/// A payment to create for a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    /// The user paying.
    pub user: UserId,
    /// The pack bought.
    pub pack: PackId,
    /// Its name (a checkout page shows it).
    pub pack_name: String,
    /// The catalogue price.
    pub amount: Cents,
    /// Its currency.
    pub currency: Currency,
}

/// A hosted checkout to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewCheckout {
    /// Subscribe to a recurring price.
    Subscription {
        /// The subscriber.
        user: UserId,
        /// The provider price id.
        price: String,
        /// The provider customer, when known.
        customer: Option<String>,
    },
    /// Pay once for a pack (the payment carries the user and the pack).
    Payment(NewPayment),
}

/// Where a checkout returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Return {
    /// After paying.
    pub success_url: String,
    /// After giving up.
    pub cancel_url: String,
}

/// A page of payments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentPage {
    /// The payments, newest first.
    pub payments: Vec<PaymentView>,
    /// Whether older ones exist (pass the last id as `after`).
    pub has_more: bool,
}

/// A verified notification from the provider, mapped to what the hub acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEvent {
    /// The provider's event id (deduplication).
    pub id: String,
    /// When the provider created it (orders subscription updates; 1 s resolution).
    pub created: Timestamp,
    /// The provider's event type (for logs).
    pub kind: String,
    /// What happened.
    pub what: ProviderChange,
}

/// What a provider event says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderChange {
    /// A payment succeeded.
    PaymentSucceeded(PaymentView),
    /// A charge was refunded (cumulative amount).
    Refunded(ChargeView),
    /// A charge was disputed.
    Disputed {
        /// The disputed charge.
        charge: String,
        /// Its payment, when the event names it.
        payment: Option<PaymentRef>,
    },
    /// A checkout completed.
    CheckoutCompleted(CheckoutView),
    /// A subscription changed (created, updated or deleted).
    Subscription(SubscriptionView),
    /// An invoice of a subscription was paid.
    InvoicePaid {
        /// The subscription.
        subscription: String,
        /// The customer.
        customer: Option<String>,
        /// The end of the paid period (the first line's).
        period_end: Option<Timestamp>,
    },
    /// Anything else (acknowledged, ignored).
    Other,
}

/// A gateway failure.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The provider could not be reached, timed out or answered 5xx (→ 502).
    #[error("payment provider unreachable: {0}")]
    Unreachable(String),
    /// The provider refused the request (→ 502, the cause logged).
    #[error("payment provider refused the request ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The provider's error type and code.
        code: String,
        /// Its message.
        message: String,
    },
}

/// Why a notification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Missing or wrong signature, or a timestamp outside the tolerance.
    #[error("invalid signature")]
    InvalidSignature,
    /// Signed, but not an event the adapter can read.
    #[error("unreadable event: {0}")]
    Unreadable(String),
}

/// The payment provider. Every creating call carries an idempotency key, reused on retries.
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// Creates a payment for a pack (metadata: user and pack).
    async fn create_payment(
        &self,
        p: &NewPayment,
        idempotency_key: &str,
    ) -> Result<PaymentView, GatewayError>;

    /// A payment (`None` if unknown).
    async fn payment(&self, id: &PaymentRef) -> Result<Option<PaymentView>, GatewayError>;

    /// A charge (`None` if unknown).
    async fn charge(&self, id: &str) -> Result<Option<ChargeView>, GatewayError>;

    /// Payments created since `since`, newest first, a page after `after`.
    async fn payments_since(
        &self,
        since: Timestamp,
        after: Option<String>,
    ) -> Result<PaymentPage, GatewayError>;

    /// Creates a customer for a user (the key derives from the user: two instances never
    /// create two).
    async fn create_customer(
        &self,
        user: &UserId,
        idempotency_key: &str,
    ) -> Result<String, GatewayError>;

    /// Opens a hosted checkout.
    async fn create_checkout(
        &self,
        checkout: &NewCheckout,
        back: &Return,
        idempotency_key: &str,
    ) -> Result<CheckoutView, GatewayError>;

    /// A checkout (`None` if unknown).
    async fn checkout(&self, id: &str) -> Result<Option<CheckoutView>, GatewayError>;

    /// A subscription (`None` if unknown).
    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionView>, GatewayError>;

    /// Cancels a subscription now or at the end of its period.
    async fn cancel_subscription(
        &self,
        id: &str,
        at_period_end: bool,
        idempotency_key: &str,
    ) -> Result<SubscriptionView, GatewayError>;

    /// A price (`None` if unknown).
    async fn price(&self, id: &str) -> Result<Option<PriceView>, GatewayError>;
}

/// Verifies the provider's notifications (configured apart from the gateway: webhooks depend
/// on the signing secret only).
pub trait EventVerifier: Send + Sync {
    /// Verifies a notification's signature over its raw bytes at `now`, and reads it.
    fn verify_event(
        &self,
        signature: &str,
        body: &[u8],
        now: Timestamp,
    ) -> Result<ProviderEvent, WebhookError>;
}

/// A succeeded payment the hub could not credit: somebody paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmatchedPayment {
    /// The payment.
    pub payment: PaymentRef,
    /// Why it was not credited.
    pub reason: String,
    /// Its amount and currency.
    pub amount: Cents,
    /// Currency.
    pub currency: Currency,
    /// `metadata.user_id` as sent.
    pub user_id: Option<String>,
    /// `metadata.pack` as sent.
    pub pack: Option<String>,
    /// When the hub saw it.
    pub seen_at: Timestamp,
}

/// An open checkout kept per user, so a second request reuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCheckout {
    /// The checkout id.
    pub id: String,
    /// Its page.
    pub url: String,
    /// When it expires.
    pub expires_at: Timestamp,
}

/// Billing records beside the streams (ADR 0005): customer links (by user and by customer),
/// open subscription checkouts, processed provider events (written with their effect, see
/// `AppendBatch::processed`), and unmatched payments.
#[async_trait]
pub trait BillingStore: Send + Sync {
    /// The provider customer of a user.
    async fn customer_of(&self, user: &UserId) -> Result<Option<String>, StoreError>;

    /// The user of a provider customer.
    async fn user_of_customer(&self, customer: &str) -> Result<Option<UserId>, StoreError>;

    /// Links a customer and a user (both directions; a repeated link is a no-op).
    async fn link_customer(&self, user: &UserId, customer: &str) -> Result<(), StoreError>;

    /// Whether a provider event was applied to a stream.
    async fn is_processed(&self, user: &UserId, event_id: &str) -> Result<bool, StoreError>;

    /// The user's open subscription checkout, if any.
    async fn open_checkout(&self, user: &UserId) -> Result<Option<OpenCheckout>, StoreError>;

    /// Keeps the user's open subscription checkout if the one kept is still `previous` (none,
    /// or that id): a compare-and-set, so of two instances opening a checkout at once one is
    /// kept and both hand out that one. Returns whether `c` was kept.
    async fn keep_checkout(
        &self,
        user: &UserId,
        previous: Option<&str>,
        c: &OpenCheckout,
    ) -> Result<bool, StoreError>;

    /// Records an unmatched payment (a repeat is a no-op).
    async fn record_unmatched(&self, u: &UnmatchedPayment) -> Result<(), StoreError>;

    /// Unmatched payments seen since `since`.
    async fn unmatched_since(&self, since: Timestamp) -> Result<Vec<UnmatchedPayment>, StoreError>;
}
