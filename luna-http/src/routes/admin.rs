//! Administration: energy grants.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use luna_api::{ErrorBody, GrantBody, GrantResponse, ValidationErrorBody};
use luna_app::GrantOutcome;
use luna_core::input;
use luna_ports::Scope;

use crate::AppState;
use crate::command::Call;
use crate::error::ApiError;
use crate::extract::{Body, Principal};

/// Grant energy (admin only).
#[utoipa::path(post, path = "/luna/energy/grant", tag = "energy", request_body = GrantBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Also accepted as X-Idempotency-Key")),
    responses(
        (status = 200, description = "Granted", body = GrantResponse),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "Amount out of range", body = ValidationErrorBody),
    ),
    security(("bearer" = ["admin"])))]
pub async fn grant(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = Call::begin(principal, Scope::Admin, &headers, "grant", body).await?;
    let hub = state.hub.clone();
    Ok(call
        .run(
            &state.hub,
            StatusCode::OK,
            |o: &GrantOutcome| GrantResponse {
                success: true,
                transaction_id: o.transaction_id.to_string(),
                energy_granted: o.energy_granted.units(),
                new_energy_balance: o.new_energy_balance,
            },
            |b: GrantBody, p| {
                Ok((
                    p.user_for(Some(&b.user_id))?,
                    input::grant_amount(b.amount)?,
                    input::reason(&b.reason)?,
                ))
            },
            |(user, amount, reason), meta, idem| async move {
                hub.grant(&user, amount, &reason, &meta, idem.as_ref())
                    .await
            },
        )
        .await)
}
