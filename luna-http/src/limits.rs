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
/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections open at once (the hub sheds overload with 503 later, per request; this
/// only bounds file descriptors and tasks).
pub const MAX_CONNECTIONS: usize = 4096;
/// Longest client `X-Request-ID` kept (else a fresh one is generated).
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The largest body a route accepts.
pub fn body_limit(_path: &str) -> usize {
    MAX_BODY_BYTES
}
