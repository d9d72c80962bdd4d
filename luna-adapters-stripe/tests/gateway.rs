//! The Stripe client against a local mock HTTP server that records every request and answers
//! from a script: form encoding (metadata, line items), headers, idempotency keys (the same
//! key on every retry), Stripe's error envelope mapped to typed errors, timeouts and the retry
//! limit.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use luna_adapters_stripe::{Form, MAX_RETRIES, STRIPE_VERSION, StripeConfig, StripeGateway};
use luna_core::{Cents, Currency, PackId, PaymentRef, Timestamp, UserId};
use luna_ports::{GatewayError, NewCheckout, NewPayment, PaymentGateway, Return};
use serde_json::{Value, json};

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn form(&self) -> Form {
        Form::decode(&self.body)
    }
}

/// An answer: status, body, delay.
type Scripted = (u16, Value, Duration);

#[derive(Default)]
struct Mock {
    seen: Vec<Seen>,
    script: VecDeque<Scripted>,
}

async fn answer(State(mock): State<Arc<Mutex<Mock>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.expect("body");
    let next = {
        let mut m = mock.lock().expect("mock");
        m.seen.push(Seen {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                .collect(),
            body: String::from_utf8(body.to_vec()).expect("utf-8 body"),
        });
        m.script.pop_front()
    };
    let (status, body, delay) = next.unwrap_or((500, json!({}), Duration::ZERO));
    tokio::time::sleep(delay).await;
    (
        StatusCode::from_u16(status).expect("status"),
        axum::Json(body),
    )
        .into_response()
}

struct Server {
    mock: Arc<Mutex<Mock>>,
    gateway: StripeGateway,
}

impl Server {
    async fn start(script: Vec<Scripted>, timeout: Duration) -> Server {
        let mock = Arc::new(Mutex::new(Mock {
            seen: Vec::new(),
            script: script.into(),
        }));
        let app = Router::new().fallback(answer).with_state(mock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let mut config = StripeConfig::new(&base, "sk_test_mock");
        config.first_backoff = Duration::from_millis(5);
        config.request_timeout = timeout;
        Server {
            mock,
            gateway: StripeGateway::new(config).expect("client"),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.mock.lock().expect("mock").seen.clone()
    }
}

fn ok(body: Value) -> Scripted {
    (200, body, Duration::ZERO)
}

fn payment_intent(status: &str) -> Value {
    json!({"id": "pi_123", "object": "payment_intent", "amount": 299, "currency": "eur",
           "status": status, "metadata": {"user_id": "usr_1", "pack": "cafe_luna"},
           "client_secret": "pi_123_secret_x", "latest_charge": null, "created": 1_700_000_000})
}

fn new_payment() -> NewPayment {
    NewPayment {
        user: UserId::parse("usr_1").expect("user"),
        pack: PackId::parse("cafe_luna").expect("pack"),
        pack_name: "Café Luna & co".into(),
        amount: Cents::new(299),
        currency: Currency::EUR,
    }
}

const SECOND: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_payment_is_created_form_encoded_with_its_metadata_key_and_headers() {
    let s = Server::start(vec![ok(payment_intent("requires_payment_method"))], SECOND).await;
    let view = s
        .gateway
        .create_payment(&new_payment(), "luna-intent-abc")
        .await
        .expect("created");
    assert_eq!(view.id.as_str(), "pi_123");
    assert_eq!(view.client_secret.as_deref(), Some("pi_123_secret_x"));
    let seen = s.seen();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/payment_intents")
    );
    assert_eq!(r.header("authorization"), Some("Bearer sk_test_mock"));
    assert_eq!(r.header("stripe-version"), Some(STRIPE_VERSION));
    assert_eq!(r.header("idempotency-key"), Some("luna-intent-abc"));
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let f = r.form();
    assert_eq!(f.get("amount"), Some("299"));
    assert_eq!(f.get("currency"), Some("eur"));
    assert_eq!(f.get("metadata[user_id]"), Some("usr_1"));
    assert_eq!(f.get("metadata[pack]"), Some("cafe_luna"));
    // Brackets are sent escaped; Stripe reads both forms.
    assert!(r.body.contains("metadata%5Buser_id%5D=usr_1"), "{}", r.body);
}

#[tokio::test]
async fn checkouts_carry_line_items_and_metadata_and_nothing_that_changes_the_amount() {
    let session = json!({"id": "cs_1", "object": "checkout.session", "url": "https://pay/cs_1",
                         "status": "open", "mode": "payment", "expires_at": 1_700_086_400});
    let s = Server::start(vec![ok(session.clone()), ok(session)], SECOND).await;
    let back = Return {
        success_url: "https://luna.example/ok?session_id={CHECKOUT_SESSION_ID}".into(),
        cancel_url: "https://luna.example/cancel".into(),
    };
    s.gateway
        .create_checkout(&NewCheckout::Payment(new_payment()), &back, "k1")
        .await
        .expect("payment checkout");
    let sub = NewCheckout::Subscription {
        user: UserId::parse("usr_1").expect("user"),
        price: "price_u".into(),
        customer: Some("cus_9".into()),
    };
    s.gateway
        .create_checkout(&sub, &back, "k2")
        .await
        .expect("subscription checkout");
    let seen = s.seen();
    let pay = seen[0].form();
    assert_eq!(pay.get("mode"), Some("payment"));
    assert_eq!(
        pay.get("line_items[0][price_data][unit_amount]"),
        Some("299")
    );
    assert_eq!(pay.get("line_items[0][price_data][currency]"), Some("eur"));
    assert_eq!(
        pay.get("line_items[0][price_data][product_data][name]"),
        Some("Café Luna & co")
    );
    assert_eq!(pay.get("line_items[0][quantity]"), Some("1"));
    assert_eq!(
        pay.get("payment_intent_data[metadata][user_id]"),
        Some("usr_1")
    );
    assert_eq!(
        pay.get("payment_intent_data[metadata][pack]"),
        Some("cafe_luna")
    );
    assert_eq!(
        pay.get("success_url"),
        Some("https://luna.example/ok?session_id={CHECKOUT_SESSION_ID}")
    );
    for forbidden in [
        "allow_promotion_codes",
        "automatic_tax[enabled]",
        "line_items[0][adjustable_quantity][enabled]",
    ] {
        assert_eq!(pay.get(forbidden), None, "{forbidden}");
    }
    let subf = seen[1].form();
    assert_eq!(subf.get("mode"), Some("subscription"));
    assert_eq!(subf.get("line_items[0][price]"), Some("price_u"));
    assert_eq!(subf.get("client_reference_id"), Some("usr_1"));
    assert_eq!(subf.get("metadata[user_id]"), Some("usr_1"));
    assert_eq!(
        subf.get("subscription_data[metadata][user_id]"),
        Some("usr_1")
    );
    assert_eq!(subf.get("customer"), Some("cus_9"));
    assert_eq!(seen[1].header("idempotency-key"), Some("k2"));
}

#[tokio::test]
async fn network_errors_429_and_5xx_are_retried_with_the_same_key() {
    let s = Server::start(
        vec![
            (500, json!({"error": {"type": "api_error"}}), Duration::ZERO),
            (
                429,
                json!({"error": {"type": "rate_limit"}}),
                Duration::ZERO,
            ),
            (503, json!({}), Duration::ZERO),
            ok(payment_intent("requires_payment_method")),
        ],
        SECOND,
    )
    .await;
    s.gateway
        .create_payment(&new_payment(), "same-key")
        .await
        .expect("created on the fourth attempt");
    let keys: Vec<_> = s
        .seen()
        .iter()
        .map(|r| r.header("idempotency-key").map(str::to_owned))
        .collect();
    assert_eq!(keys, vec![Some("same-key".to_owned()); 4]);
}

#[tokio::test]
async fn retries_stop_after_the_limit() {
    let s = Server::start(Vec::new(), SECOND).await; // every answer is a 500
    let err = s
        .gateway
        .create_payment(&new_payment(), "k")
        .await
        .expect_err("never succeeds");
    assert!(matches!(err, GatewayError::Unreachable(_)), "{err:?}");
    assert_eq!(s.seen().len(), 1 + MAX_RETRIES as usize);
}

#[tokio::test]
async fn a_timeout_is_retried_then_reported() {
    let slow = (200, payment_intent("succeeded"), Duration::from_millis(800));
    let s = Server::start(
        vec![slow.clone(), slow.clone(), slow.clone(), slow],
        Duration::from_millis(150),
    )
    .await;
    let err = s
        .gateway
        .payment(&PaymentRef::parse("pi_123").expect("id"))
        .await
        .expect_err("times out");
    assert!(matches!(err, GatewayError::Unreachable(_)), "{err:?}");
    assert_eq!(s.seen().len(), 1 + MAX_RETRIES as usize);
}

#[tokio::test]
async fn refusals_are_typed_and_never_retried() {
    let declined = json!({"error": {"type": "card_error", "code": "card_declined",
                                    "message": "Your card was declined."}});
    let s = Server::start(
        vec![
            (402, declined, Duration::ZERO),
            (400, json!({"error": {"type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same parameters"}}), Duration::ZERO),
            (404, json!({"error": {"type": "invalid_request_error", "code": "resource_missing"}}), Duration::ZERO),
        ],
        SECOND,
    )
    .await;
    match s.gateway.create_payment(&new_payment(), "k").await {
        Err(GatewayError::Refused {
            status,
            code,
            message,
        }) => {
            assert_eq!(
                (status, code.as_str(), message.as_str()),
                (402, "card_error/card_declined", "Your card was declined.")
            );
        }
        other => panic!("{other:?}"),
    }
    match s
        .gateway
        .create_customer(&UserId::parse("usr_1").expect("user"), "k")
        .await
    {
        Err(GatewayError::Refused {
            status: 400, code, ..
        }) => assert_eq!(code, "idempotency_error"),
        other => panic!("{other:?}"),
    }
    // A 404 on a read is "no such object", not an error.
    let none = s
        .gateway
        .payment(&PaymentRef::parse("pi_nope").expect("id"))
        .await
        .expect("answered");
    assert_eq!(none, None);
    assert_eq!(s.seen().len(), 3);
}

#[tokio::test]
async fn listing_pages_and_cancelling_speak_stripes_query_and_methods() {
    let page = json!({"object": "list", "has_more": true, "data": [payment_intent("succeeded")]});
    let sub = json!({"id": "sub_1", "object": "subscription", "status": "active", "customer": "cus_1",
                     "cancel_at_period_end": true,
                     "items": {"object": "list", "data": [{"current_period_end": 1_800_000_000, "price": {"id": "price_u"}}]}});
    let s = Server::start(vec![ok(page), ok(sub.clone()), ok(sub)], SECOND).await;
    let p = s
        .gateway
        .payments_since(Timestamp::from_secs(1_700_000_000), Some("pi_0".into()))
        .await
        .expect("page");
    assert!(p.has_more);
    assert!(p.payments[0].succeeded);
    s.gateway
        .cancel_subscription("sub_1", true, "kc")
        .await
        .expect("at period end");
    s.gateway
        .cancel_subscription("sub_1", false, "kc2")
        .await
        .expect("now");
    let seen = s.seen();
    let q = Form::decode(&seen[0].query);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(q.get("created[gte]"), Some("1700000000"));
    assert_eq!(q.get("limit"), Some("100"));
    assert_eq!(q.get("starting_after"), Some("pi_0"));
    assert_eq!(seen[0].header("idempotency-key"), None);
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("POST", "/v1/subscriptions/sub_1")
    );
    assert_eq!(seen[1].form().get("cancel_at_period_end"), Some("true"));
    assert_eq!(seen[1].header("idempotency-key"), Some("kc"));
    assert_eq!(
        (seen[2].method.as_str(), seen[2].path.as_str()),
        ("DELETE", "/v1/subscriptions/sub_1")
    );
    // An id cannot leave its path segment.
    let _ = s.gateway.charge("ch_1/../../v1/customers").await;
    assert_eq!(
        s.seen()[3].path,
        "/v1/charges/ch_1%2F..%2F..%2Fv1%2Fcustomers"
    );
}
