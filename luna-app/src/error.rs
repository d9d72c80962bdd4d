//! Use-case errors: domain refusals and storage failures are never mixed.

use luna_core::DomainError;
use luna_ports::StoreError;

/// Why a use case did not produce its outcome.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A domain rule refused the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The action is not in the cost grid.
    #[error(transparent)]
    UnknownAction(luna_core::UnknownAction),
    /// A billing refusal or a provider failure.
    #[error(transparent)]
    Billing(#[from] BillingError),
    /// A notification whose signature or content was refused.
    #[error(transparent)]
    Webhook(#[from] luna_ports::WebhookError),
    /// An account or token refusal.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// The idempotency key was used before with another request.
    #[error("this idempotency key was already used with another request")]
    IdempotencyKeyReused,
    /// The stream stayed contended past the retry budget.
    #[error("the stream is too contended, try again")]
    Contended,
    /// Storage failed (opaque; the cause is for the log).
    #[error(transparent)]
    Infrastructure(StoreError),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Infrastructure(e)
    }
}

impl AppError {
    /// Whether the database could not be reached (→ 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AppError::Infrastructure(StoreError::Unavailable(_)))
    }
}

/// A billing refusal that is not a domain rule.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// No provider key is configured (→ 503).
    #[error("Billing is not configured")]
    NotConfigured,
    /// No webhook signing secret is configured (→ 503).
    #[error("Webhooks are not configured")]
    WebhookNotConfigured,
    /// The provider failed (→ 502).
    #[error(transparent)]
    Gateway(#[from] luna_ports::GatewayError),
    /// No such payment at the provider (→ 404).
    #[error("Payment not found")]
    PaymentNotFound,
    /// The payment belongs to another user (→ 403).
    #[error("forbidden")]
    OtherUser,
    /// The payment has not succeeded (→ 409 with its status).
    #[error("Payment not completed. Status: {0}")]
    NotCompleted(String),
    /// The payment's pack is not the one named (→ 422 `pack_mismatch`).
    #[error("The payment is for another pack")]
    PackMismatch,
    /// No subscription to cancel (→ 404).
    #[error("No active subscription")]
    NoSubscription,
    /// A return URL outside the hub's public URL and CORS origins (→ 422).
    #[error("{0} must be under the hub's public URL or an allowed origin")]
    ReturnUrl(&'static str),
    /// Not a plan the hub sells (→ 422).
    #[error("Unknown plan")]
    UnknownPlan,
}
