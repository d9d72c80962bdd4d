//! Operations: health, readiness, metrics.

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Principal;
use crate::routes::ErrorBody;

/// Liveness.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "healthy", "service": "luna-hub", "version": "0.1.0"}))]
pub struct HealthResponse {
    status: &'static str,
    service: &'static str,
    version: &'static str,
}

/// Readiness checks.
#[derive(Serialize, ToSchema)]
pub struct ReadyChecks {
    database: &'static str,
}

/// Readiness.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"ready": true, "checks": {"database": "ok"}}))]
pub struct ReadyResponse {
    ready: bool,
    checks: ReadyChecks,
}

/// The process is up (no dependency checked).
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Up", body = HealthResponse)))]
pub async fn health() -> axum::Json<HealthResponse> {
    axum::Json(HealthResponse {
        status: "healthy",
        service: "luna-hub",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// The database answers (503 otherwise).
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, description = "Ready", body = ReadyResponse),
              (status = 503, description = "Database unreachable", body = ReadyResponse)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    match state.hub.store().ping().await {
        Ok(()) => axum::Json(ReadyResponse {
            ready: true,
            checks: ReadyChecks { database: "ok" },
        })
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(ReadyResponse {
                    ready: false,
                    checks: ReadyChecks {
                        database: "unreachable",
                    },
                }),
            )
                .into_response()
        }
    }
}

/// Prometheus metrics (public on loopback binds, `admin` otherwise).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
              (status = 401, description = "Credentials needed off loopback", body = ErrorBody),
              (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !(state.config.loopback_bind && peer.ip().is_loopback()) {
        let mut parts = axum::http::Request::builder()
            .body(())
            .map_err(|_| ApiError::forbidden())?
            .into_parts()
            .0;
        parts.headers = headers;
        let principal =
            <Principal as axum::extract::FromRequestParts<AppState>>::from_request_parts(
                &mut parts, &state,
            )
            .await?;
        principal.require(luna_ports::Scope::Admin)?;
    }
    metrics::counter!("luna_store_conflicts_total").absolute(state.hub.stats().conflicts());
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response())
}
