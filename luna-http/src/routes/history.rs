//! History: the transactions page and analytics of a user.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use luna_api::{
    AnalyticsBody, AnalyticsResponse, DailyUsage, ErrorBody, PageParams, RangeParams, TopAction,
    TransactionRow, TransactionsResponse, UsageDto, ValidationErrorBody,
};
use luna_ports::Scope;
use serde_json::value::RawValue;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Principal, UserPath};
use crate::render::parse_time;
use crate::routes::{cursor, page_limit, parse_cursor, query_params};
use crate::wire::{rfc3339, tx_reason};

/// The transaction history, newest first (an unknown user has none).
#[utoipa::path(get, path = "/luna/energy/transactions/{user_id}", tag = "energy",
    params(("user_id" = String, Path, description = "The user"), PageParams),
    responses(
        (status = 200, description = "A page of history", body = TransactionsResponse),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
        (status = 422, description = "Bad limit or cursor", body = ValidationErrorBody),
    ),
    security(("bearer" = ["energy:read"])))]
pub async fn transactions(
    State(state): State<AppState>,
    principal: Principal,
    UserPath(user_id): UserPath,
    query: Result<Query<PageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let user = principal.reader_of(Scope::EnergyRead, &user_id)?;
    let q = query_params(query)?;
    let limit = page_limit(q.limit.as_deref())?;
    let before = parse_cursor(q.before.as_deref())?;
    let page = state.hub.transactions(&user, before, limit).await?;
    Ok(axum::Json(TransactionsResponse {
        success: true,
        user_id: page.user.to_string(),
        transactions: page
            .lines
            .into_iter()
            .map(|l| TransactionRow {
                transaction_id: l.transaction_id.to_string(),
                action_type: l.kind.as_str().to_owned(),
                amount: l.amount.units(),
                reason: tx_reason(&l.reason),
                app_source: l.app_source,
                feature_used: l.feature_used,
                energy_before: l.energy_before.units(),
                energy_after: l.energy_after.units(),
                created_at: rfc3339(l.created_at),
                context: l
                    .context
                    .and_then(|c| RawValue::from_string(c.as_str().to_owned()).ok()),
            })
            .collect(),
        total_count: page.total_count,
        next_cursor: page.next_before.map(cursor),
    })
    .into_response())
}

/// A time query parameter (RFC 3339 or a date), or 422.
fn time_param(v: Option<&str>, name: &str) -> Result<Option<luna_core::Timestamp>, ApiError> {
    v.map(|s| {
        parse_time(s).ok_or_else(|| {
            ApiError::validation(
                &["query", name],
                "must be RFC 3339 or YYYY-MM-DD",
                "value_error.datetime",
            )
        })
    })
    .transpose()
}

/// Analytics over `[from, to)` (an unknown user has none).
#[utoipa::path(get, path = "/luna/energy/analytics/{user_id}", tag = "energy",
    params(("user_id" = String, Path, description = "The user"), RangeParams),
    responses(
        (status = 200, description = "Analytics", body = AnalyticsResponse),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
        (status = 422, description = "Bad range", body = ValidationErrorBody),
    ),
    security(("bearer" = ["energy:read"])))]
pub async fn analytics(
    State(state): State<AppState>,
    principal: Principal,
    UserPath(user_id): UserPath,
    query: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let user = principal.reader_of(Scope::EnergyRead, &user_id)?;
    let q = query_params(query)?;
    let from = time_param(q.from.as_deref(), "from")?;
    let to = time_param(q.to.as_deref(), "to")?;
    let o = state.hub.analytics(&user, from, to).await?;
    let a = o.analytics;
    Ok(axum::Json(AnalyticsResponse {
        success: true,
        user_id: o.user.to_string(),
        analytics: AnalyticsBody {
            current_energy: a.current_energy,
            total_consumed: a.total_consumed,
            total_purchased: a.total_purchased,
            total_refunded: a.total_refunded,
            total_transactions: a.total_transactions,
            top_actions: a
                .top_actions
                .into_iter()
                .map(|(action, u)| TopAction {
                    action,
                    count: u.count,
                    energy: u.energy,
                })
                .collect(),
            by_app: a
                .by_app
                .into_iter()
                .map(|(k, u)| {
                    (
                        k,
                        UsageDto {
                            count: u.count,
                            energy: u.energy,
                        },
                    )
                })
                .collect(),
            daily: a
                .daily
                .into_iter()
                .map(|(d, c)| DailyUsage {
                    date: d.to_string(),
                    consumed: c,
                })
                .collect(),
            unlimited_actions: a.unlimited_actions,
            notional_energy_unlimited: a.notional_energy_unlimited,
            subscription_type: a.subscription_type.as_str().to_owned(),
            member_since: a.member_since.map(rfc3339),
        },
    })
    .into_response())
}
