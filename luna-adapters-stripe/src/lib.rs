//! Luna's payment gateway over Stripe's HTTP API: form-encoded requests with bracket nesting,
//! `Authorization: Bearer`, a pinned `Stripe-Version`, an `Idempotency-Key` on every POST
//! (reused across retries), connect and read timeouts, bounded retries with backoff on network
//! errors, 429 and 5xx only, Stripe's error envelope mapped to typed errors; and the webhook
//! signature (HMAC-SHA256, constant-time, 300 s tolerance). ADR 0006 says why hand-written.

mod form;
mod objects;
mod webhook;

use std::time::Duration;

use async_trait::async_trait;
use luna_core::{PaymentRef, Timestamp, UserId};
use luna_ports::{
    ChargeView, CheckoutView, EventVerifier, GatewayError, NewCheckout, NewPayment, PaymentGateway,
    PaymentPage, PaymentView, PriceView, ProviderEvent, Return, SubscriptionView, WebhookError,
};
use serde::de::DeserializeOwned;

pub use form::Form;
pub use webhook::{TOLERANCE_SECONDS, sign, verify_signature};

/// The API version every request is pinned to (its shapes are the ones this adapter reads;
/// older event shapes are read too).
pub const STRIPE_VERSION: &str = "2025-03-31.basil";
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Retries after the first attempt (network errors, 429, 5xx only).
pub const MAX_RETRIES: u32 = 3;
/// The first pause between attempts (doubled each time, with jitter).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// A page of the payments list.
pub const PAGE_SIZE: u32 = 100;

/// How to reach Stripe.
#[derive(Clone)]
pub struct StripeConfig {
    /// `https://api.stripe.com` (tests point it at a fake).
    pub api_base: String,
    /// The secret key (`sk_…`).
    pub secret_key: String,
    /// Pause before the first retry (tests shorten it).
    pub first_backoff: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl StripeConfig {
    /// A configuration with the default timeouts.
    pub fn new(api_base: &str, secret_key: &str) -> StripeConfig {
        StripeConfig {
            api_base: api_base.trim_end_matches('/').to_owned(),
            secret_key: secret_key.to_owned(),
            first_backoff: FIRST_BACKOFF,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

/// The gateway.
pub struct StripeGateway {
    http: reqwest::Client,
    config: StripeConfig,
}

enum Method {
    Get,
    Post,
    Delete,
}

/// What one attempt got.
enum Attempt {
    Done(reqwest::StatusCode, String),
    Retry(String),
}

impl StripeGateway {
    /// A gateway (the HTTP client has the connect and request timeouts).
    pub fn new(config: StripeConfig) -> Result<StripeGateway, GatewayError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| GatewayError::Unreachable(e.to_string()))?;
        Ok(StripeGateway { http, config })
    }

    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        form: &Form,
        key: Option<&str>,
    ) -> Attempt {
        let url = format!("{}{path}", self.config.api_base);
        let request = match method {
            Method::Get => self.http.get(format!("{url}{}", form.query())),
            Method::Delete => self.http.delete(format!("{url}{}", form.query())),
            Method::Post => self
                .http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.encode()),
        };
        let mut request = request
            .bearer_auth(&self.config.secret_key)
            .header("Stripe-Version", STRIPE_VERSION);
        if let Some(k) = key {
            request = request.header("Idempotency-Key", k);
        }
        match request.send().await {
            Err(e) => Attempt::Retry(format!("network: {e}")),
            Ok(r) => {
                let status = r.status();
                if status.as_u16() == 429 || status.is_server_error() {
                    return Attempt::Retry(format!("HTTP {status}"));
                }
                match r.text().await {
                    Ok(body) => Attempt::Done(status, body),
                    Err(e) => Attempt::Retry(format!("network (reading the answer): {e}")),
                }
            }
        }
    }

    /// One call with bounded retries; the same idempotency key on every attempt. `Ok(None)`
    /// on 404.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: &Form,
        key: Option<&str>,
    ) -> Result<Option<T>, GatewayError> {
        let mut last = String::new();
        for n in 0..=MAX_RETRIES {
            if n > 0 {
                tokio::time::sleep(self.backoff(n)).await;
            }
            match self.attempt(&method, path, form, key).await {
                Attempt::Retry(why) => {
                    tracing::warn!(path, attempt = n + 1, why = %why, "stripe call failed, retrying");
                    last = why;
                }
                Attempt::Done(status, body) if status.is_success() => {
                    return serde_json::from_str(&body)
                        .map(Some)
                        .map_err(|e| GatewayError::Unreachable(format!("unreadable answer: {e}")));
                }
                Attempt::Done(status, _) if status.as_u16() == 404 => return Ok(None),
                Attempt::Done(status, body) => {
                    return Err(objects::refusal(status.as_u16(), &body));
                }
            }
        }
        Err(GatewayError::Unreachable(last))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.config.first_backoff * 2u32.pow(attempt.saturating_sub(1).min(6));
        // Jitter from the clock's sub-second part: no randomness source needed here.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        base + base.mul_f64(f64::from(nanos % 1000) / 2000.0)
    }

    async fn required<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: &Form,
        key: Option<&str>,
    ) -> Result<T, GatewayError> {
        self.call(method, path, form, key)
            .await?
            .ok_or_else(|| GatewayError::Refused {
                status: 404,
                code: "resource_missing".into(),
                message: format!("{path} does not exist"),
            })
    }

    fn checkout_form(checkout: &NewCheckout, back: &Return) -> Form {
        let mut f = Form::new();
        f.push("success_url", &back.success_url);
        f.push("cancel_url", &back.cancel_url);
        match checkout {
            NewCheckout::Subscription {
                user,
                price,
                customer,
            } => {
                f.push("mode", "subscription");
                f.push("line_items[0][price]", price);
                f.push("line_items[0][quantity]", "1");
                f.push("client_reference_id", user.as_str());
                f.push("metadata[user_id]", user.as_str());
                f.push("subscription_data[metadata][user_id]", user.as_str());
                if let Some(c) = customer {
                    f.push("customer", c);
                }
            }
            NewCheckout::Payment(p) => {
                // An inline price at the catalogue amount; no promotion codes, automatic tax
                // or adjustable quantity (each would change the amount).
                f.push("mode", "payment");
                f.push("line_items[0][price_data][currency]", p.currency.as_str());
                f.push(
                    "line_items[0][price_data][unit_amount]",
                    &p.amount.minor().to_string(),
                );
                f.push(
                    "line_items[0][price_data][product_data][name]",
                    &p.pack_name,
                );
                f.push("line_items[0][quantity]", "1");
                f.push("payment_intent_data[metadata][user_id]", p.user.as_str());
                f.push("payment_intent_data[metadata][pack]", p.pack.as_str());
                f.push("client_reference_id", p.user.as_str());
                f.push("metadata[user_id]", p.user.as_str());
                f.push("metadata[pack]", p.pack.as_str());
            }
        }
        f
    }
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    async fn create_payment(
        &self,
        p: &NewPayment,
        idempotency_key: &str,
    ) -> Result<PaymentView, GatewayError> {
        let mut f = Form::new();
        f.push("amount", &p.amount.minor().to_string());
        f.push("currency", p.currency.as_str());
        f.push("metadata[user_id]", p.user.as_str());
        f.push("metadata[pack]", p.pack.as_str());
        f.push("automatic_payment_methods[enabled]", "true");
        let pi: objects::PaymentIntent = self
            .required(
                Method::Post,
                "/v1/payment_intents",
                &f,
                Some(idempotency_key),
            )
            .await?;
        pi.view()
    }

    async fn payment(&self, id: &PaymentRef) -> Result<Option<PaymentView>, GatewayError> {
        let path = format!("/v1/payment_intents/{}", form::segment(id.as_str()));
        let pi: Option<objects::PaymentIntent> =
            self.call(Method::Get, &path, &Form::new(), None).await?;
        pi.map(objects::PaymentIntent::view).transpose()
    }

    async fn charge(&self, id: &str) -> Result<Option<ChargeView>, GatewayError> {
        let path = format!("/v1/charges/{}", form::segment(id));
        let c: Option<objects::Charge> = self.call(Method::Get, &path, &Form::new(), None).await?;
        c.map(objects::Charge::view).transpose()
    }

    async fn payments_since(
        &self,
        since: Timestamp,
        after: Option<String>,
    ) -> Result<PaymentPage, GatewayError> {
        let mut f = Form::new();
        f.push("created[gte]", &(since.millis() / 1000).to_string());
        f.push("limit", &PAGE_SIZE.to_string());
        if let Some(a) = &after {
            f.push("starting_after", a);
        }
        let list: objects::List<objects::PaymentIntent> = self
            .required(Method::Get, "/v1/payment_intents", &f, None)
            .await?;
        Ok(PaymentPage {
            payments: list
                .data
                .into_iter()
                .map(objects::PaymentIntent::view)
                .collect::<Result<_, _>>()?,
            has_more: list.has_more,
        })
    }

    async fn create_customer(
        &self,
        user: &UserId,
        idempotency_key: &str,
    ) -> Result<String, GatewayError> {
        let mut f = Form::new();
        f.push("metadata[user_id]", user.as_str());
        let c: objects::Customer = self
            .required(Method::Post, "/v1/customers", &f, Some(idempotency_key))
            .await?;
        Ok(c.id)
    }

    async fn create_checkout(
        &self,
        checkout: &NewCheckout,
        back: &Return,
        idempotency_key: &str,
    ) -> Result<CheckoutView, GatewayError> {
        let f = Self::checkout_form(checkout, back);
        let s: objects::CheckoutSession = self
            .required(
                Method::Post,
                "/v1/checkout/sessions",
                &f,
                Some(idempotency_key),
            )
            .await?;
        s.view()
    }

    async fn checkout(&self, id: &str) -> Result<Option<CheckoutView>, GatewayError> {
        let path = format!("/v1/checkout/sessions/{}", form::segment(id));
        let s: Option<objects::CheckoutSession> =
            self.call(Method::Get, &path, &Form::new(), None).await?;
        s.map(objects::CheckoutSession::view).transpose()
    }

    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionView>, GatewayError> {
        let path = format!("/v1/subscriptions/{}", form::segment(id));
        let s: Option<objects::Subscription> =
            self.call(Method::Get, &path, &Form::new(), None).await?;
        s.map(objects::Subscription::view).transpose()
    }

    async fn cancel_subscription(
        &self,
        id: &str,
        at_period_end: bool,
        idempotency_key: &str,
    ) -> Result<SubscriptionView, GatewayError> {
        let path = format!("/v1/subscriptions/{}", form::segment(id));
        let s: objects::Subscription = if at_period_end {
            let mut f = Form::new();
            f.push("cancel_at_period_end", "true");
            self.required(Method::Post, &path, &f, Some(idempotency_key))
                .await?
        } else {
            self.required(Method::Delete, &path, &Form::new(), None)
                .await?
        };
        s.view()
    }

    async fn price(&self, id: &str) -> Result<Option<PriceView>, GatewayError> {
        let path = format!("/v1/prices/{}", form::segment(id));
        let p: Option<objects::Price> = self.call(Method::Get, &path, &Form::new(), None).await?;
        p.map(objects::Price::view).transpose()
    }
}

/// Verifies Stripe's notifications with the endpoint's signing secret (`whsec_…`).
pub struct StripeWebhooks {
    secret: String,
}

impl StripeWebhooks {
    /// A verifier for one endpoint secret.
    pub fn new(secret: &str) -> StripeWebhooks {
        StripeWebhooks {
            secret: secret.to_owned(),
        }
    }
}

impl EventVerifier for StripeWebhooks {
    fn verify_event(
        &self,
        signature: &str,
        body: &[u8],
        now: Timestamp,
    ) -> Result<ProviderEvent, WebhookError> {
        verify_signature(&self.secret, signature, body, now)?;
        webhook::parse_event(body)
    }
}
