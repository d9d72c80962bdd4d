//! Every limit of the HTTP layer, named in one place.

use std::time::Duration;

/// Largest request body (spec §3: 64 KiB → 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest `context` object, serialised.
pub const MAX_CONTEXT_BYTES: usize = 8 * 1024;
/// Largest `event_data` / `metadata` object, serialised.
pub const MAX_EVENT_DATA_BYTES: usize = 16 * 1024;
/// Largest idempotency key.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// Largest grant.
pub const MAX_GRANT: u32 = 1_000_000;
/// Largest `reason`.
pub const MAX_REASON_LEN: usize = 500;
/// Request timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight requests may finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// How long a found service key is trusted without asking the database again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);
/// Most service keys cached at once.
pub const KEY_CACHE_MAX: usize = 10_000;
