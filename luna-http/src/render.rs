//! Turning outcomes into responses, identically for fresh answers and idempotency records.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use luna_app::{AppError, Reply};
use luna_core::Timestamp;
use luna_ports::StoredResponse;
use serde::Serialize;

use crate::error::{ApiError, ErrorCause};

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

/// A rendered answer: status and body, and for a 5xx the cause for the log.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: Vec<u8>,
    /// What went wrong inside (5xx only; logged, never sent).
    pub cause: Option<String>,
}

impl Rendered {
    /// The HTTP response.
    pub fn into_response(self) -> Response {
        let mut r = ApiError::json_response(self.status, self.body);
        if let Some(cause) = self.cause {
            r.extensions_mut().insert(ErrorCause(cause));
        }
        r
    }
}

/// The status and body of a result: `ok` for success, the error table otherwise.
pub fn render<T, D: Serialize>(
    result: &Result<T, AppError>,
    ok: StatusCode,
    dto: impl Fn(&T) -> D,
) -> Rendered {
    match result {
        Ok(t) => match serde_json::to_vec(&dto(t)) {
            Ok(body) => Rendered {
                status: ok,
                body,
                cause: None,
            },
            Err(e) => error(
                &ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
                    .caused_by(e),
            ),
        },
        Err(e) => error(&ApiError::from(e)),
    }
}

fn error(api: &ApiError) -> Rendered {
    Rendered {
        status: api.status,
        body: api.body(),
        cause: api.cause.clone(),
    }
}

/// What an idempotency key keeps: every final answer except 5xx.
pub fn keep(rendered: Rendered) -> Option<StoredResponse> {
    (!rendered.status.is_server_error()).then(|| StoredResponse {
        status: rendered.status.as_u16(),
        body: rendered.body,
    })
}

/// A kept answer, as first sent.
pub fn replayed(stored: StoredResponse) -> Response {
    match StatusCode::from_u16(stored.status) {
        Ok(status) => ApiError::json_response(status, stored.body),
        Err(_) => ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            .caused_by(format!("a kept answer has status {}", stored.status))
            .into_response(),
    }
}

/// The response of a use case's reply.
pub fn respond<T>(
    reply: Result<Reply<T>, AppError>,
    render: impl Fn(&Result<T, AppError>) -> Rendered,
) -> Response {
    match reply {
        Ok(Reply::Replayed(stored)) => replayed(stored),
        Ok(Reply::Fresh(t)) => render(&Ok(t)).into_response(),
        Ok(Reply::Duplicate) => {
            ApiError::message(StatusCode::CONFLICT, "Already processed").into_response()
        }
        Err(e) => render(&Err(e)).into_response(),
    }
}
