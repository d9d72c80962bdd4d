//! The fake's `/v1` API: authentication, injected failures, idempotency-key replay, and the
//! operations the hub calls.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use luna_adapters_stripe::Form;
use serde_json::{Map, Value, json};

use super::{PERIOD_SECONDS, SECRET_KEY, SessionExtras, State};

#[derive(Clone)]
struct App {
    state: Arc<Mutex<State>>,
    base: String,
}

/// What an operation answers, and the events it made that are delivered when
/// `auto_deliver` is on.
type Answer = (u16, Value, Vec<Value>);

pub(crate) fn router(state: Arc<Mutex<State>>, base: String) -> Router {
    Router::new()
        .route(
            "/v1/payment_intents",
            get(list_payments).post(create_payment),
        )
        .route("/v1/payment_intents/{id}", get(get_object))
        .route("/v1/charges/{id}", get(get_object))
        .route("/v1/prices/{id}", get(get_object))
        .route("/v1/customers", axum::routing::post(create_customer))
        .route("/v1/checkout/sessions", axum::routing::post(create_session))
        .route("/v1/checkout/sessions/{id}", get(get_object))
        .route(
            "/v1/subscriptions/{id}",
            get(get_object).post(update_subscription).delete(cancel_now),
        )
        .with_state(App { state, base })
}

fn error(status: u16, kind: &str, code: Option<&str>, message: &str) -> Answer {
    (
        status,
        json!({"error": {"type": kind, "code": code, "message": message}}),
        Vec::new(),
    )
}

fn missing(id: &str) -> Answer {
    error(
        404,
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such object: '{id}'"),
    )
}

impl App {
    /// Runs one API request: bearer key, recorded, an injected failure, idempotency replay
    /// (POST), then `op`.
    async fn serve(
        &self,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        params: &str,
        op: impl FnOnce(&mut State, &Form) -> Answer,
    ) -> Response {
        let authorized = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {SECRET_KEY}"));
        let (answer, replayed, deliver) = {
            let mut s = super::lock_state(&self.state);
            s.requests.push((method.to_owned(), path.to_owned()));
            if !authorized {
                let (st, body, _) = error(
                    401,
                    "invalid_request_error",
                    None,
                    "Invalid API Key provided",
                );
                return respond(st, &body, false);
            }
            if let Some(status) = s.failures.pop_front() {
                let (st, body, _) = error(status, "api_error", None, "Injected failure");
                return respond(st, &body, false);
            }
            let key = headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .filter(|_| method == "POST")
                .map(str::to_owned);
            let request = format!("{method} {path} {params}");
            match key.as_ref().and_then(|k| s.kept.get(k).cloned()) {
                Some(kept) if kept.request == request => {
                    ((kept.status, kept.body, Vec::new()), true, None)
                }
                Some(_) => (
                    error(
                        400,
                        "idempotency_error",
                        None,
                        "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                    ),
                    false,
                    None,
                ),
                None => {
                    let (status, body, events) = op(&mut s, &Form::decode(params));
                    if let Some(k) = key {
                        s.kept.insert(
                            k,
                            super::KeptAnswer {
                                request,
                                status,
                                body: body.clone(),
                            },
                        );
                    }
                    let deliver = s
                        .auto_deliver
                        .then(|| (s.webhook_url.clone(), events.clone()));
                    ((status, body, events), false, deliver)
                }
            }
        };
        if let Some((url, events)) = deliver {
            super::deliver_all(url, events).await;
        }
        respond(answer.0, &answer.1, replayed)
    }
}

fn respond(status: u16, body: &Value, replayed: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (status, axum::Json(body.clone())).into_response();
    if replayed {
        r.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    r
}

/// `metadata[k]=v` pairs under `prefix` (`metadata`, `subscription_data[metadata]`…).
fn metadata(f: &Form, prefix: &str) -> Map<String, Value> {
    let open = format!("{prefix}[");
    f.pairs()
        .iter()
        .filter_map(|(k, v)| {
            let inner = k.strip_prefix(&open)?.strip_suffix(']')?;
            (!inner.contains('[')).then(|| (inner.to_owned(), json!(v)))
        })
        .collect()
}

pub(crate) fn new_payment(s: &mut State, amount: u64, currency: &str, metadata: &Value) -> Value {
    let id = s.id("pi");
    let created = s.now();
    s.put(json!({
        "id": id, "object": "payment_intent", "amount": amount, "amount_received": 0,
        "currency": currency.to_ascii_lowercase(), "status": "requires_payment_method",
        "metadata": metadata, "client_secret": format!("{id}_secret_fake"),
        "latest_charge": null, "customer": null, "created": created, "livemode": false,
        "automatic_payment_methods": {"enabled": true},
    }))
}

pub(crate) fn succeed(s: &mut State, payment: &str) -> Value {
    let charge = s.id("ch");
    let p = s.objects.get_mut(payment).expect("payment");
    p["status"] = json!("succeeded");
    p["amount_received"] = p["amount"].clone();
    p["latest_charge"] = json!(charge);
    let (amount, currency, metadata) = (
        p["amount"].clone(),
        p["currency"].clone(),
        p["metadata"].clone(),
    );
    let snapshot = p.clone();
    s.put(json!({
        "id": charge, "object": "charge", "amount": amount, "amount_refunded": 0,
        "refunded": false, "disputed": false, "payment_intent": payment, "currency": currency,
        "status": "succeeded", "metadata": metadata, "customer": null,
    }));
    s.event("payment_intent.succeeded", &snapshot)
}

pub(crate) fn renew(s: &mut State, subscription: &str) -> Value {
    let sub = s.objects.get_mut(subscription).expect("subscription");
    let end = sub["items"]["data"][0]["current_period_end"]
        .as_i64()
        .unwrap_or(0)
        + PERIOD_SECONDS;
    sub["items"]["data"][0]["current_period_start"] = json!(end - PERIOD_SECONDS);
    sub["items"]["data"][0]["current_period_end"] = json!(end);
    sub["status"] = json!("active");
    let (customer, metadata, price) = (
        sub["customer"].clone(),
        sub["metadata"].clone(),
        sub["items"]["data"][0]["price"]["id"].clone(),
    );
    invoice_paid(s, subscription, &customer, &metadata, &price, end)
}

/// `invoice.paid` for a subscription's period ending at `end` (basil shape: `parent`).
pub(crate) fn invoice_paid(
    s: &mut State,
    subscription: &str,
    customer: &Value,
    metadata: &Value,
    price: &Value,
    end: i64,
) -> Value {
    let id = s.id("in");
    let invoice = s.put(json!({
        "id": id, "object": "invoice", "customer": customer, "status": "paid",
        "amount_paid": 2999, "currency": "eur",
        "parent": {"type": "subscription_details", "quote_details": null,
                   "subscription_details": {"subscription": subscription, "metadata": metadata}},
        "lines": {"object": "list", "has_more": false, "url": format!("/v1/invoices/{id}/lines"),
            "data": [{"id": format!("il_{id}"), "object": "line_item", "amount": 2999, "currency": "eur",
                      "period": {"start": end - PERIOD_SECONDS, "end": end},
                      "pricing": {"type": "price_details", "price_details": {"price": price, "product": "prod_fake"}},
                      "parent": {"type": "subscription_item_details",
                                 "subscription_item_details": {"subscription": subscription}}}]},
    }));
    s.event("invoice.paid", &invoice)
}

pub(crate) fn end_subscription(s: &mut State, subscription: &str) -> Value {
    let now = s.now();
    let sub = s.objects.get_mut(subscription).expect("subscription");
    sub["status"] = json!("canceled");
    sub["canceled_at"] = json!(now);
    sub["ended_at"] = json!(now);
    let snapshot = sub.clone();
    s.event("customer.subscription.deleted", &snapshot)
}

async fn get_object(
    AxState(app): AxState<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    app.serve("GET", uri.path(), &headers, "", |s, _| match s.get(&id) {
        Some(o) => (200, o.clone(), Vec::new()),
        None => missing(&id),
    })
    .await
}

async fn create_payment(AxState(app): AxState<App>, headers: HeaderMap, body: String) -> Response {
    app.serve("POST", "/v1/payment_intents", &headers, &body, |s, f| {
        let amount = f.get("amount").and_then(|a| a.parse::<u64>().ok());
        let currency = f.get("currency");
        match (amount, currency) {
            (Some(a), Some(c)) => {
                let p = new_payment(s, a, c, &Value::Object(metadata(f, "metadata")));
                (200, p, Vec::new())
            }
            _ => error(
                400,
                "invalid_request_error",
                Some("parameter_missing"),
                "Missing required param: amount or currency.",
            ),
        }
    })
    .await
}

async fn list_payments(
    AxState(app): AxState<App>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let q = q.unwrap_or_default();
    app.serve("GET", "/v1/payment_intents", &headers, &q, |s, f| {
        let gte = f.get("created[gte]").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let limit = f.get("limit").and_then(|v| v.parse::<usize>().ok()).unwrap_or(10).clamp(1, 100);
        let mut all: Vec<&Value> = s
            .objects
            .values()
            .filter(|o| o["object"] == "payment_intent" && o["created"].as_i64().unwrap_or(0) >= gte)
            .collect();
        // Newest first; ids order objects made in the same second.
        all.sort_by(|a, b| {
            (b["created"].as_i64(), b["id"].as_str()).cmp(&(a["created"].as_i64(), a["id"].as_str()))
        });
        if let Some(after) = f.get("starting_after") {
            if let Some(i) = all.iter().position(|o| o["id"] == after) {
                all.drain(..=i);
            }
        }
        let has_more = all.len() > limit;
        all.truncate(limit);
        (
            200,
            json!({"object": "list", "url": "/v1/payment_intents", "has_more": has_more, "data": all}),
            Vec::new(),
        )
    })
    .await
}

async fn create_customer(AxState(app): AxState<App>, headers: HeaderMap, body: String) -> Response {
    app.serve("POST", "/v1/customers", &headers, &body, |s, f| {
        let id = s.id("cus");
        let c = s.put(json!({
            "id": id, "object": "customer", "email": f.get("email"),
            "metadata": metadata(f, "metadata"), "created": s.now(), "livemode": false,
        }));
        (200, c, Vec::new())
    })
    .await
}

async fn create_session(AxState(app): AxState<App>, headers: HeaderMap, body: String) -> Response {
    let base = app.base.clone();
    app.serve("POST", "/v1/checkout/sessions", &headers, &body, |s, f| {
        let mode = f.get("mode").unwrap_or_default().to_owned();
        let (Some(success), Some(cancel)) = (f.get("success_url"), f.get("cancel_url")) else {
            return error(
                400,
                "invalid_request_error",
                Some("parameter_missing"),
                "Missing success_url or cancel_url.",
            );
        };
        let price = f.get("line_items[0][price]").map(str::to_owned);
        if mode == "subscription" && price.as_deref().is_none_or(|p| s.get(p).is_none()) {
            return missing(price.as_deref().unwrap_or("price"));
        }
        let id = s.id("cs_test");
        let extras = SessionExtras {
            price,
            unit_amount: f
                .get("line_items[0][price_data][unit_amount]")
                .and_then(|a| a.parse().ok()),
            currency: f
                .get("line_items[0][price_data][currency]")
                .map(str::to_owned),
            subscription_metadata: metadata(f, "subscription_data[metadata]"),
            payment_metadata: metadata(f, "payment_intent_data[metadata]"),
        };
        s.extras.insert(id.clone(), extras);
        let now = s.now();
        let session = s.put(json!({
            "id": id, "object": "checkout.session", "url": format!("{base}/checkout/{id}"),
            "status": "open", "mode": mode, "payment_status": "unpaid", "payment_intent": null,
            "subscription": null, "customer": f.get("customer"),
            "client_reference_id": f.get("client_reference_id"),
            "metadata": metadata(f, "metadata"), "invoice": null,
            "success_url": success, "cancel_url": cancel,
            "created": now, "expires_at": now + 86_400, "livemode": false,
        }));
        (200, session, Vec::new())
    })
    .await
}

async fn update_subscription(
    AxState(app): AxState<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let path = format!("/v1/subscriptions/{id}");
    app.serve("POST", &path, &headers, &body, |s, f| {
        let Some(sub) = s.objects.get_mut(&id) else {
            return missing(&id);
        };
        if let Some(v) = f.get("cancel_at_period_end") {
            sub["cancel_at_period_end"] = json!(v == "true");
        }
        let snapshot = sub.clone();
        let e = s.event("customer.subscription.updated", &snapshot);
        (200, snapshot, vec![e])
    })
    .await
}

async fn cancel_now(
    AxState(app): AxState<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let path = format!("/v1/subscriptions/{id}");
    app.serve("DELETE", &path, &headers, &q.unwrap_or_default(), |s, _| {
        if s.get(&id).is_none() {
            return missing(&id);
        }
        let e = end_subscription(s, &id);
        (200, e["data"]["object"].clone(), vec![e])
    })
    .await
}
