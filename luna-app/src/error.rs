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
