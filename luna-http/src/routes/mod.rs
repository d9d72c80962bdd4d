//! The routes, grouped by area — `balance` (check, can-perform, consume, costs), `holds`
//! (reserve, commit, release), `refunds` (refund, refund policy), `admin` (grants), `history`
//! (transactions, analytics), `events` (app events in and out), `narrative`, `ops` — and what
//! they share; `auth` (accounts, tokens, sessions) and `billing` (packs, payments, Unlimited,
//! the webhook, purchase history) on the same pattern. A command route is `Call::begin` +
//! `Call::run` (see `command.rs`); a new area is a new module.

pub mod admin;
pub mod auth;
pub mod balance;
pub mod billing;
pub mod events;
pub mod history;
pub mod holds;
pub mod live;
pub mod narrative;
pub mod ops;
pub mod refunds;

use crate::error::ApiError;

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

/// The cursor of a page's last item.
pub fn cursor(position: u64) -> String {
    format!("p{position}")
}

/// Query parameters, or 422 in the list shape.
pub fn query_params<T>(
    query: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    query
        .map(|axum::extract::Query(q)| q)
        .map_err(|e| ApiError::validation(&["query"], &e.body_text(), "value_error.query"))
}
