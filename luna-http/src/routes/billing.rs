//! Billing (spec §3.6): the packs on sale, a PaymentIntent for a pack and its credit, the old
//! clients' `/luna/energy/purchase`, the Unlimited subscription through a hosted checkout, the
//! provider's webhook (raw body, signature checked over the bytes received) and the purchase
//! history.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use luna_api::{
    BillingHistoryResponse, CancelSubscriptionBody, CancelSubscriptionResponse, ConfirmPaymentBody,
    ConfirmPaymentResponse, CreateIntentBody, CreateIntentResponse, CreateSubscriptionBody,
    CreateSubscriptionResponse, ErrorBody, PackDto, PacksResponse, PageParams, PurchaseBody,
    PurchaseDto, PurchaseResponse, SubscriptionDto, ValidationErrorBody, WebhookResponse,
};
use luna_app::{
    BillingError, CreditStatus, IntentOutcome, PurchaseOutcome, ReturnUrls, WebhookOutcome,
};
use luna_core::{PackKind, PaymentRef};
use luna_ports::{CheckoutView, Scope, SubscriptionView};

use crate::AppState;
use crate::command::Call;
use crate::error::ApiError;
use crate::extract::{Body, Principal, RawBody, UserPath};
use crate::routes::{cursor, page_limit, parse_cursor, query_params};
use crate::wire::rfc3339;

/// The header Stripe signs its notifications with.
const SIGNATURE_HEADER: &str = "stripe-signature";

/// The packs on sale (public).
#[utoipa::path(get, path = "/billing/packs", tag = "billing",
    responses((status = 200, description = "The catalogue", body = PacksResponse)))]
pub async fn packs(State(state): State<AppState>) -> axum::Json<PacksResponse> {
    let hub = &state.hub;
    let packs = &hub.catalog().packs;
    axum::Json(PacksResponse {
        success: true,
        packs: packs
            .packs()
            .iter()
            .map(|p| PackDto {
                code: p.id.to_string(),
                name: p.name.clone(),
                description: p.description.clone(),
                price_cents: p.price.amount.minor(),
                price_euro: p.price.amount.decimal_string(),
                currency: p.price.currency.as_str().to_owned(),
                energy_units: p.energy().map(luna_core::Energy::units),
                bonus_first_purchase: p.first_purchase_bonus().units(),
                savings_vs_cafe: packs.savings_vs_cafe(p),
                popular: p.popular,
                subscription: p.is_subscription(),
                interval: match p.kind {
                    PackKind::Subscription { interval } => Some(interval.as_str().to_owned()),
                    PackKind::OneOff { .. } => None,
                },
            })
            .collect(),
        currency: packs.currency().as_str().to_owned(),
        unlimited_available: hub.unlimited_available(),
    })
}

fn intent_dto(o: &IntentOutcome) -> CreateIntentResponse {
    CreateIntentResponse {
        success: true,
        intent_id: o.payment.id.to_string(),
        client_secret: o.payment.client_secret.clone(),
        amount: o.payment.amount.minor(),
        currency: o.payment.currency.as_str().to_owned(),
        pack: o.pack.to_string(),
        energy_units: o.energy_units,
    }
}

/// Create a PaymentIntent for a one-off pack (refused while Unlimited, before any payment).
#[utoipa::path(post, path = "/billing/create-intent", tag = "billing", request_body = CreateIntentBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Also accepted as X-Idempotency-Key; the key sent to Stripe derives from it")),
    responses(
        (status = 200, description = "Created", body = CreateIntentResponse),
        (status = 409, description = "already_unlimited", body = ErrorBody),
        (status = 422, description = "Unknown pack, a subscription, or another currency", body = ErrorBody),
        (status = 502, description = "Stripe failed", body = ErrorBody),
        (status = 503, description = "Billing is not configured", body = ErrorBody),
    ),
    security(("bearer" = ["billing:write"])))]
pub async fn create_intent(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = Call::begin(
        principal,
        Scope::BillingWrite,
        &headers,
        "create-intent",
        body,
    )
    .await?;
    let hub = state.hub.clone();
    Ok(call
        .run(
            &state.hub,
            StatusCode::OK,
            intent_dto,
            |b: CreateIntentBody, p| Ok((p.user_for(b.user_id.as_deref())?, b.pack, b.currency)),
            |(user, pack, currency), meta, idem| async move {
                hub.create_intent(&user, &pack, currency.as_deref(), &meta, idem.as_ref())
                    .await
            },
        )
        .await)
}

fn status_of(o: &PurchaseOutcome) -> String {
    match o.status {
        CreditStatus::Credited => "credited",
        CreditStatus::AlreadyCredited => "already_credited",
    }
    .to_owned()
}

fn confirm_dto(o: &PurchaseOutcome) -> ConfirmPaymentResponse {
    ConfirmPaymentResponse {
        success: true,
        status: status_of(o),
        energy_added: o
            .energy_added
            .units()
            .saturating_add(o.bonus_energy.units()),
        bonus_applied: !o.bonus_energy.is_zero(),
        bonus_units: o.bonus_energy.units(),
        new_energy_balance: o.current_energy,
        event_id: o.event_id.to_string(),
        transaction_id: o.purchase_id.to_string(),
    }
}

/// A payment id from the body: one that is not an id names no payment (404, kept like any
/// answer).
fn payment_id(raw: &str) -> Result<PaymentRef, ApiError> {
    PaymentRef::parse(raw)
        .map_err(|_| ApiError::from(luna_app::AppError::Billing(BillingError::PaymentNotFound)))
}

/// Credit a succeeded PaymentIntent (once, whichever path comes first).
#[utoipa::path(post, path = "/billing/confirm-payment", tag = "billing", request_body = ConfirmPaymentBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Also accepted as X-Idempotency-Key")),
    responses(
        (status = 200, description = "Credited now or before", body = ConfirmPaymentResponse),
        (status = 403, description = "The payment is another user's", body = ErrorBody),
        (status = 404, description = "Unknown payment", body = ErrorBody),
        (status = 409, description = "Payment not completed. Status: <s>", body = ErrorBody),
        (status = 422, description = "Amount, currency or pack ≠ the catalogue", body = ErrorBody),
        (status = 502, description = "Stripe failed", body = ErrorBody),
        (status = 503, description = "Billing is not configured", body = ErrorBody),
    ),
    security(("bearer" = ["billing:write"])))]
pub async fn confirm_payment(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = Call::begin(
        principal,
        Scope::BillingWrite,
        &headers,
        "confirm-payment",
        body,
    )
    .await?;
    let hub = state.hub.clone();
    Ok(call
        .run(
            &state.hub,
            StatusCode::OK,
            confirm_dto,
            |b: ConfirmPaymentBody, p| {
                Ok((p.user_for(b.user_id.as_deref())?, payment_id(&b.intent_id)?))
            },
            |(user, payment), meta, idem| async move {
                hub.confirm_payment(&user, &payment, None, &meta, idem.as_ref())
                    .await
            },
        )
        .await)
}

fn purchase_dto(o: &PurchaseOutcome) -> PurchaseResponse {
    PurchaseResponse {
        success: true,
        status: status_of(o),
        purchase_id: o.purchase_id.to_string(),
        pack_type: o.pack.to_string(),
        energy_added: o.energy_added.units(),
        bonus_energy: o.bonus_energy.units(),
        current_energy: o.current_energy,
        amount_paid_cents: o.amount_paid_cents,
        currency: o.currency.as_str().to_owned(),
    }
}

/// Credit a pack paid with a PaymentIntent (the old clients' route; verified with Stripe).
#[utoipa::path(post, path = "/luna/energy/purchase", tag = "billing", request_body = PurchaseBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Also accepted as X-Idempotency-Key")),
    responses(
        (status = 200, description = "Credited now or before", body = PurchaseResponse),
        (status = 403, description = "The payment is another user's", body = ErrorBody),
        (status = 404, description = "Unknown payment", body = ErrorBody),
        (status = 409, description = "Payment not completed. Status: <s>", body = ErrorBody),
        (status = 422, description = "Amount, currency or pack ≠ the catalogue", body = ErrorBody),
        (status = 502, description = "Stripe failed", body = ErrorBody),
        (status = 503, description = "Billing is not configured", body = ErrorBody),
    ),
    security(("bearer" = ["billing:write"])))]
pub async fn purchase(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = Call::begin(principal, Scope::BillingWrite, &headers, "purchase", body).await?;
    let hub = state.hub.clone();
    Ok(call
        .run(
            &state.hub,
            StatusCode::OK,
            purchase_dto,
            |b: PurchaseBody, p| {
                let user = p.user_for(b.user_id.as_deref())?;
                Ok((user, payment_id(&b.stripe_payment_intent_id)?, b.pack_type))
            },
            |(user, payment, pack), meta, idem| async move {
                hub.confirm_payment(&user, &payment, Some(&pack), &meta, idem.as_ref())
                    .await
            },
        )
        .await)
}

fn checkout_dto(v: &CheckoutView) -> CreateSubscriptionResponse {
    CreateSubscriptionResponse {
        success: true,
        checkout_session_id: v.id.clone(),
        url: v.url.clone(),
    }
}

/// Open (or reuse) a hosted checkout for Luna Unlimited.
#[utoipa::path(post, path = "/billing/create-subscription", tag = "billing", request_body = CreateSubscriptionBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Also accepted as X-Idempotency-Key")),
    responses(
        (status = 200, description = "A checkout to send the user to", body = CreateSubscriptionResponse),
        (status = 409, description = "already_unlimited", body = ErrorBody),
        (status = 422, description = "Unknown plan, or a return URL outside the hub's origins", body = ValidationErrorBody),
        (status = 502, description = "Stripe failed", body = ErrorBody),
        (status = 503, description = "Billing is not configured", body = ErrorBody),
    ),
    security(("bearer" = ["billing:write"])))]
pub async fn create_subscription(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = Call::begin(
        principal,
        Scope::BillingWrite,
        &headers,
        "create-subscription",
        body,
    )
    .await?;
    let hub = state.hub.clone();
    Ok(call
        .run(
            &state.hub,
            StatusCode::OK,
            checkout_dto,
            |b: CreateSubscriptionBody, p| {
                let user = p.user_for(b.user_id.as_deref())?;
                let back = ReturnUrls {
                    success_url: b.success_url,
                    cancel_url: b.cancel_url,
                };
                Ok((user, b.plan, back))
            },
            |(user, plan, back), meta, idem| async move {
                hub.create_subscription(&user, &plan, back, &meta, idem.as_ref())
                    .await
            },
        )
        .await)
}

fn cancel_dto(v: &SubscriptionView) -> CancelSubscriptionResponse {
    CancelSubscriptionResponse {
        success: true,
        status: v.status.as_str().to_owned(),
        current_period_end: v.current_period_end.map(rfc3339),
    }
}

/// Cancel the Unlimited subscription at the end of its period (default) or now.
#[utoipa::path(post, path = "/billing/cancel-subscription", tag = "billing", request_body = CancelSubscriptionBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Also accepted as X-Idempotency-Key")),
    responses(
        (status = 200, description = "Cancelled (now or at period end)", body = CancelSubscriptionResponse),
        (status = 404, description = "No active subscription", body = ErrorBody),
        (status = 502, description = "Stripe failed", body = ErrorBody),
        (status = 503, description = "Billing is not configured", body = ErrorBody),
    ),
    security(("bearer" = ["billing:write"])))]
pub async fn cancel_subscription(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = Call::begin(
        principal,
        Scope::BillingWrite,
        &headers,
        "cancel-subscription",
        body,
    )
    .await?;
    let hub = state.hub.clone();
    Ok(call
        .run(
            &state.hub,
            StatusCode::OK,
            cancel_dto,
            |b: CancelSubscriptionBody, p| {
                Ok((
                    p.user_for(b.user_id.as_deref())?,
                    b.at_period_end.unwrap_or(true),
                ))
            },
            |(user, at_period_end), meta, idem| async move {
                hub.cancel_subscription(&user, at_period_end, &meta, idem.as_ref())
                    .await
            },
        )
        .await)
}

/// Stripe's notifications: verified over the raw bytes received, applied with their
/// "processed" mark in one transaction; a failure answers 5xx so Stripe redelivers.
#[utoipa::path(post, path = "/billing/webhook", tag = "billing",
    request_body(content = String, description = "A Stripe event, as Stripe sent it (≤ 1 MiB)", content_type = "application/json"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex>[,v1=…]")),
    responses(
        (status = 200, description = "Received (applied, a redelivery, or not acted on)", body = WebhookResponse),
        (status = 400, description = "Invalid signature", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 503, description = "No webhook signing secret configured", body = ErrorBody),
    ))]
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let outcome = state.hub.webhook(signature, &body).await;
    let label = match &outcome {
        Ok(WebhookOutcome::Applied) => "applied",
        Ok(WebhookOutcome::Duplicate) => "duplicate",
        Ok(WebhookOutcome::Ignored(why)) => {
            tracing::info!(why = %why, "webhook event not acted on");
            "ignored"
        }
        Ok(WebhookOutcome::Unmatched(why)) => {
            tracing::warn!(why = %why, "a succeeded payment could not be credited (unmatched)");
            metrics::counter!("luna_payments_unmatched_total").increment(1);
            "unmatched"
        }
        Err(luna_app::AppError::Webhook(_)) => "refused",
        Err(_) => "failed",
    };
    metrics::counter!("luna_webhook_events_total", "outcome" => label).increment(1);
    outcome?;
    Ok(axum::Json(WebhookResponse { received: true }).into_response())
}

/// A user's purchases, newest first, with totals and the subscription.
#[utoipa::path(get, path = "/billing/history/{user_id}", tag = "billing",
    params(("user_id" = String, Path, description = "The user"), PageParams),
    responses(
        (status = 200, description = "A page of purchases", body = BillingHistoryResponse),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
        (status = 422, description = "Bad limit or cursor", body = ValidationErrorBody),
    ),
    security(("bearer" = ["billing:write"])))]
pub async fn history(
    State(state): State<AppState>,
    principal: Principal,
    UserPath(user_id): UserPath,
    query: Result<Query<PageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let user = principal.reader_of(Scope::BillingWrite, &user_id)?;
    let q = query_params(query)?;
    let limit = page_limit(q.limit.as_deref())?;
    let before = parse_cursor(q.before.as_deref())?;
    let h = state.hub.billing_history(&user, before, limit).await?;
    Ok(axum::Json(BillingHistoryResponse {
        success: true,
        user_id: user.to_string(),
        total_purchases: h.total_purchases,
        total_spent_cents: h.total_spent_cents,
        total_energy_purchased: h.total_energy,
        purchases: h
            .lines
            .iter()
            .map(|l| {
                let p = &l.purchase;
                PurchaseDto {
                    purchase_id: p.tx.to_string(),
                    event_id: l.event_id.to_string(),
                    date: rfc3339(p.at),
                    pack: p.pack.to_string(),
                    energy_added: p.energy.units().saturating_add(p.bonus.units()),
                    amount_cents: p.price.amount.minor(),
                    currency: p.price.currency.as_str().to_owned(),
                    bonus_applied: !p.bonus.is_zero(),
                    bonus_units: p.bonus.units(),
                    payment_intent_id: l.payment.to_string(),
                    status: if p.is_revoked() {
                        "revoked"
                    } else {
                        "credited"
                    }
                    .to_owned(),
                }
            })
            .collect(),
        next_cursor: h.next_before.map(cursor),
        subscription: h.subscription.map(|s| SubscriptionDto {
            status: s.status.as_str().to_owned(),
            current_period_end: s.current_period_end.map(rfc3339),
            cancel_at_period_end: s.cancel_at_period_end,
        }),
    })
    .into_response())
}
