//! Stripe's objects, as much of them as the hub reads, and their neutral views. Fields the
//! hub does not read are ignored; a field it needs that is missing or malformed makes the
//! answer unreadable (an error, never a default).

use std::collections::HashMap;

use luna_core::{Cents, Currency, PaymentRef, SubscriptionStatus, Timestamp};
use luna_ports::{
    ChargeView, CheckoutView, GatewayError, PaymentView, PriceView, SubscriptionView,
};
use serde::Deserialize;

fn unreadable(what: &str) -> GatewayError {
    GatewayError::Unreachable(format!("unreadable answer: {what}"))
}

fn currency(code: &str) -> Result<Currency, GatewayError> {
    Currency::parse(code).map_err(|_| unreadable("currency"))
}

fn payment_ref(id: &str) -> Result<PaymentRef, GatewayError> {
    PaymentRef::parse(id).map_err(|_| unreadable("payment id"))
}

/// A list envelope.
#[derive(Debug, Deserialize)]
pub struct List<T> {
    /// The page.
    pub data: Vec<T>,
    /// Whether more follow.
    #[serde(default)]
    pub has_more: bool,
}

/// A PaymentIntent.
#[derive(Debug, Deserialize)]
pub struct PaymentIntent {
    id: String,
    status: String,
    amount: u64,
    currency: String,
    #[serde(default)]
    metadata: HashMap<String, String>,
    client_secret: Option<String>,
    latest_charge: Option<Expandable>,
    #[serde(default)]
    created: i64,
}

/// An id, or the expanded object carrying it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Expandable {
    /// The id.
    Id(String),
    /// The object.
    Object {
        /// Its id.
        id: String,
    },
}

impl Expandable {
    /// The id.
    pub fn into_id(self) -> String {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }
}

impl PaymentIntent {
    /// The neutral view.
    pub fn view(self) -> Result<PaymentView, GatewayError> {
        Ok(PaymentView {
            id: payment_ref(&self.id)?,
            succeeded: self.status == "succeeded",
            status: self.status,
            amount: Cents::new(self.amount),
            currency: currency(&self.currency)?,
            user_id: self.metadata.get("user_id").cloned(),
            pack: self.metadata.get("pack").cloned(),
            client_secret: self.client_secret,
            charge: self.latest_charge.map(Expandable::into_id),
            created: Timestamp::from_secs(self.created),
        })
    }
}

/// A Charge.
#[derive(Debug, Deserialize)]
pub struct Charge {
    id: String,
    amount: u64,
    // Required: a charge read without them must not pass for "nothing reversed".
    amount_refunded: u64,
    disputed: bool,
    payment_intent: Option<Expandable>,
}

impl Charge {
    /// The neutral view.
    pub fn view(self) -> Result<ChargeView, GatewayError> {
        Ok(ChargeView {
            id: self.id,
            payment: self
                .payment_intent
                .map(|p| payment_ref(&p.into_id()))
                .transpose()?,
            amount: Cents::new(self.amount),
            amount_refunded: Cents::new(self.amount_refunded),
            disputed: self.disputed,
        })
    }
}

/// A Dispute.
#[derive(Debug, Deserialize)]
pub struct Dispute {
    /// The disputed charge.
    pub charge: Expandable,
    /// Its payment.
    pub payment_intent: Option<Expandable>,
}

impl Dispute {
    /// The charge and its payment.
    pub fn parts(self) -> Result<(String, Option<PaymentRef>), GatewayError> {
        Ok((
            self.charge.into_id(),
            self.payment_intent
                .map(|p| payment_ref(&p.into_id()))
                .transpose()?,
        ))
    }
}

/// A Customer.
#[derive(Debug, Deserialize)]
pub struct Customer {
    /// Its id.
    pub id: String,
}

/// A Checkout Session.
#[derive(Debug, Deserialize)]
pub struct CheckoutSession {
    id: String,
    url: Option<String>,
    status: Option<String>,
    mode: String,
    payment_intent: Option<Expandable>,
    subscription: Option<Expandable>,
    customer: Option<Expandable>,
    client_reference_id: Option<String>,
    #[serde(default)]
    metadata: Option<HashMap<String, String>>,
    expires_at: Option<i64>,
}

impl CheckoutSession {
    /// The neutral view.
    pub fn view(self) -> Result<CheckoutView, GatewayError> {
        let status = self.status.as_deref();
        Ok(CheckoutView {
            id: self.id,
            url: self.url,
            open: status == Some("open"),
            complete: status == Some("complete"),
            subscription_mode: self.mode == "subscription",
            payment: self
                .payment_intent
                .map(|p| payment_ref(&p.into_id()))
                .transpose()?,
            subscription: self.subscription.map(Expandable::into_id),
            customer: self.customer.map(Expandable::into_id),
            user_id: self
                .client_reference_id
                .or_else(|| self.metadata.and_then(|m| m.get("user_id").cloned())),
            expires_at: self.expires_at.map(Timestamp::from_secs),
        })
    }
}

/// A Price.
#[derive(Debug, Deserialize)]
pub struct Price {
    id: String,
    #[serde(default)]
    active: bool,
    currency: String,
    unit_amount: Option<u64>,
    recurring: Option<Recurring>,
}

#[derive(Debug, Deserialize)]
struct Recurring {
    interval: String,
    #[serde(default = "one")]
    interval_count: u32,
}

fn one() -> u32 {
    1
}

impl Price {
    /// The neutral view.
    pub fn view(self) -> Result<PriceView, GatewayError> {
        Ok(PriceView {
            id: self.id,
            active: self.active,
            currency: currency(&self.currency)?,
            unit_amount: self.unit_amount.map(Cents::new),
            interval_count: self.recurring.as_ref().map_or(1, |r| r.interval_count),
            interval: self.recurring.map(|r| r.interval),
        })
    }
}

/// A Subscription (before and after `2025-03-31.basil`: the period end moved to the items).
#[derive(Debug, Deserialize)]
pub struct Subscription {
    id: String,
    status: String,
    customer: Option<Expandable>,
    #[serde(default)]
    metadata: HashMap<String, String>,
    current_period_end: Option<i64>,
    // Required: a subscription read without them must not pass for "no plan".
    cancel_at_period_end: bool,
    items: List<SubscriptionItem>,
}

#[derive(Debug, Deserialize)]
struct SubscriptionItem {
    current_period_end: Option<i64>,
    price: Option<PriceRef>,
}

#[derive(Debug, Deserialize)]
struct PriceRef {
    id: String,
}

impl Subscription {
    /// The neutral view.
    pub fn view(self) -> Result<SubscriptionView, GatewayError> {
        let items = self.items.data;
        // Spec §6: the subscription's `current_period_end`, or its first item's when the
        // top-level field is absent (API versions from 2025-03-31.basil).
        let item_end = items.first().and_then(|i| i.current_period_end);
        Ok(SubscriptionView {
            status: SubscriptionStatus::parse(&self.status)
                .ok_or_else(|| unreadable("subscription status"))?,
            id: self.id,
            customer: self.customer.map(Expandable::into_id),
            user_id: self.metadata.get("user_id").cloned(),
            current_period_end: self
                .current_period_end
                .or(item_end)
                .map(Timestamp::from_secs),
            cancel_at_period_end: self.cancel_at_period_end,
            prices: items
                .into_iter()
                .filter_map(|i| i.price.map(|p| p.id))
                .collect(),
        })
    }
}

/// Stripe's error envelope.
#[derive(Debug, Deserialize)]
struct Envelope {
    error: ErrorObject,
}

#[derive(Debug, Deserialize)]
struct ErrorObject {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    message: Option<String>,
}

/// A refusal from a non-success status and its body (Stripe's envelope when it is one).
pub fn refusal(status: u16, body: &str) -> GatewayError {
    match serde_json::from_str::<Envelope>(body) {
        Ok(Envelope { error }) => GatewayError::Refused {
            status,
            code: match (error.kind, error.code) {
                (Some(k), Some(c)) => format!("{k}/{c}"),
                (Some(k), None) => k,
                (None, Some(c)) => c,
                (None, None) => "unknown".into(),
            },
            message: error.message.unwrap_or_else(|| format!("HTTP {status}")),
        },
        Err(_) => GatewayError::Refused {
            status,
            code: "unknown".into(),
            message: format!("HTTP {status} without Stripe's error envelope"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_period_end_reads_both_shapes() {
        let basil = r#"{"id":"sub_1","object":"subscription","status":"active","customer":"cus_1",
            "metadata":{"user_id":"u1"},"cancel_at_period_end":false,
            "items":{"object":"list","data":[{"current_period_end":1900000000,
              "price":{"id":"price_u"}}],"has_more":false}}"#;
        let v = serde_json::from_str::<Subscription>(basil)
            .unwrap()
            .view()
            .unwrap();
        assert_eq!(
            v.current_period_end,
            Some(Timestamp::from_secs(1_900_000_000))
        );
        assert_eq!(v.prices, vec!["price_u".to_owned()]);
        assert_eq!(v.user_id.as_deref(), Some("u1"));
        let old = r#"{"id":"sub_1","object":"subscription","status":"past_due","customer":"cus_1",
            "current_period_end":1800000000,"cancel_at_period_end":false,
            "items":{"object":"list","data":[{"price":{"id":"p"}}]}}"#;
        let v = serde_json::from_str::<Subscription>(old)
            .unwrap()
            .view()
            .unwrap();
        assert_eq!(
            v.current_period_end,
            Some(Timestamp::from_secs(1_800_000_000))
        );
        assert_eq!(v.status, SubscriptionStatus::PastDue);
    }

    #[test]
    fn an_unknown_status_or_a_missing_field_is_unreadable_not_defaulted() {
        let s = r#"{"id":"sub_1","status":"galloping","customer":"cus_1","cancel_at_period_end":false,
            "items":{"object":"list","data":[]}}"#;
        assert!(
            serde_json::from_str::<Subscription>(s)
                .unwrap()
                .view()
                .is_err()
        );
        let no_items =
            r#"{"id":"sub_1","status":"active","customer":"cus_1","cancel_at_period_end":false}"#;
        assert!(serde_json::from_str::<Subscription>(no_items).is_err());
        let charge = r#"{"id":"ch_1","amount":299,"payment_intent":"pi_1"}"#;
        assert!(serde_json::from_str::<Charge>(charge).is_err());
    }

    #[test]
    fn the_error_envelope_becomes_a_typed_refusal() {
        let body = r#"{"error":{"type":"card_error","code":"card_declined","message":"Your card was declined."}}"#;
        match refusal(402, body) {
            GatewayError::Refused {
                status,
                code,
                message,
            } => {
                assert_eq!(status, 402);
                assert_eq!(code, "card_error/card_declined");
                assert_eq!(message, "Your card was declined.");
            }
            other @ GatewayError::Unreachable(_) => panic!("{other:?}"),
        }
        assert!(matches!(
            refusal(400, "<html>"),
            GatewayError::Refused { status: 400, .. }
        ));
    }
}
