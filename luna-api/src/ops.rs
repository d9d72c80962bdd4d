//! Operations: health and readiness.

use serde::{Deserialize, Serialize};

/// Liveness.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"status": "healthy", "service": "luna-hub", "version": "0.1.0"})))]
pub struct HealthResponse {
    pub status: String,
    pub service: String,
    pub version: String,
}

/// Readiness checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadyChecks {
    pub database: String,
}

/// Readiness.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"ready": true, "checks": {"database": "ok"}})))]
pub struct ReadyResponse {
    pub ready: bool,
    pub checks: ReadyChecks,
}
