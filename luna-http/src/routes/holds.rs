//! Holds: reserve an action's cost, then commit it into a consume or release it.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use luna_api::{
    CommitBody, ConsumeResponse, ErrorBody, InsufficientEnergyBody, ReleaseBody, ReleaseResponse,
    ReserveBody, ReserveResponse, ValidationErrorBody,
};
use luna_app::{ReleaseOutcome, ReserveOutcome, ReserveRequest};
use luna_core::{DomainError, Id, input};
use luna_ports::Scope;

use crate::AppState;
use crate::command::Call;
use crate::error::ApiError;
use crate::extract::{Body, IdPath, Principal};
use crate::routes::balance::{consume_dto, count_consume};
use crate::wire::{self, rfc3339};

/// Put an action's cost on hold for `ttl_seconds`.
#[utoipa::path(post, path = "/luna/energy/reserve", tag = "energy", request_body = ReserveBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Also accepted as X-Idempotency-Key")),
    responses(
        (status = 201, description = "Held", body = ReserveResponse),
        (status = 400, description = "Unknown action or invalid user id", body = ErrorBody),
        (status = 402, description = "Insufficient energy", body = InsufficientEnergyBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
        (status = 422, description = "Malformed request", body = ValidationErrorBody),
    ),
    security(("bearer" = ["energy:write"])))]
pub async fn reserve(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = Call::begin(principal, Scope::EnergyWrite, &headers, "reserve", body).await?;
    let hub = state.hub.clone();
    Ok(call
        .run(
            &state.hub,
            StatusCode::CREATED,
            |o: &ReserveOutcome| ReserveResponse {
                success: true,
                user_id: o.user.to_string(),
                reservation_id: o.reservation_id.to_string(),
                action: o.action.to_string(),
                energy_reserved: o.energy_reserved.units(),
                available_energy: o.available_energy,
                expires_at: rfc3339(o.expires_at),
            },
            |b: ReserveBody, p| {
                Ok(ReserveRequest {
                    user: p.user_for(b.user_id.as_deref())?,
                    ttl_seconds: Some(input::hold_ttl(b.ttl_seconds)?),
                    context: wire::context(b.context.as_deref())?,
                    action: b.action_name,
                })
            },
            |req, meta, idem| async move { hub.reserve(req, &meta, idem.as_ref()).await },
        )
        .await)
}

/// A reservation id from its path segment; one that is not an id of ours is not found.
fn reservation_id(id: Option<&str>) -> Result<Id, ApiError> {
    id.and_then(|id| Id::parse(id).ok())
        .ok_or_else(|| DomainError::ReservationNotFound.into())
}

/// Commit a hold into a consume (again → the same 200).
#[utoipa::path(post, path = "/luna/energy/reservations/{id}/commit", tag = "energy", request_body = CommitBody,
    params(("id" = String, Path, description = "Reservation id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Also accepted as X-Idempotency-Key")),
    responses(
        (status = 200, description = "Committed", body = ConsumeResponse),
        (status = 404, description = "No such reservation of yours", body = ErrorBody),
        (status = 409, description = "Released", body = ErrorBody),
        (status = 410, description = "Expired", body = ErrorBody),
    ),
    security(("bearer" = ["energy:write"])))]
pub async fn commit(
    State(state): State<AppState>,
    principal: Principal,
    IdPath(id): IdPath,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = Call::begin(principal, Scope::EnergyWrite, &headers, uri.path(), body).await?;
    let hub = state.hub.clone();
    Ok(call
        .run(
            &state.hub,
            StatusCode::OK,
            consume_dto,
            |b: CommitBody, p| {
                let id = reservation_id(id.as_deref())?;
                Ok((id, p.owner(), wire::context(b.context.as_deref())?))
            },
            |(id, owner, context), meta, idem| async move {
                let reply = hub
                    .commit(id, owner.as_ref(), context, &meta, idem.as_ref())
                    .await;
                count_consume(&reply);
                reply
            },
        )
        .await)
}

/// Release a hold (again → the same 200; after expiry → 0 released).
#[utoipa::path(post, path = "/luna/energy/reservations/{id}/release", tag = "energy", request_body = ReleaseBody,
    params(("id" = String, Path, description = "Reservation id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Also accepted as X-Idempotency-Key")),
    responses(
        (status = 200, description = "Released", body = ReleaseResponse),
        (status = 404, description = "No such reservation of yours", body = ErrorBody),
        (status = 409, description = "Already committed", body = ErrorBody),
    ),
    security(("bearer" = ["energy:write"])))]
pub async fn release(
    State(state): State<AppState>,
    principal: Principal,
    IdPath(id): IdPath,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = Call::begin(principal, Scope::EnergyWrite, &headers, uri.path(), body).await?;
    let hub = state.hub.clone();
    Ok(call
        .run(
            &state.hub,
            StatusCode::OK,
            |o: &ReleaseOutcome| ReleaseResponse {
                success: true,
                reservation_id: o.reservation_id.to_string(),
                energy_released: o.energy_released.units(),
                available_energy: o.available_energy,
            },
            |_: ReleaseBody, p| Ok((reservation_id(id.as_deref())?, p.owner())),
            |(id, owner), meta, idem| async move {
                hub.release(id, owner.as_ref(), &meta, idem.as_ref()).await
            },
        )
        .await)
}
