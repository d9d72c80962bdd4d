//! Turning outcomes into responses, identically for fresh answers and idempotency records.

use axum::http::StatusCode;
use axum::response::Response;
use luna_app::{AppError, Reply};
use luna_core::Timestamp;
use luna_ports::StoredResponse;
use serde::Serialize;

use crate::error::ApiError;

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: Timestamp) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(t.millis())
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Parses an RFC 3339 time or a `YYYY-MM-DD` date (UTC midnight).
pub fn parse_time(s: &str) -> Option<Timestamp> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(Timestamp::from_millis(d.timestamp_millis()));
    }
    let date = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(Timestamp::from_millis(
        date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis(),
    ))
}

/// The status and body of a result: `ok` for success, the error table otherwise.
pub fn render<T, D: Serialize>(
    result: &Result<T, AppError>,
    ok: StatusCode,
    dto: impl Fn(&T) -> D,
) -> (StatusCode, Vec<u8>) {
    match result {
        Ok(t) => (ok, serde_json::to_vec(&dto(t)).unwrap_or_default()),
        Err(e) => {
            let api = ApiError::from(e);
            (api.status, api.body())
        }
    }
}

/// What an idempotency key keeps: every final answer except 5xx.
pub fn keep(rendered: (StatusCode, Vec<u8>)) -> Option<StoredResponse> {
    let (status, body) = rendered;
    (!status.is_server_error()).then(|| StoredResponse {
        status: status.as_u16(),
        body,
    })
}

/// The response of a use case's reply.
pub fn respond<T>(
    reply: Result<Reply<T>, AppError>,
    render: impl Fn(&Result<T, AppError>) -> (StatusCode, Vec<u8>),
) -> Response {
    match reply {
        Ok(Reply::Replayed(stored)) => ApiError::json_response(
            StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            stored.body,
        ),
        Ok(Reply::Fresh(t)) => {
            let (status, body) = render(&Ok(t));
            ApiError::json_response(status, body)
        }
        Err(e) => {
            let (status, body) = render(&Err(e));
            ApiError::json_response(status, body)
        }
    }
}
