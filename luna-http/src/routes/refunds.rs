//! Refunds of consumes, and the public refund policy.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use luna_api::{
    ErrorBody, RefundBody, RefundPolicy, RefundPolicyResponse, RefundResponse, ValidationErrorBody,
};
use luna_app::{RefundOutcome, RefundRequest};
use luna_core::{DomainError, Id, input};
use luna_ports::Scope;

use crate::AppState;
use crate::command::Call;
use crate::error::ApiError;
use crate::extract::{Body, Principal};

/// Refund a consume (once, within the window).
#[utoipa::path(post, path = "/luna/energy/refund", tag = "energy", request_body = RefundBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Also accepted as X-Idempotency-Key")),
    responses(
        (status = 200, description = "Refunded", body = RefundResponse),
        (status = 404, description = "Unknown transaction", body = ErrorBody),
        (status = 409, description = "already_refunded, nothing_to_refund, refund_window_expired, refund_not_eligible", body = ErrorBody),
        (status = 422, description = "Amount out of range", body = ValidationErrorBody),
    ),
    security(("bearer" = ["energy:write"])))]
pub async fn refund(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = Call::begin(principal, Scope::EnergyWrite, &headers, "refund", body).await?;
    let hub = state.hub.clone();
    Ok(call
        .run(
            &state.hub,
            StatusCode::OK,
            |o: &RefundOutcome| RefundResponse {
                success: true,
                transaction_id: o.transaction_id.to_string(),
                refunded_transaction_id: o.refunded_transaction_id.to_string(),
                energy_refunded: o.energy_refunded.units(),
                new_energy_balance: o.new_energy_balance,
                reason: o.reason.clone(),
            },
            |b: RefundBody, p| {
                let user = p.user_for(b.user_id.as_deref())?;
                let amount = input::refund_amount(b.amount)?;
                let reason = input::reason(&b.reason)?;
                // An id that is not one of ours names no transaction: 404 like an unknown one.
                let transaction_id =
                    Id::parse(&b.transaction_id).map_err(|_| DomainError::TransactionNotFound)?;
                Ok(RefundRequest {
                    user,
                    transaction_id,
                    amount,
                    reason,
                    by_user: p.is_user(),
                })
            },
            |req, meta, idem| async move { hub.refund(req, &meta, idem.as_ref()).await },
        )
        .await)
}

/// The refund policy (public).
#[utoipa::path(get, path = "/luna/energy/refund-policy", tag = "energy",
    responses((status = 200, description = "The policy", body = RefundPolicyResponse)))]
pub async fn refund_policy(State(state): State<AppState>) -> axum::Json<RefundPolicyResponse> {
    let p = state.hub.policy();
    axum::Json(RefundPolicyResponse {
        success: true,
        policy: RefundPolicy {
            window_days: p.refund_window_days,
            ineligible_actions: p
                .ineligible_refund_actions
                .iter()
                .map(ToString::to_string)
                .collect(),
            max_refunds_per_transaction: 1,
        },
    })
}
