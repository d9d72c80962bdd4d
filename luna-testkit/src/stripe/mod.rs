//! A fake Stripe speaking the wire format of the subset the hub uses: form-encoded requests,
//! JSON objects with `id` and `object`, the error envelope, `Idempotency-Key` replay
//! (`Idempotent-Replayed: true`), bearer authentication. A test moves a PaymentIntent to
//! `succeeded`, refunds (fully or partly), opens a dispute, advances or cancels a
//! subscription, and delivers correctly signed events to the hub — in any order, as often as
//! it likes. A fake hosted Checkout page (pay / decline / cancel) completes a session, sends
//! its signed events and redirects to the success URL, as Stripe's does.
//!
//! Objects are kept as JSON values, in the shapes of API version `2025-03-31.basil`.

mod api;
mod hosted;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

/// The secret key the fake accepts.
pub const SECRET_KEY: &str = "sk_test_fake_luna";
/// The webhook signing secret it signs with.
pub const WEBHOOK_SECRET: &str = "whsec_fake_luna";
/// The Unlimited price it knows (monthly, EUR 29.99).
pub const PRICE_UNLIMITED: &str = "price_luna_unlimited";
/// The API version its events say they were rendered with.
pub const API_VERSION: &str = "2025-03-31.basil";
/// A period of the subscriptions it makes.
pub const PERIOD_SECONDS: i64 = 30 * 86_400;

/// A POST kept under its idempotency key: the request, and the answer replayed.
#[derive(Debug, Clone)]
pub(crate) struct KeptAnswer {
    request: String,
    status: u16,
    body: Value,
}

/// What a session was opened with, which Stripe keeps but does not show on the session.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionExtras {
    price: Option<String>,
    unit_amount: Option<u64>,
    currency: Option<String>,
    subscription_metadata: serde_json::Map<String, Value>,
    payment_metadata: serde_json::Map<String, Value>,
}

/// The fake's state.
#[derive(Debug, Default)]
pub(crate) struct State {
    next: u64,
    /// Seconds added to the wall clock (tests move time).
    clock_offset: i64,
    pub(crate) objects: BTreeMap<String, Value>,
    pub(crate) extras: HashMap<String, SessionExtras>,
    kept: HashMap<String, KeptAnswer>,
    /// Method and path of every API request, in order.
    pub(crate) requests: Vec<(String, String)>,
    /// Statuses the next API requests answer with (injected failures).
    failures: VecDeque<u16>,
    /// Every event made, in order.
    pub(crate) events: Vec<Value>,
    /// Where events are delivered (the hub's webhook URL).
    pub(crate) webhook_url: Option<String>,
    /// Whether events made by API calls (a cancellation) are delivered at once.
    pub(crate) auto_deliver: bool,
}

impl State {
    fn now(&self) -> i64 {
        wall_now() + self.clock_offset
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}_fake{:06}", self.next)
    }

    fn event(&mut self, kind: &str, object: &Value) -> Value {
        let created = self.now();
        self.event_at(kind, object, created)
    }

    fn event_at(&mut self, kind: &str, object: &Value, created: i64) -> Value {
        let e = json!({
            "id": self.id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "type": kind,
            "livemode": false,
            "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null},
            "data": {"object": object},
        });
        self.events.push(e.clone());
        e
    }

    fn get(&self, id: &str) -> Option<&Value> {
        self.objects.get(id)
    }

    fn put(&mut self, object: Value) -> Value {
        let id = object["id"].as_str().unwrap_or_default().to_owned();
        self.objects.insert(id, object.clone());
        object
    }

    fn price(amount: u64, interval: Option<&str>) -> Value {
        json!({
            "id": PRICE_UNLIMITED,
            "object": "price",
            "active": true,
            "currency": "eur",
            "unit_amount": amount,
            "type": if interval.is_some() { "recurring" } else { "one_time" },
            "recurring": interval.map(|i| json!({"interval": i, "interval_count": 1, "usage_type": "licensed"})),
        })
    }
}

/// A running fake Stripe.
pub struct FakeStripe {
    /// Its base URL (`LUNA_STRIPE_API_BASE`).
    pub base: String,
    state: Arc<Mutex<State>>,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeStripe {
    /// Starts a fake on a free loopback port, knowing the Unlimited price.
    pub async fn start() -> FakeStripe {
        let mut state = State::default();
        state.put(State::price(2999, Some("month")));
        let state = Arc::new(Mutex::new(state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Stripe");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let app = api::router(state.clone(), base.clone())
            .merge(hosted::router(state.clone(), base.clone()));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeStripe {
            base,
            state,
            http: reqwest::Client::new(),
            server,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        lock_state(&self.state)
    }

    /// Delivers events to this webhook URL (the pay button and `auto_deliver` use it).
    pub fn set_webhook_url(&self, url: &str) {
        self.lock().webhook_url = Some(url.to_owned());
    }

    /// Delivers events made by API calls (a cancellation) as they happen.
    pub fn set_auto_deliver(&self, on: bool) {
        self.lock().auto_deliver = on;
    }

    /// Moves the fake's clock (events' `created`, periods).
    pub fn advance_clock(&self, seconds: i64) {
        self.lock().clock_offset += seconds;
    }

    /// The fake's time (unix seconds).
    pub fn now(&self) -> i64 {
        self.lock().now()
    }

    /// The next API requests answer with these statuses (Stripe's error envelope), in order.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.lock().failures.extend(statuses.iter().copied());
    }

    /// How many API requests had this method and a path starting with `prefix`.
    pub fn requests_to(&self, method: &str, prefix: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|(m, p)| m == method && p.starts_with(prefix))
            .count()
    }

    /// An object by id (a PaymentIntent, a charge, a session, a subscription…).
    pub fn object(&self, id: &str) -> Option<Value> {
        self.lock().get(id).cloned()
    }

    /// Every event made so far, in order.
    pub fn events(&self) -> Vec<Value> {
        self.lock().events.clone()
    }

    /// Creates a PaymentIntent directly (as a client of Stripe other than the hub would),
    /// with this metadata.
    pub fn create_payment(&self, amount: u64, currency: &str, metadata: &Value) -> Value {
        let mut s = self.lock();
        api::new_payment(&mut s, amount, currency, metadata)
    }

    /// The PaymentIntent succeeds (the customer paid): a charge is made. Returns the
    /// `payment_intent.succeeded` event (not delivered).
    pub fn succeed(&self, payment: &str) -> Value {
        let mut s = self.lock();
        api::succeed(&mut s, payment)
    }

    /// The PaymentIntent moves to another status (`processing`, `requires_action`…).
    pub fn set_payment_status(&self, payment: &str, status: &str) {
        let mut s = self.lock();
        if let Some(p) = s.objects.get_mut(payment) {
            p["status"] = json!(status);
        }
    }

    /// Refunds `amount` more of the payment's charge (cumulative). Returns `charge.refunded`.
    pub fn refund(&self, payment: &str, amount: u64) -> Value {
        let mut s = self.lock();
        let charge = s.get(payment).expect("payment")["latest_charge"]
            .as_str()
            .expect("a charge")
            .to_owned();
        let c = s.objects.get_mut(&charge).expect("charge");
        let total = c["amount"].as_u64().unwrap_or(0);
        let refunded = (c["amount_refunded"].as_u64().unwrap_or(0) + amount).min(total);
        c["amount_refunded"] = json!(refunded);
        c["refunded"] = json!(refunded == total);
        let snapshot = c.clone();
        s.event("charge.refunded", &snapshot)
    }

    /// Opens a dispute on the payment's charge. Returns `charge.dispute.created`.
    pub fn dispute(&self, payment: &str) -> Value {
        let mut s = self.lock();
        let charge = s.get(payment).expect("payment")["latest_charge"]
            .as_str()
            .expect("a charge")
            .to_owned();
        let c = s.objects.get_mut(&charge).expect("charge");
        c["disputed"] = json!(true);
        let amount = c["amount"].clone();
        let currency = c["currency"].clone();
        let id = s.id("dp");
        let now = s.now();
        let dispute = s.put(json!({
            "id": id, "object": "dispute", "amount": amount, "currency": currency,
            "charge": charge, "payment_intent": payment, "reason": "fraudulent",
            "status": "needs_response", "created": now,
        }));
        s.event("charge.dispute.created", &dispute)
    }

    /// Pays a checkout session as the hosted page's pay button does (without delivering):
    /// the events it makes, in Stripe's order.
    pub fn pay_checkout(&self, session: &str) -> Vec<Value> {
        let mut s = self.lock();
        hosted::complete(&mut s, session)
    }

    /// Changes a subscription with `change` and returns `customer.subscription.updated`
    /// (created at the fake's time plus `created_offset` seconds).
    pub fn update_subscription(
        &self,
        subscription: &str,
        created_offset: i64,
        change: impl FnOnce(&mut Value),
    ) -> Value {
        let mut s = self.lock();
        let sub = s.objects.get_mut(subscription).expect("subscription");
        change(sub);
        let snapshot = sub.clone();
        let created = s.now() + created_offset;
        s.event_at("customer.subscription.updated", &snapshot, created)
    }

    /// An event about a subscription in a state that is not (or no longer) its current one:
    /// a snapshot changed by `change`, created at the fake's time plus `created_offset`
    /// (a stale event, as Stripe may deliver late).
    pub fn subscription_event(
        &self,
        subscription: &str,
        kind: &str,
        created_offset: i64,
        change: impl FnOnce(&mut Value),
    ) -> Value {
        let mut s = self.lock();
        let mut snapshot = s.get(subscription).expect("subscription").clone();
        change(&mut snapshot);
        let created = s.now() + created_offset;
        s.event_at(kind, &snapshot, created)
    }

    /// Renews a subscription for one more period: `invoice.paid` (basil shape).
    pub fn renew(&self, subscription: &str) -> Value {
        let mut s = self.lock();
        api::renew(&mut s, subscription)
    }

    /// Ends a subscription now: `customer.subscription.deleted`.
    pub fn end_subscription(&self, subscription: &str) -> Value {
        let mut s = self.lock();
        api::end_subscription(&mut s, subscription)
    }

    /// An event's body and a valid `Stripe-Signature` for it now (the wall clock: the hub
    /// checks the signature's time against its own).
    pub fn signed(event: &Value) -> (Vec<u8>, String) {
        let body = serde_json::to_vec(event).expect("an event serializes");
        let header = luna_adapters_stripe::sign(WEBHOOK_SECRET, wall_now(), &body);
        (body, header)
    }

    /// Delivers an event to the webhook URL, signed; the hub's status and body.
    pub async fn deliver(&self, event: &Value) -> (u16, String) {
        let (body, header) = FakeStripe::signed(event);
        self.post_webhook(body, &header).await
    }

    /// Posts raw bytes with a given signature header to the webhook URL.
    pub async fn post_webhook(&self, body: Vec<u8>, signature: &str) -> (u16, String) {
        let url = self.lock().webhook_url.clone().expect("a webhook URL");
        deliver_to(&self.http, &url, body, signature).await
    }
}

/// The state, even after a panic elsewhere (a test's panic must not hide behind a poison).
pub(crate) fn lock_state(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Posts a signed body to a webhook URL; the status and body of the answer.
pub(crate) async fn deliver_to(
    http: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    signature: &str,
) -> (u16, String) {
    match http
        .post(url)
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body)
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// Signs and delivers events one after the other (the hosted page, `auto_deliver`).
pub(crate) async fn deliver_all(url: Option<String>, events: Vec<Value>) {
    let Some(url) = url else { return };
    let http = reqwest::Client::new();
    for e in events {
        let (body, header) = FakeStripe::signed(&e);
        deliver_to(&http, &url, body, &header).await;
    }
}

/// The wall clock, unix seconds.
pub fn wall_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
