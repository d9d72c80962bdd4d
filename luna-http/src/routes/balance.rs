//! The balance: check, can-perform, consume, and the public cost grid.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use luna_api::{
    CanPerformBody, CanPerformResponse, CheckBody, CheckResponse, ConsumeBody, ConsumeResponse,
    CostPack, CostsResponse, ErrorBody, InsufficientEnergyBody, ValidationErrorBody,
};
use luna_app::{AppError, ConsumeOutcome, ConsumeRequest, Reply};
use luna_core::{DomainError, Energy, PackKind};
use luna_ports::Scope;

use crate::AppState;
use crate::command::Call;
use crate::error::ApiError;
use crate::extract::{Body, Principal, metadata};
use crate::wire::{self, rfc3339};

/// The wire form of a consume (direct, or by committing a hold).
pub fn consume_dto(o: &ConsumeOutcome) -> ConsumeResponse {
    let message = if o.unlimited {
        format!("Luna Unlimited : {} enregistrée sans décompte", o.action)
    } else {
        format!("{} énergie consommée pour {}", o.energy_consumed, o.action)
    };
    ConsumeResponse {
        success: true,
        user_id: o.user.to_string(),
        transaction_id: o.transaction_id.to_string(),
        event_id: o.event_id.to_string(),
        action: o.action.to_string(),
        energy_consumed: o.energy_consumed.units(),
        notional_cost: o.notional_cost.units(),
        energy_remaining: o.energy_remaining,
        unlimited: o.unlimited,
        subscription_type: o.subscription_type.as_str().to_owned(),
        timestamp: rfc3339(o.timestamp),
        message,
    }
}

/// Counts consumes and insufficient-energy refusals for `/metrics`.
pub fn count_consume(reply: &Result<Reply<ConsumeOutcome>, AppError>) {
    match reply {
        Ok(Reply::Fresh(_)) => metrics::counter!("luna_consumes_total").increment(1),
        Err(AppError::Domain(DomainError::InsufficientEnergy(_))) => {
            metrics::counter!("luna_insufficient_energy_total").increment(1);
        }
        _ => {}
    }
}

/// Balance check (opens an unknown account with its welcome energy).
#[utoipa::path(post, path = "/luna/energy/check", tag = "energy", request_body = CheckBody,
    responses(
        (status = 200, description = "The balance", body = CheckResponse),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        (status = 401, description = "Missing or bad credentials", body = ErrorBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
        (status = 422, description = "Malformed request", body = ValidationErrorBody),
    ),
    security(("bearer" = ["energy:read"])))]
pub async fn check(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    principal.require(Scope::EnergyRead)?;
    let b: CheckBody = body.read().await?.parse()?;
    let user = principal.user_for(b.user_id.as_deref())?;
    let o = state
        .hub
        .check(&user, &metadata(&principal, &headers, None))
        .await?;
    Ok(axum::Json(wire::check_dto(&o.user, &o.view, o.stream_version)).into_response())
}

/// Whether an action can be performed now ("cannot" is a 200 with `required_pack`).
#[utoipa::path(post, path = "/luna/energy/can-perform", tag = "energy", request_body = CanPerformBody,
    responses(
        (status = 200, description = "The answer", body = CanPerformResponse),
        (status = 400, description = "Unknown action or invalid user id", body = ErrorBody),
        (status = 401, description = "Missing or bad credentials", body = ErrorBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
        (status = 422, description = "Malformed request", body = ValidationErrorBody),
    ),
    security(("bearer" = ["energy:read"])))]
pub async fn can_perform(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    principal.require(Scope::EnergyRead)?;
    let b: CanPerformBody = body.read().await?.parse()?;
    let user = principal.user_for(b.user_id.as_deref())?;
    let o = state
        .hub
        .can_perform(&user, &b.action_name, &metadata(&principal, &headers, None))
        .await?;
    let v = &o.view;
    Ok(axum::Json(CanPerformResponse {
        success: true,
        user_id: o.user.to_string(),
        action: v.action.name.to_string(),
        action_cost: v.action.cost.units(),
        energy_required: v.energy_required.units(),
        current_energy: v.current_energy,
        available_energy: v.available_energy,
        can_perform: v.can_perform,
        deficit: v.deficit,
        unlimited: v.unlimited(),
        subscription_type: v.subscription_type.as_str().to_owned(),
        required_pack: v.required_pack.as_ref().map(ToString::to_string),
    })
    .into_response())
}

/// Consume an action's cost (an Unlimited user is charged nothing; the action is recorded).
#[utoipa::path(post, path = "/luna/energy/consume", tag = "energy", request_body = ConsumeBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Also accepted as X-Idempotency-Key")),
    responses(
        (status = 200, description = "Consumed", body = ConsumeResponse),
        (status = 400, description = "Unknown action or invalid user id", body = ErrorBody),
        (status = 401, description = "Missing or bad credentials", body = ErrorBody),
        (status = 402, description = "Insufficient energy", body = InsufficientEnergyBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 422, description = "Malformed request or idempotency key reused", body = ValidationErrorBody),
    ),
    security(("bearer" = ["energy:write"])))]
pub async fn consume(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = Call::begin(principal, Scope::EnergyWrite, &headers, "consume", body).await?;
    let hub = state.hub.clone();
    Ok(call
        .run(
            &state.hub,
            StatusCode::OK,
            consume_dto,
            |b: ConsumeBody, p| {
                Ok(ConsumeRequest {
                    user: p.user_for(b.user_id.as_deref())?,
                    context: wire::context(b.context.as_deref())?,
                    action: b.action_name,
                })
            },
            |req, meta, idem| async move {
                let reply = hub.consume(req, &meta, idem.as_ref()).await;
                count_consume(&reply);
                reply
            },
        )
        .await)
}

/// The cost grid and the packs (public).
#[utoipa::path(get, path = "/luna/energy/costs", tag = "energy",
    responses((status = 200, description = "Costs and packs", body = CostsResponse)))]
pub async fn costs(State(state): State<AppState>) -> axum::Json<CostsResponse> {
    let c = state.hub.catalog();
    axum::Json(CostsResponse {
        success: true,
        grid_version: c.grid.version().to_owned(),
        energy_costs: c
            .grid
            .actions()
            .map(|a| (a.name.to_string(), a.cost.units()))
            .collect(),
        energy_packs: c
            .packs
            .packs()
            .iter()
            .map(|p| {
                let interval = match p.kind {
                    PackKind::Subscription { interval } => Some(interval.as_str().to_owned()),
                    PackKind::OneOff { .. } => None,
                };
                (
                    p.id.to_string(),
                    CostPack {
                        name: p.name.clone(),
                        price_cents: p.price.amount.minor(),
                        price_euro: p.price.amount.decimal_string(),
                        energy_amount: p.energy().map(Energy::units),
                        bonus_first_purchase: p.first_purchase_bonus().units(),
                        subscription: p.is_subscription(),
                        interval,
                    },
                )
            })
            .collect(),
        currency: c.packs.currency().upper(),
    })
}
