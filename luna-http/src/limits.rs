//! Every limit of the HTTP transport, named in one place. Domain limits (sizes of client JSON,
//! grant and refund amounts, hold TTLs, reasons) live in `luna_core::input`, the key cache's in
//! `luna_app`.

use std::time::Duration;

/// Largest request body (spec §3: 64 KiB → 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest idempotency key.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// Request timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight requests may finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections open at once (the hub sheds overload with 503 later, per request; this
/// only bounds file descriptors and tasks).
pub const MAX_CONNECTIONS: usize = 4096;
/// Longest client `X-Request-ID` kept (else a fresh one is generated).
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Requests served at once by default (beyond it they wait, then are shed).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// How long a request waits for a place by default before it is shed with 503 +
/// `Retry-After`.
pub const DEFAULT_ADMISSION_WAIT: Duration = Duration::from_secs(2);

/// Whether a path is exempt from the admission limit: probes must answer under load, and live
/// streams last (each is bounded on its own).
pub fn admission_exempt(path: &str) -> bool {
    matches!(
        path,
        "/health" | "/ready" | "/metrics" | "/luna/energy/live" | "/app/live"
    ) || path.starts_with("/app/assets/")
}

/// Largest webhook body (Stripe's events can be large; spec §6: 1 MiB on that route only).
pub const MAX_WEBHOOK_BODY_BYTES: usize = 1024 * 1024;
/// The route that takes webhook bodies.
pub const WEBHOOK_PATH: &str = "/billing/webhook";

/// The largest body a route accepts.
pub fn body_limit(path: &str) -> usize {
    if path == WEBHOOK_PATH {
        MAX_WEBHOOK_BODY_BYTES
    } else {
        MAX_BODY_BYTES
    }
}
