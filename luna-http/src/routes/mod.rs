//! The routes, grouped by area, and what they share.

pub mod energy;
pub mod events;
pub mod ops;

use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;

/// `{"detail": "<message>"}` or `{"detail": {"error": "<code>", "message": "…"}}`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"detail": {"error": "already_refunded", "message": "This transaction was already refunded"}}))]
pub struct ErrorBody {
    /// A message, or `{error, message}` for a refusal by a named rule.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// The 402 body the satellites parse.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"detail": {"error": "insufficient_energy", "message": "Énergie insuffisante : 30 requis, 15 disponible", "action": "recharge_energy", "required_pack": "cafe_luna", "energy_required": 30, "current_energy": 15, "available_energy": 15, "deficit": 15}}))]
pub struct InsufficientEnergyBody {
    /// `{error, message, action, required_pack, energy_required, current_energy, deficit}`.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// 422: `{"detail":[{"loc":[…],"msg":"…","type":"…"}]}`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"detail": [{"loc": ["body", "action_name"], "msg": "field required", "type": "value_error.missing"}]}))]
pub struct ValidationErrorBody {
    /// The problems.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// `limit`: default 50, clamped to 200, at least 1.
pub fn page_limit(raw: Option<&str>) -> Result<usize, ApiError> {
    match raw {
        None => Ok(luna_app::DEFAULT_PAGE),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(luna_app::MAX_PAGE)),
            _ => Err(ApiError::validation(
                &["query", "limit"],
                "must be a positive integer",
                "value_error.number",
            )),
        },
    }
}

/// `before`: an opaque cursor (`p<position>`) from a previous page. Positions are stored as
/// signed 64-bit integers, so a larger one is no cursor of ours.
pub fn parse_cursor(raw: Option<&str>) -> Result<Option<u64>, ApiError> {
    let Some(s) = raw else { return Ok(None) };
    s.strip_prefix('p')
        .filter(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
        .and_then(|d| d.parse::<i64>().ok())
        .and_then(|p| u64::try_from(p).ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::validation(
                &["query", "before"],
                "not a cursor from this API",
                "value_error.cursor",
            )
        })
}

/// Query parameters, or 422 in the list shape.
pub fn query_params<T>(
    query: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    query
        .map(|axum::extract::Query(q)| q)
        .map_err(|e| ApiError::validation(&["query"], &e.body_text(), "value_error.query"))
}
