//! Operations: health, readiness, metrics.

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use luna_api::{ErrorBody, HealthResponse, ReadyChecks, ReadyResponse};

use crate::AppState;
use crate::error::{ApiError, ErrorCause};
use crate::extract::Principal;

/// The process is up (no dependency checked).
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Up", body = HealthResponse)))]
pub async fn health() -> axum::Json<HealthResponse> {
    axum::Json(HealthResponse {
        status: "healthy".to_owned(),
        service: "luna-hub".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// The database answers (503 otherwise).
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, description = "Ready", body = ReadyResponse),
              (status = 503, description = "Database unreachable", body = ReadyResponse)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    match state.hub.ready().await {
        Ok(()) => axum::Json(ReadyResponse {
            ready: true,
            checks: ReadyChecks {
                database: "ok".to_owned(),
            },
        })
        .into_response(),
        Err(e) => {
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                axum::Json(ReadyResponse {
                    ready: false,
                    checks: ReadyChecks {
                        database: "unreachable".to_owned(),
                    },
                }),
            )
                .into_response();
            r.extensions_mut().insert(ErrorCause(e.to_string()));
            r
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
