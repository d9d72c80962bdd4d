//! The fake hosted Checkout page: shows what is bought, and pay / decline / cancel buttons.
//! Pay completes the session (a subscription, or a succeeded PaymentIntent), delivers its
//! signed events to the hub, and redirects to the success URL; cancel redirects to the cancel
//! URL; decline shows the page again with the card's refusal.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{PERIOD_SECONDS, State};

#[derive(Clone)]
struct Page {
    state: Arc<Mutex<State>>,
}

pub(crate) fn router(state: Arc<Mutex<State>>, _base: String) -> Router {
    Router::new()
        .route("/checkout/{id}", get(show))
        .route("/checkout/{id}/pay", post(pay))
        .route("/checkout/{id}/decline", post(decline))
        .route("/checkout/{id}/cancel", post(cancel))
        .with_state(Page { state })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(session: &Value, notice: Option<&str>) -> Html<String> {
    let id = escape(session["id"].as_str().unwrap_or_default());
    let what = if session["mode"] == "subscription" {
        "Luna Unlimited — monthly".to_owned()
    } else {
        "Energy pack".to_owned()
    };
    let notice = notice.map_or(String::new(), |n| {
        format!(r#"<p id="notice" role="alert">{}</p>"#, escape(n))
    });
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fake Checkout</title></head>
<body><main><h1>Fake Stripe Checkout</h1><p id="item">{what}</p>{notice}
<form method="post" action="/checkout/{id}/pay"><button id="pay" type="submit">Pay</button></form>
<form method="post" action="/checkout/{id}/decline"><button id="decline" type="submit">Pay with a declined card</button></form>
<form method="post" action="/checkout/{id}/cancel"><button id="cancel" type="submit">Cancel</button></form>
</main></body></html>"#
    ))
}

fn gone() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html("<p>This checkout is not open.</p>"),
    )
        .into_response()
}

fn open_session(state: &Arc<Mutex<State>>, id: &str) -> Option<Value> {
    super::lock_state(state)
        .get(id)
        .filter(|s| s["object"] == "checkout.session" && s["status"] == "open")
        .cloned()
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

async fn show(AxState(p): AxState<Page>, Path(id): Path<String>) -> Response {
    match open_session(&p.state, &id) {
        Some(s) => page(&s, None).into_response(),
        None => gone(),
    }
}

async fn pay(AxState(p): AxState<Page>, Path(id): Path<String>) -> Response {
    if open_session(&p.state, &id).is_none() {
        return gone();
    }
    let (events, url, success) = {
        let mut s = super::lock_state(&p.state);
        let events = complete(&mut s, &id);
        let success = s.get(&id).map_or(String::new(), |c| {
            c["success_url"]
                .as_str()
                .unwrap_or_default()
                .replace("{CHECKOUT_SESSION_ID}", &id)
        });
        (events, s.webhook_url.clone(), success)
    };
    super::deliver_all(url, events).await;
    redirect(&success)
}

async fn decline(AxState(p): AxState<Page>, Path(id): Path<String>) -> Response {
    match open_session(&p.state, &id) {
        Some(s) => page(&s, Some("Your card was declined.")).into_response(),
        None => gone(),
    }
}

async fn cancel(AxState(p): AxState<Page>, Path(id): Path<String>) -> Response {
    match open_session(&p.state, &id) {
        Some(s) => redirect(s["cancel_url"].as_str().unwrap_or_default()),
        None => gone(),
    }
}

/// Completes an open session as paying does; the events made, in Stripe's order.
pub(crate) fn complete(s: &mut State, id: &str) -> Vec<Value> {
    let session = s.get(id).expect("session").clone();
    let extras = s.extras.get(id).cloned().unwrap_or_default();
    let mut events = Vec::new();
    let customer = if let Some(c) = session["customer"].as_str() {
        c.to_owned()
    } else {
        let c = s.id("cus");
        let now = s.now();
        s.put(json!({"id": c, "object": "customer", "metadata": {}, "created": now}));
        c
    };
    let mut done = session.clone();
    done["status"] = json!("complete");
    done["payment_status"] = json!("paid");
    done["customer"] = json!(customer);
    done["url"] = Value::Null;
    if session["mode"] == "subscription" {
        let price_id = extras.price.clone().unwrap_or_default();
        let price = s.get(&price_id).cloned().unwrap_or(json!({"id": price_id}));
        let now = s.now();
        let sub_id = s.id("sub");
        let item_id = s.id("si");
        let sub = s.put(json!({
            "id": sub_id, "object": "subscription", "customer": customer, "status": "active",
            "metadata": extras.subscription_metadata, "cancel_at_period_end": false,
            "cancel_at": null, "canceled_at": null, "ended_at": null, "currency": "eur",
            "created": now,
            "items": {"object": "list", "has_more": false,
                      "url": format!("/v1/subscription_items?subscription={sub_id}"),
                      "data": [{"id": item_id, "object": "subscription_item", "quantity": 1,
                                "current_period_start": now,
                                "current_period_end": now + PERIOD_SECONDS,
                                "price": price}]},
        }));
        done["subscription"] = json!(sub_id);
        events.push(s.event("customer.subscription.created", &sub));
        s.put(done.clone());
        events.push(s.event("checkout.session.completed", &done));
        let (metadata, price) = (sub["metadata"].clone(), json!(price_id));
        events.push(super::api::invoice_paid(
            s,
            &sub_id,
            &json!(customer),
            &metadata,
            &price,
            now + PERIOD_SECONDS,
        ));
    } else {
        let amount = extras.unit_amount.unwrap_or(0);
        let currency = extras.currency.clone().unwrap_or_else(|| "eur".into());
        let p = super::api::new_payment(
            s,
            amount,
            &currency,
            &Value::Object(extras.payment_metadata),
        );
        let pid = p["id"].as_str().unwrap_or_default().to_owned();
        events.push(super::api::succeed(s, &pid));
        done["payment_intent"] = json!(pid);
        s.put(done.clone());
        events.push(s.event("checkout.session.completed", &done));
    }
    events
}
