//! `/luna/energy/*`: check, can-perform, consume, holds, refunds, grants, history, analytics,
//! costs and the refund policy.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use luna_app::{
    AppError, ConsumeOutcome, ConsumeRequest, GrantOutcome, RefundOutcome, RefundRequest,
    ReleaseOutcome, ReserveOutcome, ReserveRequest,
};
use luna_core::{Context, DomainError, Energy, Id};
use luna_ports::Scope;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::AppState;
use crate::command::Call;
use crate::error::ApiError;
use crate::extract::{Body, IdPath, Principal, UserPath, metadata};
use crate::limits::{MAX_CONTEXT_BYTES, MAX_GRANT, MAX_REASON_LEN};
use crate::render::{parse_time, rfc3339};
use crate::routes::{
    ErrorBody, InsufficientEnergyBody, ValidationErrorBody, page_limit, parse_cursor, query_params,
};

// ---- requests ---------------------------------------------------------------------------

/// Balance check.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"user_id": "user_42"}))]
pub struct CheckBody {
    /// The user (required for service keys; users act for themselves).
    pub user_id: Option<String>,
}

/// Whether an action can be performed.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"user_id": "user_42", "action_name": "lettre_motivation"}))]
pub struct CanPerformBody {
    /// The user.
    pub user_id: Option<String>,
    /// An action of the cost grid.
    pub action_name: String,
}

/// Consume an action's cost.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"user_id": "user_42", "action_name": "lettre_motivation", "context": {"app_source": "letters", "target_role": "Data Analyst"}}))]
pub struct ConsumeBody {
    /// The user.
    pub user_id: Option<String>,
    /// An action of the cost grid.
    pub action_name: String,
    /// A JSON object ≤ 8 KiB kept verbatim; `context.app_source` names the app.
    #[schema(value_type = Option<Object>)]
    pub context: Option<Box<RawValue>>,
}

/// Put an action's cost on hold.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"user_id": "user_42", "action_name": "mirror_match", "ttl_seconds": 300}))]
pub struct ReserveBody {
    /// The user.
    pub user_id: Option<String>,
    /// An action of the cost grid.
    pub action_name: String,
    /// 1..=3600, default 300.
    pub ttl_seconds: Option<i64>,
    /// A JSON object ≤ 8 KiB kept verbatim.
    #[schema(value_type = Option<Object>)]
    pub context: Option<Box<RawValue>>,
}

/// Commit a hold.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"context": {"app_source": "cv"}}))]
pub struct CommitBody {
    /// Context to record instead of the reservation's.
    #[schema(value_type = Option<Object>)]
    pub context: Option<Box<RawValue>>,
}

/// Release a hold.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({}))]
pub struct ReleaseBody {}

/// Refund a consume.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"user_id": "user_42", "transaction_id": "0190c7a2-0000-7000-8000-000000000001", "amount": 15, "reason": "generation failed"}))]
pub struct RefundBody {
    /// The user.
    pub user_id: Option<String>,
    /// The consume's transaction id.
    pub transaction_id: String,
    /// 1..=the consume's cost (default all of it).
    pub amount: Option<i64>,
    /// Why.
    pub reason: String,
}

/// Grant energy (admin).
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"user_id": "user_42", "amount": 50, "reason": "support gesture"}))]
pub struct GrantBody {
    /// The user.
    pub user_id: String,
    /// 1..=1 000 000.
    pub amount: i64,
    /// Why.
    pub reason: String,
}

// ---- responses --------------------------------------------------------------------------

/// The balance.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true, "user_id": "user_42", "current_energy": 85, "max_energy": 100, "percentage": 85, "available_energy": 85, "reserved_energy": 0, "can_perform_basic_action": true, "last_recharge": null, "total_consumed": 0, "total_purchased": 0, "subscription_type": "free", "unlimited": false, "unlimited_until": null, "stream_version": 1}))]
pub struct CheckResponse {
    success: bool,
    user_id: String,
    current_energy: i64,
    max_energy: i64,
    percentage: i64,
    available_energy: i64,
    reserved_energy: u64,
    can_perform_basic_action: bool,
    last_recharge: Option<String>,
    total_consumed: u64,
    total_purchased: u64,
    subscription_type: &'static str,
    unlimited: bool,
    unlimited_until: Option<String>,
    stream_version: u64,
}

/// Whether an action can be performed ("cannot" is a 200).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true, "user_id": "user_42", "action": "mirror_match", "action_cost": 30, "energy_required": 30, "current_energy": 15, "available_energy": 15, "can_perform": false, "deficit": 15, "unlimited": false, "subscription_type": "free", "required_pack": "cafe_luna"}))]
pub struct CanPerformResponse {
    success: bool,
    user_id: String,
    action: String,
    action_cost: u32,
    energy_required: u32,
    current_energy: i64,
    available_energy: i64,
    can_perform: bool,
    deficit: u64,
    unlimited: bool,
    subscription_type: &'static str,
    required_pack: Option<String>,
}

/// A consume (direct, or by committing a hold).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true, "transaction_id": "0190c7a2-0000-7000-8000-000000000001", "event_id": "0190c7a2-0000-7000-8000-000000000002", "action": "lettre_motivation", "energy_consumed": 15, "notional_cost": 15, "energy_remaining": 70, "unlimited": false, "subscription_type": "free", "timestamp": "2026-11-25T10:00:00.000Z", "message": "15 énergie consommée pour lettre_motivation"}))]
pub struct ConsumeResponse {
    success: bool,
    user_id: String,
    transaction_id: String,
    event_id: String,
    action: String,
    energy_consumed: u32,
    notional_cost: u32,
    energy_remaining: i64,
    unlimited: bool,
    subscription_type: &'static str,
    timestamp: String,
    message: String,
}

/// A hold.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true, "reservation_id": "0190c7a2-0000-7000-8000-000000000003", "action": "mirror_match", "energy_reserved": 30, "available_energy": 55, "expires_at": "2026-11-25T10:05:00.000Z"}))]
pub struct ReserveResponse {
    success: bool,
    user_id: String,
    reservation_id: String,
    action: String,
    energy_reserved: u32,
    available_energy: i64,
    expires_at: String,
}

/// A released hold.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true, "reservation_id": "0190c7a2-0000-7000-8000-000000000003", "energy_released": 30, "available_energy": 85}))]
pub struct ReleaseResponse {
    success: bool,
    reservation_id: String,
    energy_released: u32,
    available_energy: i64,
}

/// A refund.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true, "transaction_id": "0190c7a2-0000-7000-8000-000000000004", "refunded_transaction_id": "0190c7a2-0000-7000-8000-000000000001", "energy_refunded": 15, "new_energy_balance": 85, "reason": "generation failed"}))]
pub struct RefundResponse {
    success: bool,
    transaction_id: String,
    refunded_transaction_id: String,
    energy_refunded: u32,
    new_energy_balance: i64,
    reason: String,
}

/// A grant.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true, "transaction_id": "0190c7a2-0000-7000-8000-000000000005", "energy_granted": 50, "new_energy_balance": 135}))]
pub struct GrantResponse {
    success: bool,
    transaction_id: String,
    energy_granted: u32,
    new_energy_balance: i64,
}

/// The refund policy.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true, "policy": {"window_days": 7, "ineligible_actions": ["conseil_rapide", "correction_ponctuelle"], "max_refunds_per_transaction": 1}}))]
pub struct RefundPolicyResponse {
    success: bool,
    policy: RefundPolicy,
}

/// Refund rules.
#[derive(Serialize, ToSchema)]
pub struct RefundPolicy {
    window_days: u32,
    ineligible_actions: Vec<String>,
    max_refunds_per_transaction: u32,
}

/// One history row.
#[derive(Serialize, ToSchema)]
pub struct TransactionRow {
    transaction_id: String,
    /// welcome | consume | refund | purchase | bonus | grant | revoke
    action_type: &'static str,
    amount: u32,
    reason: String,
    app_source: Option<String>,
    feature_used: Option<String>,
    energy_before: i64,
    energy_after: i64,
    created_at: String,
    #[schema(value_type = Option<Object>)]
    context: Option<Box<RawValue>>,
}

/// The history, newest first.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true, "user_id": "user_42", "transactions": [{"transaction_id": "0190c7a2-0000-7000-8000-000000000001", "action_type": "consume", "amount": 15, "reason": "lettre_motivation", "app_source": "letters", "feature_used": "lettre_motivation", "energy_before": 85, "energy_after": 70, "created_at": "2026-11-25T10:00:00.000Z", "context": {"app_source": "letters"}}], "total_count": 2, "next_cursor": "p1"}))]
pub struct TransactionsResponse {
    success: bool,
    user_id: String,
    transactions: Vec<TransactionRow>,
    total_count: u64,
    next_cursor: Option<String>,
}

/// Count and energy.
#[derive(Serialize, ToSchema)]
pub struct UsageDto {
    count: u64,
    energy: u64,
}

/// One of the top actions.
#[derive(Serialize, ToSchema)]
pub struct TopAction {
    action: String,
    count: u64,
    energy: u64,
}

/// Energy consumed on one UTC day.
#[derive(Serialize, ToSchema)]
pub struct DailyUsage {
    date: String,
    consumed: u64,
}

/// Analytics figures.
#[derive(Serialize, ToSchema)]
pub struct AnalyticsBody {
    current_energy: i64,
    total_consumed: u64,
    total_purchased: u64,
    total_refunded: u64,
    total_transactions: u64,
    top_actions: Vec<TopAction>,
    by_app: std::collections::BTreeMap<String, UsageDto>,
    daily: Vec<DailyUsage>,
    unlimited_actions: u64,
    notional_energy_unlimited: u64,
    subscription_type: &'static str,
    member_since: Option<String>,
}

/// Analytics of a user.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true, "user_id": "user_42", "analytics": {"current_energy": 70, "total_consumed": 15, "total_purchased": 0, "total_refunded": 0, "total_transactions": 2, "top_actions": [{"action": "lettre_motivation", "count": 1, "energy": 15}], "by_app": {"letters": {"count": 1, "energy": 15}}, "daily": [{"date": "2026-11-25", "consumed": 15}], "unlimited_actions": 0, "notional_energy_unlimited": 0, "subscription_type": "free", "member_since": "2026-11-25T09:00:00.000Z"}}))]
pub struct AnalyticsResponse {
    success: bool,
    user_id: String,
    analytics: AnalyticsBody,
}

/// One pack in the costs listing.
#[derive(Serialize, ToSchema)]
pub struct CostPack {
    name: String,
    price_cents: u64,
    price_euro: String,
    energy_amount: Option<u32>,
    bonus_first_purchase: u32,
    subscription: bool,
    interval: Option<&'static str>,
}

/// The cost grid and packs.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true, "grid_version": "2024-01", "energy_costs": {"conseil_rapide": 5, "lettre_motivation": 15}, "energy_packs": {"cafe_luna": {"name": "Café Luna", "price_cents": 299, "price_euro": "2.99", "energy_amount": 100, "bonus_first_purchase": 10, "subscription": false, "interval": null}}, "currency": "EUR"}))]
pub struct CostsResponse {
    success: bool,
    grid_version: String,
    energy_costs: std::collections::BTreeMap<String, u32>,
    energy_packs: std::collections::BTreeMap<String, CostPack>,
    currency: String,
}

// ---- helpers ----------------------------------------------------------------------------

/// Validates a client JSON object (≤ `max` bytes) at `loc` and builds the domain context.
pub fn context_of(raw: Option<&RawValue>, loc: &str) -> Result<Option<Context>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::validation(
            &["body", loc],
            "must be a JSON object",
            "type_error.dict",
        ));
    }
    if text.len() > MAX_CONTEXT_BYTES {
        return Err(ApiError::validation(
            &["body", loc],
            "must be at most 8 KiB",
            "value_error.too_large",
        ));
    }
    luna_codec::context_from_raw(text).map(Some).map_err(|_| {
        ApiError::validation(&["body", loc], "must be a JSON object", "type_error.dict")
    })
}

fn reason_of(reason: &str) -> Result<String, ApiError> {
    if reason.len() > MAX_REASON_LEN {
        return Err(ApiError::validation(
            &["body", "reason"],
            "must be at most 500 characters",
            "value_error.too_long",
        ));
    }
    Ok(reason.to_owned())
}

fn consume_dto(o: &ConsumeOutcome) -> ConsumeResponse {
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
        subscription_type: o.subscription_type.as_str(),
        timestamp: rfc3339(o.timestamp),
        message,
    }
}

fn count_consume(reply: &Result<luna_app::Reply<ConsumeOutcome>, AppError>) {
    match reply {
        Ok(luna_app::Reply::Fresh(_)) => metrics::counter!("luna_consumes_total").increment(1),
        Err(AppError::Domain(luna_core::DomainError::InsufficientEnergy(_))) => {
            metrics::counter!("luna_insufficient_energy_total").increment(1);
        }
        _ => {}
    }
}

// ---- handlers ---------------------------------------------------------------------------

/// Balance check (opens an unknown account with its welcome energy).
#[utoipa::path(post, path = "/luna/energy/check", tag = "energy", request_body = CheckBody,
    responses(
        (status = 200, description = "The balance", body = CheckResponse),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        (status = 401, description = "Missing or bad credentials", body = ErrorBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
        (status = 422, description = "Malformed request", body = ValidationErrorBody),
    ),
    security(("bearer" = [])))]
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
    let v = &o.view;
    Ok(axum::Json(CheckResponse {
        success: true,
        user_id: o.user.to_string(),
        current_energy: v.current_energy,
        max_energy: v.max_energy,
        percentage: v.percentage,
        available_energy: v.available_energy,
        reserved_energy: v.reserved_energy,
        can_perform_basic_action: v.can_perform_basic_action,
        last_recharge: v.last_recharge.map(rfc3339),
        total_consumed: v.total_consumed,
        total_purchased: v.total_purchased,
        subscription_type: v.subscription_type.as_str(),
        unlimited: v.unlimited(),
        unlimited_until: v.unlimited_until.map(rfc3339),
        stream_version: o.stream_version,
    })
    .into_response())
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
    security(("bearer" = [])))]
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
        subscription_type: v.subscription_type.as_str(),
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
    security(("bearer" = [])))]
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
                    context: context_of(b.context.as_deref(), "context")?,
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
    security(("bearer" = [])))]
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
                let ttl_seconds = match b.ttl_seconds {
                    None => None,
                    Some(t @ 1..=3600) => Some(u32::try_from(t).unwrap_or(300)),
                    Some(_) => {
                        return Err(ApiError::validation(
                            &["body", "ttl_seconds"],
                            "must be between 1 and 3600",
                            "value_error.number.out_of_range",
                        ));
                    }
                };
                Ok(ReserveRequest {
                    user: p.user_for(b.user_id.as_deref())?,
                    context: context_of(b.context.as_deref(), "context")?,
                    action: b.action_name,
                    ttl_seconds,
                })
            },
            |req, meta, idem| async move { hub.reserve(req, &meta, idem.as_ref()).await },
        )
        .await)
}

/// A reservation id from its path segment, or the 404 an unknown one gets.
fn reservation_id(id: Option<&str>) -> Result<Id, ApiError> {
    id.and_then(|id| Id::parse(id).ok()).ok_or_else(|| {
        ApiError::rule(
            StatusCode::NOT_FOUND,
            "reservation_not_found",
            "Reservation not found",
        )
    })
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
    security(("bearer" = [])))]
pub async fn commit(
    State(state): State<AppState>,
    principal: Principal,
    IdPath(id): IdPath,
    uri: axum::http::Uri,
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
                let context = context_of(b.context.as_deref(), "context")?;
                Ok((id, p.owner(), context))
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
    security(("bearer" = [])))]
pub async fn release(
    State(state): State<AppState>,
    principal: Principal,
    IdPath(id): IdPath,
    uri: axum::http::Uri,
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

/// Refund a consume (once, within the window).
#[utoipa::path(post, path = "/luna/energy/refund", tag = "energy", request_body = RefundBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Also accepted as X-Idempotency-Key")),
    responses(
        (status = 200, description = "Refunded", body = RefundResponse),
        (status = 404, description = "Unknown transaction", body = ErrorBody),
        (status = 409, description = "already_refunded, nothing_to_refund, refund_window_expired, refund_not_eligible", body = ErrorBody),
        (status = 422, description = "Amount out of range", body = ValidationErrorBody),
    ),
    security(("bearer" = [])))]
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
                let amount = match b.amount {
                    None => None,
                    Some(a) if a >= 1 => Some(Energy::new(u32::try_from(a).unwrap_or(u32::MAX))),
                    Some(_) => {
                        return Err(ApiError::validation(
                            &["body", "amount"],
                            "must be at least 1",
                            "value_error.number.out_of_range",
                        ));
                    }
                };
                let reason = reason_of(&b.reason)?;
                // An id that is not one of ours names no transaction: 404 like an unknown one.
                let transaction_id = Id::parse(&b.transaction_id).map_err(|_| {
                    ApiError::from(&AppError::Domain(DomainError::TransactionNotFound))
                })?;
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

/// Grant energy (admin only).
#[utoipa::path(post, path = "/luna/energy/grant", tag = "energy", request_body = GrantBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Also accepted as X-Idempotency-Key")),
    responses(
        (status = 200, description = "Granted", body = GrantResponse),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "Amount out of range", body = ValidationErrorBody),
    ),
    security(("bearer" = [])))]
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
                let user = p.user_for(Some(&b.user_id))?;
                let amount = match u32::try_from(b.amount) {
                    Ok(a @ 1..=MAX_GRANT) => Energy::new(a),
                    _ => {
                        return Err(ApiError::validation(
                            &["body", "amount"],
                            "must be between 1 and 1000000",
                            "value_error.number.out_of_range",
                        ));
                    }
                };
                Ok((user, amount, reason_of(&b.reason)?))
            },
            |(user, amount, reason), meta, idem| async move {
                hub.grant(&user, amount, &reason, &meta, idem.as_ref())
                    .await
            },
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
                    luna_core::PackKind::Subscription { interval } => Some(interval.as_str()),
                    luna_core::PackKind::OneOff { .. } => None,
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

/// Paging parameters.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size (default 50, at most 200).
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub before: Option<String>,
}

/// The transaction history, newest first (an unknown user has none).
#[utoipa::path(get, path = "/luna/energy/transactions/{user_id}", tag = "energy",
    params(("user_id" = String, Path, description = "The user"), PageParams),
    responses(
        (status = 200, description = "A page of history", body = TransactionsResponse),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
        (status = 422, description = "Bad limit or cursor", body = ValidationErrorBody),
    ),
    security(("bearer" = [])))]
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
                action_type: l.kind.as_str(),
                amount: l.amount.units(),
                reason: l.reason,
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
        next_cursor: page.next_before.map(|p| format!("p{p}")),
    })
    .into_response())
}

/// Range of analytics.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// Inclusive start (RFC 3339 or YYYY-MM-DD).
    pub from: Option<String>,
    /// Exclusive end (RFC 3339 or YYYY-MM-DD).
    pub to: Option<String>,
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
    security(("bearer" = [])))]
pub async fn analytics(
    State(state): State<AppState>,
    principal: Principal,
    UserPath(user_id): UserPath,
    query: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let user = principal.reader_of(Scope::EnergyRead, &user_id)?;
    let q = query_params(query)?;
    let time = |v: Option<&str>, name: &str| {
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
    };
    let (from, to) = (
        time(q.from.as_deref(), "from")?,
        time(q.to.as_deref(), "to")?,
    );
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
            subscription_type: a.subscription_type.as_str(),
            member_since: a.member_since.map(rfc3339),
        },
    })
    .into_response())
}
