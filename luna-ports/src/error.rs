//! The one storage error every port returns: `Conflict` and `Busy` are retryable, `Unavailable`
//! is a 503, the rest is opaque.

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream moved past the expected version, or an idempotency key was taken meanwhile:
    /// reload and decide again.
    #[error("concurrent modification of the stream")]
    Conflict,
    /// The database is busy (locked): retry shortly.
    #[error("the database is busy")]
    Busy,
    /// The database cannot be reached.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Anything else (opaque; details for the log).
    #[error("storage failure: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Whether retrying the whole decision may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict | StoreError::Busy)
    }

    /// Wraps any error as an opaque backend failure.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Backend(Box::new(e))
    }
}
